package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestClaimBatchSetStatement: one batch (one transaction, one set-based
// statement per round) holding every kind of claim gives each its own
// answer, exactly as separate transactions would: a repeated step is claimed
// once and its repeat loses to in_progress; a mismatched task or namespace,
// a complete or in_progress step are not claimed and nothing is written for
// them; a missing step fails alone.
func TestClaimBatchSetStatement(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	ctx := context.Background()
	mk := func(state domain.StepState) (uuid.UUID, uuid.UUID) {
		task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "batch_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
		if state != "" {
			testdb.SetStepState(t, db, task.Steps["a"], state)
		}
		return task.TaskUUID, task.Steps["a"]
	}
	ns, otherNS := "batch_ns", "other_ns"
	taskA, stepA := mk("")
	taskB, stepB := mk(domain.StepEnqueued)
	taskC, stepC := mk(domain.StepEnqueued)
	_, stepD := mk(domain.StepComplete)
	_, stepE := mk(domain.StepInProgress)
	taskF, stepF := mk(domain.StepEnqueued)
	wrongTask := uuid.Must(uuid.NewV7())
	_ = taskC
	before := map[uuid.UUID][]transitionRow{}
	for _, id := range []uuid.UUID{stepC, stepD, stepE, stepF} {
		before[id] = stepTransitionRows(t, db, id)
	}

	claims := []postgres.BatchClaim{
		{Step: stepA, Task: &taskA, NS: &ns},
		{Step: stepB, Task: &taskB, NS: &ns},
		{Step: stepA, Task: &taskA, NS: &ns}, // repeat: loses to the first
		{Step: stepC, Task: &wrongTask, NS: &ns},
		{Step: stepD},
		{Step: uuid.Must(uuid.NewV7())}, // missing
		{Step: stepE},
		{Step: stepF, Task: &taskF, NS: &otherNS},
	}
	snaps, claimed, errs := store.ClaimBatchForTest(ctx, claims, "w-batch")
	require.ErrorIs(t, errs[5], ports.ErrNotFound)
	for i, err := range errs {
		if i != 5 {
			require.NoError(t, err, "claim %d", i)
		}
	}
	require.Equal(t, []bool{true, true, false, false, false, false, false, false}, claimed)
	want := []domain.StepState{domain.StepInProgress, domain.StepInProgress, domain.StepInProgress,
		domain.StepEnqueued, domain.StepComplete, "", domain.StepInProgress, domain.StepEnqueued}
	for i, w := range want {
		if i != 5 {
			require.Equal(t, w, snaps[i].State, "claim %d", i)
			require.Equal(t, claims[i].Step, snaps[i].Step.WorkflowStepUUID, "claim %d answered with its own step", i)
		}
	}
	require.Equal(t, 1, snaps[0].Step.Attempts)
	require.Equal(t, 1, snaps[2].Step.Attempts, "the repeat sees the first claim's write")
	for _, id := range []uuid.UUID{stepA, stepB} {
		rows := stepTransitionRows(t, db, id)
		requireWellFormedHistory(t, rows)
		require.Equal(t, "in_progress", rows[len(rows)-1].ToState)
		require.Equal(t, 1, readStepColumns(t, db, id).Attempts)
	}
	inProgress := 0
	for _, r := range stepTransitionRows(t, db, stepA) {
		if r.ToState == "in_progress" {
			inProgress++
		}
	}
	require.Equal(t, 1, inProgress, "one in_progress row for the repeated step")
	for id, rows := range before {
		require.Equal(t, rows, stepTransitionRows(t, db, id), "nothing written for %s", id)
	}
	var txs int
	require.NoError(t, db.Get(&txs, `SELECT COUNT(DISTINCT xmin::text) FROM tasker_workflow_step_transitions
		WHERE to_state = 'in_progress' AND workflow_step_uuid = ANY($1::uuid[])`, []string{stepA.String(), stepB.String()}))
	require.Equal(t, 1, txs, "the batch is one transaction")
}

// TestPersistBatchSetStatement: one outcome batch with a repeated outcome, a
// failure, a wrong task, a lost compare-and-set and a missing step. Each gets
// its own answer; one completion message per persisted outcome; every
// processed outcome's message deleted (the lost one too); the wrong task and
// the missing step fail alone and write nothing.
func TestPersistBatchSetStatement(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	ctx := context.Background()
	ok1 := newOutcomeFixture(t, db, store, "pbatch_ns")
	fail := newOutcomeFixture(t, db, store, "pbatch_ns")
	wrong := newOutcomeFixture(t, db, store, "pbatch_ns")
	lost := newOutcomeFixture(t, db, store, "pbatch_ns")
	testdb.SetStepState(t, db, lost.step, domain.StepCancelled)
	wrongRows := stepTransitionRows(t, db, wrong.step)
	out := func(f outcomeFixture, r domain.StepExecutionResult) ports.StepOutcome {
		return ports.StepOutcome{TaskUUID: f.task.TaskUUID, StepUUID: f.step, Result: r, Queue: f.queue, MsgID: f.msgID, WorkerID: "w-pbatch"}
	}
	wrongOut := out(wrong, successResult(wrong.step, `1`))
	wrongOut.TaskUUID = uuid.Must(uuid.NewV7())
	missing := uuid.Must(uuid.NewV7())
	persisted, errs := store.PersistBatchForTest(ctx, []ports.StepOutcome{
		out(ok1, successResult(ok1.step, `49`)),
		out(fail, failureResult(fail.step, "boom", "permanent_error")),
		out(ok1, successResult(ok1.step, `50`)), // repeat: the step is complete by then
		wrongOut,
		out(lost, successResult(lost.step, `2`)),
		{TaskUUID: ok1.task.TaskUUID, StepUUID: missing, Result: successResult(missing, `3`)},
	})
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NoError(t, errs[2])
	require.ErrorContains(t, errs[3], "belongs to task")
	require.NoError(t, errs[4])
	require.ErrorIs(t, errs[5], ports.ErrNotFound)
	require.Equal(t, []bool{true, true, false, false, false, false}, persisted)

	rows := stepTransitionRows(t, db, ok1.step)
	requireWellFormedHistory(t, rows)
	require.Equal(t, "complete", rows[len(rows)-1].ToState)
	require.JSONEq(t, `49`, string(readStepResult(t, db, ok1.step)), "the first outcome wins")
	rows = stepTransitionRows(t, db, fail.step)
	require.Equal(t, "error", rows[len(rows)-1].ToState)
	for _, f := range []outcomeFixture{ok1, fail} {
		require.Len(t, completionMessagesFor(t, f), 1, "one completion message for %s", f.step)
		require.False(t, stepMessageExists(t, f))
	}
	require.Empty(t, completionMessagesFor(t, lost), "a lost compare-and-set sends nothing")
	require.False(t, stepMessageExists(t, lost), "but acknowledges its message")
	require.Equal(t, wrongRows, stepTransitionRows(t, db, wrong.step), "wrong task: nothing written")
	require.True(t, stepMessageExists(t, wrong), "wrong task: message kept")
	require.Empty(t, completionMessagesFor(t, wrong))
}

// readStepResult is the stored StepExecutionResult's result value.
func readStepResult(t *testing.T, db interface {
	Get(dest any, query string, args ...any) error
}, step uuid.UUID) []byte {
	t.Helper()
	var raw []byte
	require.NoError(t, db.Get(&raw, `SELECT results->'result' FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, step))
	return raw
}

// TestClaimBatchFallbackKeepsEachVerdict: when a batch's transaction fails
// (here one claim's metadata is not JSON, so the statement errors), every
// claim is retried alone and keeps its own verdict: the good one is claimed,
// the bad one gets the statement's error, the missing step still reports
// not found (it used to come back without an error and an empty snapshot).
func TestClaimBatchFallbackKeepsEachVerdict(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	good := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "fallback_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
	bad := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "fallback_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
	badRows := stepTransitionRows(t, db, bad.Steps["a"])
	_, claimed, errs := store.ClaimBatchForTest(context.Background(), []postgres.BatchClaim{
		{Step: good.Steps["a"]},
		{Step: uuid.Must(uuid.NewV7())},
		{Step: bad.Steps["a"], Meta: `not json`},
	}, "w-fallback")
	require.NoError(t, errs[0])
	require.True(t, claimed[0])
	require.ErrorIs(t, errs[1], ports.ErrNotFound)
	require.ErrorContains(t, errs[2], "claim statement")
	require.False(t, claimed[2])
	require.Equal(t, badRows, stepTransitionRows(t, db, bad.Steps["a"]), "the failed claim wrote nothing")
}
