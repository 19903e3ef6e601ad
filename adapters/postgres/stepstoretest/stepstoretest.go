// Package stepstoretest is the contract-test suite of the StepStore port
// (ports.StepStore), the worker's view of workflow steps. Every
// implementation runs it, the PostgreSQL store and the decorators the
// composition roots wrap around it (metrics) alike:
//
//	func TestStepStoreContract(t *testing.T) {
//		stepstoretest.Run(t, func(t *testing.T) stepstoretest.Subject {
//			db := testdb.New(t)
//			return stepstoretest.Subject{Store: postgres.NewStepStore(db), DB: db}
//		})
//	}
//
// The work is made with the internal/testdb factories on Subject.DB, the
// migrated database the store works on; the suite reads back only through
// the port (and the queues the outcome writes to).
//
// It pins what the port documents: LoadStep reads the step, its state and
// its task, a missing step is ErrNotFound; a step is claimed once, the losers
// get *domain.NotClaimableError with the current state (also under concurrent
// claimers); LoadAndClaim claims only a claimable step of the message's task
// and namespace and otherwise writes nothing; a winning claim's
// DependencyResults, when carried, equal DependencyResults; DependencyResults
// holds the processed transitive ancestors' results; PersistOutcome moves the
// step to complete or error, sends one completion message and deletes the
// step message, and a second persist — or one after the step left
// in_progress — returns false, sends nothing and still deletes the message.
//
// A decorator's Subject names the store it wraps as Reference: every read the
// suite makes through Store it repeats on Reference and requires the same
// answer, so a decorator that alters a result fails.
//
// Subtests run in parallel, each on a Subject of its own.
package stepstoretest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// Subject is one StepStore under test and the database it works on.
type Subject struct {
	Store ports.StepStore
	// DB is the migrated database Store reads and writes (fixtures are made on it).
	DB *sqlx.DB
	// Reference, when set, is the store Store decorates: the suite's reads
	// are repeated on it and must agree.
	Reference ports.StepStore
}

// Factory returns a new Subject for one subtest.
type Factory func(t *testing.T) Subject

// Run runs the whole suite against the Subjects f returns.
func Run(t *testing.T, f Factory) {
	t.Run("LoadStepReadsStepAndTask", func(t *testing.T) { testLoadStep(t, f) })
	t.Run("MissingStepIsNotFound", func(t *testing.T) { testMissing(t, f) })
	t.Run("ClaimStepByState", func(t *testing.T) { testClaimByState(t, f) })
	t.Run("ClaimedOnceSecondClaimLoses", func(t *testing.T) { testClaimedOnce(t, f) })
	t.Run("ConcurrentClaimersOneWinner", func(t *testing.T) { testConcurrentClaims(t, f) })
	t.Run("LoadAndClaim", func(t *testing.T) { testLoadAndClaim(t, f) })
	t.Run("WinningClaimCarriesDependencyResults", func(t *testing.T) { testClaimDeps(t, f) })
	t.Run("DependencyResults", func(t *testing.T) { testDependencyResults(t, f) })
	t.Run("PersistOutcome", func(t *testing.T) { testPersist(t, f) })
	t.Run("PersistOutcomeTwiceOrAfterTheStepMoved", func(t *testing.T) { testPersistIdempotent(t, f) })
	t.Run("PersistOutcomeRejectsBadInput", func(t *testing.T) { testPersistBadInput(t, f) })
}

func setup(t *testing.T, f Factory) (context.Context, Subject) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	s := f(t)
	require.NotNil(t, s.Store)
	require.NotNil(t, s.DB)
	return ctx, s
}

// load reads the step through Store (and Reference, which must agree).
func load(t *testing.T, ctx context.Context, s Subject, id uuid.UUID) ports.StepSnapshot {
	t.Helper()
	snap, err := s.Store.LoadStep(ctx, id)
	require.NoError(t, err)
	if s.Reference != nil {
		ref, err := s.Reference.LoadStep(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ref, snap, "the decorator returns the wrapped store's snapshot")
	}
	return snap
}

// deps reads DependencyResults through Store (and Reference, which must agree).
func deps(t *testing.T, ctx context.Context, s Subject, id uuid.UUID) map[string]json.RawMessage {
	t.Helper()
	got, err := s.Store.DependencyResults(ctx, id)
	require.NoError(t, err)
	if s.Reference != nil {
		ref, err := s.Reference.DependencyResults(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ref, got, "the decorator returns the wrapped store's results")
	}
	return got
}

func requireNotClaimable(t *testing.T, err error, id uuid.UUID, current domain.StepState) *domain.NotClaimableError {
	t.Helper()
	var nc *domain.NotClaimableError
	require.ErrorAs(t, err, &nc)
	require.Equal(t, current, nc.Current)
	require.Equal(t, id.String(), nc.StepUUID)
	return nc
}

func success(step uuid.UUID, result string) domain.StepExecutionResult {
	return domain.StepExecutionResult{StepUUID: step, Success: true, Result: json.RawMessage(result), Status: domain.ResultStatusCompleted,
		Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 5, CompletedAt: time.Now().UTC()}}
}

func failure(step uuid.UUID, message string) domain.StepExecutionResult {
	errorType := "http"
	return domain.StepExecutionResult{StepUUID: step, Success: false, Status: domain.ResultStatusFailed,
		Error:    &domain.StepExecutionError{Message: message, ErrorType: &errorType, Retryable: true},
		Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 7, Retryable: true, ErrorType: &errorType, CompletedAt: time.Now().UTC()}}
}

func testLoadStep(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{
		Namespace: "load_ns", Name: "load_task", Version: "2.1.0", Context: map[string]any{"even_number": 6},
		Steps: []testdb.StepSpec{
			{Name: "first"},
			{Name: "second", Deps: []string{"first"}, Retryable: testdb.Ptr(false), RetryLimit: 5, Inputs: map[string]any{"k": "v"}},
		},
	})

	snap := load(t, ctx, s, task.Steps["second"])
	require.Equal(t, task.Steps["second"], snap.Step.WorkflowStepUUID)
	require.Equal(t, task.TaskUUID, snap.Step.TaskUUID)
	require.Equal(t, "second", snap.Step.Name)
	require.False(t, snap.Step.Retryable)
	require.Equal(t, 5, snap.Step.RetryLimit)
	require.Equal(t, 0, snap.Step.Attempts)
	require.JSONEq(t, `{"k":"v"}`, string(snap.Step.Inputs))
	require.Equal(t, domain.StepPending, snap.State)
	require.False(t, snap.DependenciesSatisfied, "parent still pending")
	require.False(t, snap.Processed)
	require.Nil(t, snap.LastAttemptedAt)
	require.Equal(t, task.TaskUUID, snap.Task.TaskUUID)
	require.Equal(t, "load_ns", snap.Task.NamespaceName)
	require.Equal(t, "load_task", snap.Task.TaskName)
	require.Equal(t, "2.1.0", snap.Task.TaskVersion)
	require.Equal(t, task.NamedTaskUUID, snap.Task.NamedTaskUUID)
	require.JSONEq(t, `{"even_number":6}`, string(snap.Task.Context))
	require.Equal(t, domain.TaskPending, snap.TaskState)
	var cfg domain.TaskTemplate
	require.NoError(t, json.Unmarshal(snap.Configuration, &cfg))
	require.Equal(t, "load_task", cfg.Name)
	require.Len(t, cfg.Steps, 2)
	require.Nil(t, snap.DependencyResults, "only a winning claim carries dependency results")

	testdb.SetStepState(t, s.DB, task.Steps["first"], domain.StepComplete)
	testdb.SetTaskState(t, s.DB, task.TaskUUID, domain.TaskInProgress)
	snap = load(t, ctx, s, task.Steps["second"])
	require.True(t, snap.DependenciesSatisfied)
	require.Equal(t, domain.TaskInProgress, snap.TaskState)
	first := load(t, ctx, s, task.Steps["first"])
	require.Equal(t, domain.StepComplete, first.State)
	require.True(t, first.DependenciesSatisfied, "a root step's dependencies are satisfied")
}

func testMissing(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	id := uuid.Must(uuid.NewV7())
	_, err := s.Store.LoadStep(ctx, id)
	require.ErrorIs(t, err, ports.ErrNotFound)
	_, err = s.Store.ClaimStep(ctx, id, "w")
	require.ErrorIs(t, err, ports.ErrNotFound)
	_, claimed, err := s.Store.LoadAndClaim(ctx, id, uuid.Must(uuid.NewV7()), "ns", "w")
	require.ErrorIs(t, err, ports.ErrNotFound)
	require.False(t, claimed)
	ok, err := s.Store.PersistOutcome(ctx, ports.StepOutcome{StepUUID: id, Result: success(id, `1`), Queue: "missing_queue", MsgID: 1})
	require.ErrorIs(t, err, ports.ErrNotFound)
	require.False(t, ok)
}

func testClaimByState(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	cases := []struct {
		name        string
		state       domain.StepState // "" = pending, as created
		parentState domain.StepState // "" = no parent
		claimable   bool
		wantDeps    bool // NotClaimableError.DependenciesSatisfied
	}{
		{name: "pending without parents", claimable: true},
		{name: "pending with complete parent", parentState: domain.StepComplete, claimable: true},
		{name: "enqueued", state: domain.StepEnqueued, claimable: true},
		{name: "enqueued with pending parent (enqueued is trusted)", state: domain.StepEnqueued, parentState: domain.StepPending, claimable: true},
		{name: "pending with pending parent", parentState: domain.StepPending},
		{name: "in_progress", state: domain.StepInProgress, wantDeps: true},
		{name: "complete", state: domain.StepComplete, wantDeps: true},
		{name: "error", state: domain.StepError, wantDeps: true},
		{name: "cancelled", state: domain.StepCancelled, wantDeps: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := []testdb.StepSpec{{Name: "a"}}
			if tc.parentState != "" {
				steps = []testdb.StepSpec{{Name: "p"}, {Name: "a", Deps: []string{"p"}}}
			}
			task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Steps: steps})
			if tc.parentState != "" && tc.parentState != domain.StepPending {
				testdb.SetStepState(t, s.DB, task.Steps["p"], tc.parentState)
			}
			id := task.Steps["a"]
			if tc.state != "" {
				testdb.SetStepState(t, s.DB, id, tc.state)
			}
			before := load(t, ctx, s, id)

			snap, err := s.Store.ClaimStep(ctx, id, "worker-7")
			if !tc.claimable {
				nc := requireNotClaimable(t, err, id, before.State)
				require.Equal(t, tc.wantDeps, nc.DependenciesSatisfied)
				require.Equal(t, before, load(t, ctx, s, id), "a loser writes nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, domain.StepInProgress, snap.State)
			require.Equal(t, id, snap.Step.WorkflowStepUUID)
			require.Equal(t, before.Step.Attempts+1, snap.Step.Attempts, "the snapshot shows the post-claim attempts")
			require.NotNil(t, snap.LastAttemptedAt)
			after := load(t, ctx, s, id)
			require.Equal(t, domain.StepInProgress, after.State)
			require.Equal(t, snap.Step.Attempts, after.Step.Attempts)
		})
	}
}

func testClaimedOnce(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Namespace: "once_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
	id := task.Steps["a"]
	testdb.SetStepState(t, s.DB, id, domain.StepEnqueued)

	won, err := s.Store.ClaimStep(ctx, id, "w1")
	require.NoError(t, err)
	require.Equal(t, domain.StepInProgress, won.State)
	require.Equal(t, 1, won.Step.Attempts)

	_, err = s.Store.ClaimStep(ctx, id, "w2")
	nc := requireNotClaimable(t, err, id, domain.StepInProgress)
	require.True(t, nc.DependenciesSatisfied)
	snap, claimed, err := s.Store.LoadAndClaim(ctx, id, task.TaskUUID, "once_ns", "w3")
	require.NoError(t, err)
	require.False(t, claimed, "an in_progress step is not claimed again")
	require.Equal(t, domain.StepInProgress, snap.State)
	require.Nil(t, snap.DependencyResults, "a lost claim carries no dependency results")
	require.Equal(t, 1, load(t, ctx, s, id).Step.Attempts, "the losers used no attempt")
}

func testConcurrentClaims(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	const steps, racers = 10, 6
	spec := testdb.TaskSpec{Namespace: "race_ns"}
	for i := range steps {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: string(rune('a' + i))})
	}
	task := testdb.CreateTask(t, s.DB, spec)
	type outcome struct {
		step uuid.UUID
		won  bool
		err  error
	}
	results := make(chan outcome, steps*racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range task.Steps {
		for r := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if r%2 == 1 {
					snap, claimed, err := s.Store.LoadAndClaim(ctx, id, task.TaskUUID, "race_ns", "racer")
					if err == nil && !claimed {
						err = &domain.NotClaimableError{StepUUID: id.String(), Current: snap.State}
					}
					results <- outcome{step: id, won: claimed, err: err}
					return
				}
				_, err := s.Store.ClaimStep(ctx, id, "racer")
				results <- outcome{step: id, won: err == nil, err: err}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(results)
	winners := map[uuid.UUID]int{}
	for o := range results {
		if o.won {
			winners[o.step]++
			continue
		}
		requireNotClaimable(t, o.err, o.step, domain.StepInProgress)
	}
	require.Len(t, winners, steps, "every step has a winner")
	for id, n := range winners {
		require.Equal(t, 1, n, "exactly one winner for %s", id)
		require.Equal(t, 1, load(t, ctx, s, id).Step.Attempts, "one attempt used")
	}
}

// LoadAndClaimCase is one case of LoadAndClaimCases: a step of a one-step
// task in namespace "lc_ns", in State ("" = pending, as created), asked for
// by a message naming its task (or another, OtherTask) and Namespace.
type LoadAndClaimCase struct {
	Name        string
	State       domain.StepState
	OtherTask   bool
	Namespace   string
	WantClaimed bool
	WantState   domain.StepState
}

// LoadAndClaimCases are the cases of the LoadAndClaim subtest, shared with
// adapter tests that check the rows behind them.
var LoadAndClaimCases = []LoadAndClaimCase{
	{Name: "pending root", Namespace: "lc_ns", WantClaimed: true, WantState: domain.StepInProgress},
	{Name: "enqueued", State: domain.StepEnqueued, Namespace: "lc_ns", WantClaimed: true, WantState: domain.StepInProgress},
	{Name: "enqueued, other task", State: domain.StepEnqueued, OtherTask: true, Namespace: "lc_ns", WantState: domain.StepEnqueued},
	{Name: "enqueued, other namespace", State: domain.StepEnqueued, Namespace: "other_ns", WantState: domain.StepEnqueued},
	{Name: "complete", State: domain.StepComplete, Namespace: "lc_ns", WantState: domain.StepComplete},
	{Name: "in_progress", State: domain.StepInProgress, Namespace: "lc_ns", WantState: domain.StepInProgress},
	{Name: "error", State: domain.StepError, Namespace: "lc_ns", WantState: domain.StepError},
}

func testLoadAndClaim(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	cases := LoadAndClaimCases
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Namespace: "lc_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
			id := task.Steps["a"]
			if tc.State != "" {
				testdb.SetStepState(t, s.DB, id, tc.State)
			}
			owner := task.TaskUUID
			if tc.OtherTask {
				owner = uuid.Must(uuid.NewV7())
			}
			before := load(t, ctx, s, id)

			snap, claimed, err := s.Store.LoadAndClaim(ctx, id, owner, tc.Namespace, "worker-9")
			require.NoError(t, err)
			require.Equal(t, tc.WantClaimed, claimed)
			require.Equal(t, tc.WantState, snap.State)
			require.Equal(t, task.TaskUUID, snap.Step.TaskUUID, "the snapshot shows the step's real task")
			require.Equal(t, "lc_ns", snap.Task.NamespaceName)
			require.NotEmpty(t, snap.Configuration)
			if !tc.WantClaimed {
				require.Equal(t, before, load(t, ctx, s, id), "nothing written")
				return
			}
			require.Equal(t, before.Step.Attempts+1, snap.Step.Attempts, "post-claim attempts")
			require.NotNil(t, snap.LastAttemptedAt)
			require.Equal(t, domain.StepInProgress, load(t, ctx, s, id).State)
		})
	}
}

// DAGTask is root → left, right; left → leaf; leaf, right → final; unrelated
// is no ancestor of final. root, left and leaf are complete with results
// (leaf as a legacy row holding only the raw handler result, passed as
// stored per D-r), right is complete without results, unrelated complete
// with one.
func DAGTask(t *testing.T, db *sqlx.DB, ns string) testdb.CreatedTask {
	t.Helper()
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: ns, Steps: []testdb.StepSpec{
		{Name: "root"}, {Name: "left", Deps: []string{"root"}}, {Name: "right", Deps: []string{"root"}},
		{Name: "leaf", Deps: []string{"left"}}, {Name: "final", Deps: []string{"leaf", "right"}}, {Name: "unrelated"},
	}})
	full := func(name, result string) json.RawMessage {
		b, err := json.Marshal(success(task.Steps[name], result))
		require.NoError(t, err)
		return b
	}
	for _, name := range []string{"root", "left", "leaf", "right", "unrelated"} {
		testdb.SetStepState(t, db, task.Steps[name], domain.StepComplete)
	}
	testdb.SetStepResults(t, db, task.Steps["root"], full("root", `4`))
	testdb.SetStepResults(t, db, task.Steps["left"], full("left", `{"v":16}`))
	testdb.SetStepResults(t, db, task.Steps["leaf"], json.RawMessage(`{"result_of_leaf":256}`))
	testdb.SetStepResults(t, db, task.Steps["unrelated"], full("unrelated", `1`))
	return task
}

func requireDeps(t *testing.T, got map[string]json.RawMessage, want map[string]string) {
	t.Helper()
	require.NotNil(t, got)
	require.Len(t, got, len(want))
	for name, v := range want {
		require.JSONEq(t, v, string(got[name]), name)
	}
}

// DAGWant is what the final step of a DAGTask gets as dependency results.
var DAGWant = map[string]string{"root": `4`, "left": `{"v":16}`, "leaf": `{"result_of_leaf":256}`}

func testDependencyResults(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	task := DAGTask(t, s.DB, "dr_ns")
	requireDeps(t, deps(t, ctx, s, task.Steps["final"]), DAGWant)
	require.Empty(t, deps(t, ctx, s, task.Steps["root"]), "a root step has no dependency results")

	// A parent with results but not processed (error) is left out, and so
	// is a processed one without results.
	other := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b"}, {Name: "c", Deps: []string{"a", "b"}}}})
	testdb.SetStepState(t, s.DB, other.Steps["a"], domain.StepError)
	b, err := json.Marshal(success(other.Steps["a"], `99`))
	require.NoError(t, err)
	testdb.SetStepResults(t, s.DB, other.Steps["a"], b)
	testdb.SetStepState(t, s.DB, other.Steps["b"], domain.StepComplete)
	require.Empty(t, deps(t, ctx, s, other.Steps["c"]))
}

func testClaimDeps(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	check := func(t *testing.T, step uuid.UUID, carried map[string]json.RawMessage, want map[string]string) {
		t.Helper()
		separate := deps(t, ctx, s, step)
		requireDeps(t, separate, want)
		if carried != nil {
			require.Equal(t, separate, carried, "carried results equal DependencyResults")
		}
	}
	t.Run("LoadAndClaim", func(t *testing.T) {
		task := DAGTask(t, s.DB, "dr_ns")
		snap, claimed, err := s.Store.LoadAndClaim(ctx, task.Steps["final"], task.TaskUUID, "dr_ns", "w")
		require.NoError(t, err)
		require.True(t, claimed)
		check(t, task.Steps["final"], snap.DependencyResults, DAGWant)

		again, claimed, err := s.Store.LoadAndClaim(ctx, task.Steps["final"], task.TaskUUID, "dr_ns", "w")
		require.NoError(t, err)
		require.False(t, claimed)
		require.Nil(t, again.DependencyResults, "a claim not won carries none")
	})
	t.Run("ClaimStep", func(t *testing.T) {
		task := DAGTask(t, s.DB, "dr_ns")
		snap, err := s.Store.ClaimStep(ctx, task.Steps["final"], "w")
		require.NoError(t, err)
		check(t, task.Steps["final"], snap.DependencyResults, DAGWant)
	})
	t.Run("root", func(t *testing.T) {
		task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Namespace: "dr_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
		snap, claimed, err := s.Store.LoadAndClaim(ctx, task.Steps["a"], task.TaskUUID, "dr_ns", "w")
		require.NoError(t, err)
		require.True(t, claimed)
		check(t, task.Steps["a"], snap.DependencyResults, map[string]string{})
	})
}

// claimed is a claimed step with its step message in its namespace queue.
type claimed struct {
	task  testdb.CreatedTask
	step  uuid.UUID
	queue string
	msgID int64
}

func newClaimed(t *testing.T, ctx context.Context, s Subject, ns string) claimed {
	t.Helper()
	testdb.CreateQueue(t, s.DB, domain.QueueStepResults)
	task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Namespace: ns, Steps: []testdb.StepSpec{{Name: "a"}}})
	c := claimed{task: task, step: task.Steps["a"], queue: domain.QueueName(ns)}
	c.msgID = testdb.SendStepMessage(t, s.DB, c.queue, task.TaskUUID, c.step)
	_, err := s.Store.ClaimStep(ctx, c.step, "w1")
	require.NoError(t, err)
	return c
}

func (c claimed) outcome(res domain.StepExecutionResult) ports.StepOutcome {
	return ports.StepOutcome{TaskUUID: c.task.TaskUUID, StepUUID: c.step, Result: res, Queue: c.queue, MsgID: c.msgID, WorkerID: "w1"}
}

// completions returns the completion messages sent for c's step.
func completions(t *testing.T, db *sqlx.DB, c claimed) []domain.SimpleStepMessage {
	t.Helper()
	var out []domain.SimpleStepMessage
	for _, m := range testdb.QueueMessages(t, db, domain.QueueStepResults) {
		var msg domain.SimpleStepMessage
		require.NoError(t, json.Unmarshal(m.Message, &msg))
		if msg.StepUUID == c.step {
			out = append(out, msg)
		}
	}
	return out
}

func messageLeft(t *testing.T, db *sqlx.DB, c claimed) bool {
	t.Helper()
	for _, m := range testdb.QueueMessages(t, db, c.queue) {
		if m.MsgID == c.msgID {
			return true
		}
	}
	return false
}

func testPersist(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	cases := []struct {
		name   string
		result func(uuid.UUID) domain.StepExecutionResult
		want   domain.StepState
	}{
		{"success", func(id uuid.UUID) domain.StepExecutionResult { return success(id, `{"answer":42}`) }, domain.StepComplete},
		{"handler failure", func(id uuid.UUID) domain.StepExecutionResult { return failure(id, "upstream 503") }, domain.StepError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClaimed(t, ctx, s, "outcome_ns")
			ok, err := s.Store.PersistOutcome(ctx, c.outcome(tc.result(c.step)))
			require.NoError(t, err)
			require.True(t, ok)
			snap := load(t, ctx, s, c.step)
			require.Equal(t, tc.want, snap.State)
			require.Equal(t, []domain.SimpleStepMessage{{TaskUUID: c.task.TaskUUID, StepUUID: c.step}}, completions(t, s.DB, c),
				"one completion message")
			require.False(t, messageLeft(t, s.DB, c), "the step message is deleted")
		})
	}
	t.Run("results reach the dependents", func(t *testing.T) {
		testdb.CreateQueue(t, s.DB, domain.QueueStepResults)
		task := testdb.CreateTask(t, s.DB, testdb.TaskSpec{Namespace: "chain_ns", Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})
		queue := domain.QueueName("chain_ns")
		msg := testdb.SendStepMessage(t, s.DB, queue, task.TaskUUID, task.Steps["a"])
		_, err := s.Store.ClaimStep(ctx, task.Steps["a"], "w1")
		require.NoError(t, err)
		ok, err := s.Store.PersistOutcome(ctx, ports.StepOutcome{TaskUUID: task.TaskUUID, StepUUID: task.Steps["a"],
			Result: success(task.Steps["a"], `{"n":2}`), Queue: queue, MsgID: msg, WorkerID: "w1"})
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, load(t, ctx, s, task.Steps["b"]).DependenciesSatisfied)
		requireDeps(t, deps(t, ctx, s, task.Steps["b"]), map[string]string{"a": `{"n":2}`})
	})
}

func testPersistIdempotent(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	t.Run("second persist", func(t *testing.T) {
		c := newClaimed(t, ctx, s, "twice_ns")
		ok, err := s.Store.PersistOutcome(ctx, c.outcome(success(c.step, `1`)))
		require.NoError(t, err)
		require.True(t, ok)
		before := load(t, ctx, s, c.step)
		ok, err = s.Store.PersistOutcome(ctx, c.outcome(failure(c.step, "late duplicate")))
		require.NoError(t, err)
		require.False(t, ok, "a redelivered duplicate is discarded")
		require.Equal(t, before, load(t, ctx, s, c.step), "nothing written")
		require.Len(t, completions(t, s.DB, c), 1, "no second completion message")
	})
	t.Run("step left in_progress", func(t *testing.T) {
		c := newClaimed(t, ctx, s, "cas_ns")
		testdb.SetStepState(t, s.DB, c.step, domain.StepCancelled) // cancelled while the handler ran
		before := load(t, ctx, s, c.step)
		ok, err := s.Store.PersistOutcome(ctx, c.outcome(success(c.step, `1`)))
		require.NoError(t, err)
		require.False(t, ok, "outcome discarded")
		require.Equal(t, before, load(t, ctx, s, c.step), "nothing written")
		require.Empty(t, completions(t, s.DB, c), "nothing sent")
		require.False(t, messageLeft(t, s.DB, c), "the step message is still deleted")
	})
}

func testPersistBadInput(t *testing.T, f Factory) {
	ctx, s := setup(t, f)
	c := newClaimed(t, ctx, s, "bad_ns")
	other := uuid.Must(uuid.NewV7())
	cases := map[string]ports.StepOutcome{
		"no step":                 {Result: success(c.step, `1`)},
		"result for another step": {StepUUID: c.step, Result: success(other, `1`), Queue: c.queue, MsgID: c.msgID},
		"wrong task":              {TaskUUID: other, StepUUID: c.step, Result: success(c.step, `1`), Queue: c.queue, MsgID: c.msgID},
	}
	before := load(t, ctx, s, c.step)
	for name, o := range cases {
		ok, err := s.Store.PersistOutcome(ctx, o)
		require.Error(t, err, name)
		require.False(t, ok, name)
		require.Equal(t, before, load(t, ctx, s, c.step), "%s: nothing written", name)
		require.True(t, messageLeft(t, s.DB, c), "%s: message kept", name)
		require.Empty(t, completions(t, s.DB, c), name)
	}
}
