// Package dlqtest is the contract-test suite of the dead-letter ports: the
// DLQStore the API serves, the DeadLetterRecorder the consumers record
// poison messages with and the StalenessScanner of the detector. Every
// implementation runs it:
//
//	func TestDLQContract(t *testing.T) {
//		dlqtest.Run(t, func(t *testing.T) dlqtest.Subject { … a store on a database of its own … })
//	}
//
// The entries a subtest works on are made through the ports themselves
// (RecordPoison, ScanStale); what the ports cannot do — create the stale
// work, read back a step's state — the Subject's World does.
//
// It pins what the ports document: a stale enqueued step is recorded once
// however many scanners run; ListDLQ filters by namespace, reason and status
// and pages newest first with the total count; an unknown entry is
// ErrNotFound; requeue moves the step back to pending with a fresh attempt
// budget and its task to pending, or sends a poison message again; only open
// entries can be requeued and a resolved one cannot be resolved again
// (ConflictError); without the backing table every operation is
// ErrDLQUnavailable.
//
// Subtests run in parallel, each on a Subject of its own (the factory is
// called once per subtest), so counts are exact.
package dlqtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Store is what one implementation provides: the three ports over the same entries.
type Store interface {
	ports.DLQStore
	ports.DeadLetterRecorder
	ports.StalenessScanner
}

// World prepares and reads back the work the entries refer to.
type World struct {
	// EnqueuedStep creates a task of namespace, in progress, with one step
	// enqueued and no message for it; stale dates both an hour back, past
	// Policy's thresholds.
	EnqueuedStep func(t *testing.T, namespace string, stale bool) (task, step uuid.UUID)
	// SetAttempts sets how many attempts the step has used.
	SetAttempts func(t *testing.T, step uuid.UUID, attempts int)
	// Attempts reads how many attempts the step has used.
	Attempts  func(t *testing.T, step uuid.UUID) int
	StepState func(t *testing.T, step uuid.UUID) domain.StepState
	TaskState func(t *testing.T, task uuid.UUID) domain.TaskState
	// CreateQueue creates a queue; QueueLength counts its messages.
	CreateQueue func(t *testing.T, queue string)
	QueueLength func(t *testing.T, queue string) int
}

// Subject is one implementation under test, on state of its own.
type Subject struct {
	Store Store
	World World
	// MakeUnavailable removes what the store keeps its entries in, as a
	// database not migrated for them; it is called before any method of
	// Store. nil skips the ErrDLQUnavailable subtest.
	MakeUnavailable func(t *testing.T)
}

// Factory returns a new Subject for one subtest.
type Factory func(t *testing.T) Subject

// Policy is the staleness policy of the suite: steps enqueued for ten
// minutes are stale and fail their task; no task times out.
var Policy = ports.StalenessPolicy{EnqueuedTimeout: 10 * time.Minute, TaskTimeout: 24 * time.Hour, FailTask: true}

// Run runs the whole suite against the Subjects f returns.
func Run(t *testing.T, f Factory) {
	t.Run("ScanRecordsAStaleStepOnce", func(t *testing.T) { testScanOnce(t, f) })
	t.Run("ListFiltersAndPaginatesNewestFirst", func(t *testing.T) { testList(t, f) })
	t.Run("UnknownEntriesAreNotFound", func(t *testing.T) { testUnknown(t, f) })
	t.Run("RequeueStepGivesAFreshStart", func(t *testing.T) { testRequeueStep(t, f) })
	t.Run("StateTransitions", func(t *testing.T) { testTransitions(t, f) })
	t.Run("PoisonMessageIsSentAgain", func(t *testing.T) { testPoison(t, f) })
	t.Run("PoisonOfAKnownStepIsRecordedOnce", func(t *testing.T) { testPoisonOfStep(t, f) })
	t.Run("WithoutStorageEverythingIsUnavailable", func(t *testing.T) { testUnavailable(t, f) })
}

func setup(t *testing.T, f Factory) (context.Context, Subject) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, f(t)
}

// scan runs one scan and requires n entries.
func scan(t *testing.T, ctx context.Context, s Subject, n int) []domain.DLQEntry {
	t.Helper()
	got, err := s.Store.ScanStale(ctx, Policy)
	require.NoError(t, err)
	require.Len(t, got, n)
	return got
}

func poison(t *testing.T, ctx context.Context, s Subject, queue string, i int) domain.DLQEntry {
	t.Helper()
	e, err := s.Store.RecordPoison(ctx, ports.PoisonMessage{Queue: queue, MsgID: int64(i + 1), ReadCt: 4,
		Message: json.RawMessage(fmt.Sprintf(`{"request_id":"r%d"}`, i)), Detail: "read 4 times"})
	require.NoError(t, err)
	return e
}

func list(t *testing.T, ctx context.Context, s Subject, f ports.DLQFilter) ports.DLQPage {
	t.Helper()
	if f.Page == 0 {
		f.Page, f.PerPage = 1, 100
	}
	page, err := s.Store.ListDLQ(ctx, f)
	require.NoError(t, err)
	return page
}

func entryIDs(es []domain.DLQEntry) []uuid.UUID {
	out := make([]uuid.UUID, len(es))
	for i, e := range es {
		out[i] = e.EntryUUID
	}
	return out
}

func testScanOnce(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	freshTask, _ := s.World.EnqueuedStep(t, "nobody", false)
	staleTask, staleStep := s.World.EnqueuedStep(t, "nobody", true)

	var wg sync.WaitGroup
	found := make([][]domain.DLQEntry, 4)
	errs := make([]error, len(found))
	for i := range found {
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[i], errs[i] = s.Store.ScanStale(ctx, Policy)
		}()
	}
	wg.Wait()
	var all []domain.DLQEntry
	for i := range found {
		require.NoError(t, errs[i])
		all = append(all, found[i]...)
	}
	require.Len(t, all, 1, "four concurrent scanners record the stale step once")
	e := all[0]
	require.NotEqual(t, uuid.Nil, e.EntryUUID)
	require.Equal(t, staleTask, e.TaskUUID)
	require.Equal(t, staleStep, e.StepUUID)
	require.Equal(t, "nobody", e.Namespace)
	require.Equal(t, domain.DLQEnqueuedTimeout, e.Reason)
	require.Equal(t, domain.DLQOpen, e.Status)
	require.Contains(t, e.Detail, "does any worker serve namespace nobody")
	require.Equal(t, domain.TaskError, s.World.TaskState(t, staleTask), "FailTask fails the task")
	require.Equal(t, domain.StepError, s.World.StepState(t, staleStep))
	require.Equal(t, domain.TaskInProgress, s.World.TaskState(t, freshTask), "a fresh enqueue is left alone")

	scan(t, ctx, s, 0)
	got, err := s.Store.GetDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Equal(t, e, got, "Get returns the entry as recorded")
}

func testList(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	for range 3 {
		s.World.EnqueuedStep(t, "alpha", true)
	}
	s.World.EnqueuedStep(t, "beta", true)
	scanned := scan(t, ctx, s, 4)
	var poisons []domain.DLQEntry
	for i := range 3 {
		poisons = append(poisons, poison(t, ctx, s, domain.QueueTaskRequests, i))
	}
	var beta domain.DLQEntry
	for _, e := range scanned {
		if e.Namespace == "beta" {
			beta = e
		}
	}
	_, err := s.Store.ResolveDLQ(ctx, beta.EntryUUID, "beta retired")
	require.NoError(t, err)

	all := list(t, ctx, s, ports.DLQFilter{})
	require.EqualValues(t, 7, all.TotalCount)
	require.Len(t, all.Entries, 7)
	require.Equal(t, []uuid.UUID{poisons[2].EntryUUID, poisons[1].EntryUUID, poisons[0].EntryUUID}, entryIDs(all.Entries[:3]),
		"newest first")

	for name, c := range map[string]struct {
		filter ports.DLQFilter
		want   int
	}{
		"namespace":           {ports.DLQFilter{Namespace: "alpha"}, 3},
		"unknown namespace":   {ports.DLQFilter{Namespace: "gamma"}, 0},
		"reason":              {ports.DLQFilter{Reason: domain.DLQPoisonMessage}, 3},
		"other reason":        {ports.DLQFilter{Reason: domain.DLQTaskTimeout}, 0},
		"status open":         {ports.DLQFilter{Status: domain.DLQOpen}, 6},
		"status resolved":     {ports.DLQFilter{Status: domain.DLQResolved}, 1},
		"all three":           {ports.DLQFilter{Namespace: "alpha", Reason: domain.DLQEnqueuedTimeout, Status: domain.DLQOpen}, 3},
		"namespace and state": {ports.DLQFilter{Namespace: "beta", Status: domain.DLQOpen}, 0},
	} {
		page := list(t, ctx, s, c.filter)
		require.EqualValues(t, c.want, page.TotalCount, name)
		require.Len(t, page.Entries, c.want, name)
		for _, e := range page.Entries {
			if c.filter.Namespace != "" {
				require.Equal(t, c.filter.Namespace, e.Namespace, name)
			}
			if c.filter.Reason != "" {
				require.Equal(t, c.filter.Reason, e.Reason, name)
			}
			if c.filter.Status != "" {
				require.Equal(t, c.filter.Status, e.Status, name)
			}
		}
	}

	var paged []uuid.UUID
	for p := 1; p <= 4; p++ {
		page := list(t, ctx, s, ports.DLQFilter{Page: p, PerPage: 3})
		require.EqualValues(t, 7, page.TotalCount, "page %d counts every match", p)
		require.Len(t, page.Entries, []int{3, 3, 1, 0}[p-1], "page %d", p)
		paged = append(paged, entryIDs(page.Entries)...)
	}
	require.Equal(t, entryIDs(all.Entries), paged, "pages partition the list in its order")
}

func testUnknown(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	id := uuid.New()
	_, err := s.Store.GetDLQ(ctx, id)
	require.ErrorIs(t, err, ports.ErrNotFound)
	_, err = s.Store.RequeueDLQ(ctx, id)
	require.ErrorIs(t, err, ports.ErrNotFound)
	_, err = s.Store.ResolveDLQ(ctx, id, "note")
	require.ErrorIs(t, err, ports.ErrNotFound)
	require.Zero(t, list(t, ctx, s, ports.DLQFilter{}).TotalCount, "nothing was created")
}

func testRequeueStep(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	task, step := s.World.EnqueuedStep(t, "nobody", true)
	e := scan(t, ctx, s, 1)[0]
	s.World.SetAttempts(t, step, 3)

	req, err := s.Store.RequeueDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Equal(t, e.EntryUUID, req.EntryUUID)
	require.Equal(t, domain.DLQRequeued, req.Status)
	require.Equal(t, domain.StepPending, s.World.StepState(t, step))
	require.Equal(t, domain.TaskPending, s.World.TaskState(t, task), "the enqueue cycle starts it again")
	require.Zero(t, s.World.Attempts(t, step), "fresh attempt budget")
	got, err := s.Store.GetDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Equal(t, domain.DLQRequeued, got.Status)
	scan(t, ctx, s, 0)
}

func testTransitions(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	s.World.EnqueuedStep(t, "nobody", true)
	e := scan(t, ctx, s, 1)[0]
	var ce *ports.ConflictError

	_, err := s.Store.RequeueDLQ(ctx, e.EntryUUID)
	require.NoError(t, err, "open → requeued")
	_, err = s.Store.RequeueDLQ(ctx, e.EntryUUID)
	require.ErrorAs(t, err, &ce, "only open entries are requeued")

	res, err := s.Store.ResolveDLQ(ctx, e.EntryUUID, "worker for nobody deployed")
	require.NoError(t, err, "requeued → resolved")
	require.Equal(t, domain.DLQResolved, res.Status)
	require.Equal(t, "worker for nobody deployed", res.ResolutionNote)
	_, err = s.Store.ResolveDLQ(ctx, e.EntryUUID, "twice")
	require.ErrorAs(t, err, &ce, "a resolved entry cannot be resolved again")
	_, err = s.Store.RequeueDLQ(ctx, e.EntryUUID)
	require.ErrorAs(t, err, &ce, "nor requeued")
	got, err := s.Store.GetDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Equal(t, domain.DLQResolved, got.Status)
	require.Equal(t, "worker for nobody deployed", got.ResolutionNote, "the refused calls changed nothing")

	open := poison(t, ctx, s, domain.QueueTaskRequests, 0)
	res, err = s.Store.ResolveDLQ(ctx, open.EntryUUID, "dropped")
	require.NoError(t, err, "open → resolved")
	require.Equal(t, domain.DLQResolved, res.Status)
}

func testPoison(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	s.World.CreateQueue(t, domain.QueueTaskRequests)
	msg := json.RawMessage(`{"request_id":"r1","task_request":{"name":"x","namespace":"y","version":"1","priority":3000000000}}`)
	e, err := s.Store.RecordPoison(ctx, ports.PoisonMessage{Queue: domain.QueueTaskRequests, MsgID: 7, ReadCt: 1,
		Message: msg, Detail: "value out of range"})
	require.NoError(t, err)
	require.Equal(t, domain.DLQPoisonMessage, e.Reason)
	require.Equal(t, domain.DLQOpen, e.Status)
	require.Equal(t, domain.QueueTaskRequests, e.QueueName)
	require.Equal(t, "value out of range", e.Detail)
	require.JSONEq(t, string(msg), string(e.Message))
	require.Zero(t, s.World.QueueLength(t, domain.QueueTaskRequests))

	req, err := s.Store.RequeueDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Equal(t, domain.DLQRequeued, req.Status)
	require.Equal(t, 1, s.World.QueueLength(t, domain.QueueTaskRequests), "the message is sent again")
}

func testPoisonOfStep(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	task, step := s.World.EnqueuedStep(t, "results", false)
	m := ports.PoisonMessage{Queue: domain.QueueStepResults, MsgID: 3, ReadCt: 4, StepUUID: step,
		Message: json.RawMessage(`{"step_uuid":"` + step.String() + `"}`), Detail: "read 4 times"}
	first, err := s.Store.RecordPoison(ctx, m)
	require.NoError(t, err)
	require.Equal(t, task, first.TaskUUID, "the task is the step's")
	require.Equal(t, step, first.StepUUID)
	require.Equal(t, "results", first.Namespace, "the namespace is the step's task's")
	m.MsgID = 4
	again, err := s.Store.RecordPoison(ctx, m)
	require.NoError(t, err)
	require.Equal(t, first.EntryUUID, again.EntryUUID, "an open entry for the step is returned, not doubled")
	require.EqualValues(t, 1, list(t, ctx, s, ports.DLQFilter{}).TotalCount)
}

func testUnavailable(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	if s.MakeUnavailable == nil {
		t.Skip("the implementation cannot lose its storage")
	}
	s.MakeUnavailable(t)
	id := uuid.New()
	calls := map[string]func() error{
		"list":    func() error { _, err := s.Store.ListDLQ(ctx, ports.DLQFilter{Page: 1, PerPage: 1}); return err },
		"get":     func() error { _, err := s.Store.GetDLQ(ctx, id); return err },
		"requeue": func() error { _, err := s.Store.RequeueDLQ(ctx, id); return err },
		"resolve": func() error { _, err := s.Store.ResolveDLQ(ctx, id, "n"); return err },
		"record": func() error {
			_, err := s.Store.RecordPoison(ctx, ports.PoisonMessage{Queue: domain.QueueTaskRequests, MsgID: 1, Message: json.RawMessage(`{}`)})
			return err
		},
		"scan": func() error { _, err := s.Store.ScanStale(ctx, Policy); return err },
	}
	for op, call := range calls {
		require.ErrorIs(t, call(), ports.ErrDLQUnavailable, op)
	}
}
