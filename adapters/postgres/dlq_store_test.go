package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// backdate moves every transition of the task and its steps an hour back.
func backdate(t *testing.T, db *sqlx.DB, task uuid.UUID) {
	t.Helper()
	_, err := db.Exec(`UPDATE tasker_task_transitions SET created_at = created_at - interval '1 hour' WHERE task_uuid = $1`, task)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE tasker_workflow_step_transitions st SET created_at = st.created_at - interval '1 hour'
		FROM tasker_workflow_steps ws WHERE ws.workflow_step_uuid = st.workflow_step_uuid AND ws.task_uuid = $1`, task)
	require.NoError(t, err)
}

func currentStepState(t *testing.T, db *sqlx.DB, step uuid.UUID) domain.StepState {
	t.Helper()
	s, err := postgres.CurrentStepState(context.Background(), db, step)
	require.NoError(t, err)
	return s
}

func currentTaskState(t *testing.T, db *sqlx.DB, task uuid.UUID) domain.TaskState {
	t.Helper()
	s, err := postgres.CurrentTaskState(context.Background(), db, task)
	require.NoError(t, err)
	return s
}

var policy = ports.StalenessPolicy{EnqueuedTimeout: 10 * time.Minute, TaskTimeout: 2 * time.Hour, FailTask: true}

// A step enqueued past the threshold is dead-lettered once (even by
// concurrent scanners), fails with its task (reason in the metadata), and
// requeue gives it a fresh budget and resets the task.
func TestScanStaleEnqueuedStepThenRequeue(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	fresh := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "nobody", Steps: []testdb.StepSpec{{Name: "a"}}})
	stale := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "nobody", Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})
	for _, tk := range []testdb.CreatedTask{fresh, stale} {
		testdb.SetTaskState(t, db, tk.TaskUUID, domain.TaskInProgress)
		testdb.SetStepState(t, db, tk.Steps["a"], domain.StepEnqueued)
	}
	backdate(t, db, stale.TaskUUID)
	store := postgres.NewDLQStore(db)

	var wg sync.WaitGroup
	found := make([][]domain.DLQEntry, 4)
	for i := range found {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			found[i], err = store.ScanStale(ctx, policy)
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	var all []domain.DLQEntry
	for _, f := range found {
		all = append(all, f...)
	}
	require.Len(t, all, 1, "four concurrent scanners record the stale step once")
	e := all[0]
	require.Equal(t, stale.TaskUUID, e.TaskUUID)
	require.Equal(t, stale.Steps["a"], e.StepUUID)
	require.Equal(t, "nobody", e.Namespace)
	require.Equal(t, domain.DLQEnqueuedTimeout, e.Reason)
	require.Equal(t, domain.DLQOpen, e.Status)
	require.Contains(t, e.Detail, "does any worker serve namespace nobody")
	require.Equal(t, domain.TaskError, currentTaskState(t, db, stale.TaskUUID))
	require.Equal(t, domain.StepError, currentStepState(t, db, stale.Steps["a"]))
	require.Equal(t, domain.TaskInProgress, currentTaskState(t, db, fresh.TaskUUID), "a fresh enqueue is left alone")
	var meta map[string]any
	require.NoError(t, json.Unmarshal(taskTransitionRows(t, db, stale.TaskUUID)[len(taskTransitionRows(t, db, stale.TaskUUID))-1].Metadata, &meta))
	require.Equal(t, "enqueued_timeout", meta["dlq_reason"])
	require.Equal(t, e.EntryUUID.String(), meta["dlq_entry_uuid"])

	again, err := store.ScanStale(ctx, policy)
	require.NoError(t, err)
	require.Empty(t, again, "an errored step is not found again")

	page, err := store.ListDLQ(ctx, ports.DLQFilter{Namespace: "nobody", Reason: domain.DLQEnqueuedTimeout, Status: domain.DLQOpen, Page: 1, PerPage: 10})
	require.NoError(t, err)
	require.EqualValues(t, 1, page.TotalCount)
	page, err = store.ListDLQ(ctx, ports.DLQFilter{Namespace: "other", Page: 1, PerPage: 10})
	require.NoError(t, err)
	require.Zero(t, page.TotalCount)

	_, err = db.Exec(`UPDATE tasker_workflow_steps SET attempts = 3 WHERE workflow_step_uuid = $1`, stale.Steps["a"])
	require.NoError(t, err)
	req, err := store.RequeueDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Equal(t, domain.DLQRequeued, req.Status)
	require.Equal(t, domain.StepPending, currentStepState(t, db, stale.Steps["a"]))
	require.Equal(t, domain.TaskPending, currentTaskState(t, db, stale.TaskUUID))
	var attempts int
	require.NoError(t, db.Get(&attempts, `SELECT attempts FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, stale.Steps["a"]))
	require.Zero(t, attempts, "fresh attempt budget")
	requireWellFormedHistory(t, stepTransitionRows(t, db, stale.Steps["a"]))
	requireWellFormedHistory(t, taskTransitionRows(t, db, stale.TaskUUID))

	_, err = store.RequeueDLQ(ctx, e.EntryUUID)
	var ce *ports.ConflictError
	require.ErrorAs(t, err, &ce, "only open entries are requeued")
	res, err := store.ResolveDLQ(ctx, e.EntryUUID, "worker for nobody deployed")
	require.NoError(t, err)
	require.Equal(t, domain.DLQResolved, res.Status)
	require.Equal(t, "worker for nobody deployed", res.ResolutionNote)
	_, err = store.ResolveDLQ(ctx, e.EntryUUID, "twice")
	require.ErrorAs(t, err, &ce)
	_, err = store.GetDLQ(ctx, uuid.New())
	require.ErrorIs(t, err, ports.ErrNotFound)
}

// With action alert the entry is recorded but nothing moves.
func TestScanStaleAlertOnlyAndTaskTimeout(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	tk := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
	testdb.SetTaskState(t, db, tk.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, tk.Steps["a"], domain.StepInProgress)
	backdate(t, db, tk.TaskUUID)
	store := postgres.NewDLQStore(db)
	p := ports.StalenessPolicy{EnqueuedTimeout: time.Minute, TaskTimeout: 30 * time.Minute}
	got, err := store.ScanStale(ctx, p)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, domain.DLQTaskTimeout, got[0].Reason)
	require.Equal(t, uuid.Nil, got[0].StepUUID)
	require.Equal(t, domain.TaskInProgress, currentTaskState(t, db, tk.TaskUUID), "alert leaves the task")
	require.Equal(t, domain.StepInProgress, currentStepState(t, db, tk.Steps["a"]))
	got, err = store.ScanStale(ctx, p)
	require.NoError(t, err)
	require.Empty(t, got, "one open entry per task and reason")
}

// A task timed out and failed while its step still ran; the step then
// finished. Requeue resets the task and finalizes it: complete.
func TestRequeueTaskTimeoutFinalizesFinishedTask(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	tk := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
	testdb.SetTaskState(t, db, tk.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, tk.Steps["a"], domain.StepInProgress)
	backdate(t, db, tk.TaskUUID)
	store := postgres.NewDLQStore(db)
	got, err := store.ScanStale(ctx, ports.StalenessPolicy{EnqueuedTimeout: time.Minute, TaskTimeout: 30 * time.Minute, FailTask: true})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, domain.TaskError, currentTaskState(t, db, tk.TaskUUID))
	require.Equal(t, domain.StepInProgress, currentStepState(t, db, tk.Steps["a"]), "a running step is left to finish")
	testdb.SetStepState(t, db, tk.Steps["a"], domain.StepComplete)
	_, err = store.RequeueDLQ(ctx, got[0].EntryUUID)
	require.NoError(t, err)
	require.Equal(t, domain.TaskComplete, currentTaskState(t, db, tk.TaskUUID))
	requireWellFormedHistory(t, taskTransitionRows(t, db, tk.TaskUUID))
}

// A step whose message was archived, with no other message, is found.
func TestScanStaleArchivedMessage(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	tk := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "poisoned", Steps: []testdb.StepSpec{{Name: "a"}}})
	testdb.SetTaskState(t, db, tk.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, tk.Steps["a"], domain.StepEnqueued)
	testdb.CreateQueue(t, db, "poisoned_queue")
	id := testdb.SendStepMessage(t, db, "poisoned_queue", tk.TaskUUID, tk.Steps["a"])
	store := postgres.NewDLQStore(db)
	got, err := store.ScanStale(ctx, policy)
	require.NoError(t, err)
	require.Empty(t, got, "a live message is not stale")
	_, err = db.Exec(`SELECT pgmq.archive('poisoned_queue', $1::bigint)`, id)
	require.NoError(t, err)
	got, err = store.ScanStale(ctx, policy)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, domain.DLQMessageArchived, got[0].Reason)
	require.Equal(t, tk.Steps["a"], got[0].StepUUID)
	require.Contains(t, got[0].Detail, "archived")
	require.Equal(t, domain.TaskError, currentTaskState(t, db, tk.TaskUUID))
}

// A poison request message is kept and can be sent again.
func TestRecordPoisonAndRequeueSendsItAgain(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	testdb.CreateQueue(t, db, domain.QueueTaskRequests)
	store := postgres.NewDLQStore(db)
	msg := json.RawMessage(`{"request_id":"r1","task_request":{"name":"x","namespace":"y","version":"1","priority":3000000000}}`)
	e, err := store.RecordPoison(ctx, ports.PoisonMessage{Queue: domain.QueueTaskRequests, MsgID: 7, Message: msg, Detail: "value out of range"})
	require.NoError(t, err)
	require.Equal(t, domain.DLQPoisonMessage, e.Reason)
	require.Equal(t, domain.QueueTaskRequests, e.QueueName)
	require.JSONEq(t, string(msg), string(e.Message))
	_, err = store.RequeueDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	require.Len(t, testdb.QueueMessages(t, db, domain.QueueTaskRequests), 1)
}

// Without the table every DLQ operation is ErrDLQUnavailable.
func TestDLQWithoutTable(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	_, err := db.Exec(`DROP TABLE tasker_go_dlq_entries`)
	require.NoError(t, err)
	store := postgres.NewDLQStore(db)
	_, err = store.ListDLQ(context.Background(), ports.DLQFilter{Page: 1, PerPage: 1})
	require.ErrorIs(t, err, ports.ErrDLQUnavailable)
	_, err = store.ScanStale(context.Background(), policy)
	require.ErrorIs(t, err, ports.ErrDLQUnavailable)
}
