package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func diamondSpec() testdb.TaskSpec {
	return testdb.TaskSpec{Namespace: "orch_ns", Name: "diamond", Steps: []testdb.StepSpec{
		{Name: "a"}, {Name: "b", Deps: []string{"a"}}, {Name: "c", Deps: []string{"a"}},
		{Name: "d", Deps: []string{"b", "c"}},
	}}
}

func stepState(t *testing.T, db *sqlx.DB, step uuid.UUID) domain.StepState {
	t.Helper()
	s, err := postgres.CurrentStepState(context.Background(), db, step)
	require.NoError(t, err)
	return s
}

func taskState(t *testing.T, db *sqlx.DB, task uuid.UUID) domain.TaskState {
	t.Helper()
	s, err := postgres.CurrentTaskState(context.Background(), db, task)
	require.NoError(t, err)
	return s
}

func TestEnqueueTask_EnqueuesOnlyReadyStepsAtomically(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	task := testdb.CreateTask(t, db, diamondSpec())

	_, _, err := store.EnqueueTask(ctx, task.TaskUUID)
	var missing *ports.QueueMissingError
	require.ErrorAs(t, err, &missing, "no queue yet")
	require.Equal(t, "orch_ns_queue", missing.Queue)
	require.Equal(t, domain.StepPending, stepState(t, db, task.Steps["a"]), "nothing written without the queue")
	require.Equal(t, domain.TaskPending, taskState(t, db, task.TaskUUID))

	testdb.CreateQueue(t, db, "orch_ns_queue")
	rep, found, err := store.EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 1, rep.StepsEnqueued)
	require.True(t, rep.TaskStarted)
	require.Equal(t, domain.StepEnqueued, stepState(t, db, task.Steps["a"]))
	require.Equal(t, domain.StepPending, stepState(t, db, task.Steps["b"]))
	require.Equal(t, domain.TaskInProgress, taskState(t, db, task.TaskUUID))
	msgs := testdb.QueueMessages(t, db, "orch_ns_queue")
	require.Len(t, msgs, 1)
	var m domain.SimpleStepMessage
	require.NoError(t, json.Unmarshal(msgs[0].Message, &m))
	require.Equal(t, domain.SimpleStepMessage{TaskUUID: task.TaskUUID, StepUUID: task.Steps["a"]}, m)

	_, found, err = store.EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.False(t, found, "an enqueued step is not ready again")
	require.Len(t, testdb.QueueMessages(t, db, "orch_ns_queue"), 1)

	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepComplete)
	rep, _, err = store.EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, 2, rep.StepsEnqueued, "both branches become ready together")
	require.False(t, rep.TaskStarted, "task already in progress")
	require.Equal(t, domain.StepPending, stepState(t, db, task.Steps["d"]))
}

func TestCandidateTasks_RetriesErrorStepsAfterBackoff(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, "orch_ns_queue")
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "single",
		Steps: []testdb.StepSpec{{Name: "only"}}})
	step := task.Steps["only"]
	testdb.SetStepState(t, db, step, domain.StepEnqueued)
	testdb.SetStepState(t, db, step, domain.StepInProgress)
	testdb.SetStepState(t, db, step, domain.StepError)

	ids, err := store.CandidateTasks(ctx, "me", 5)
	require.NoError(t, err)
	require.Empty(t, ids, "R8: the error is younger than 2^1 s")

	// Age the failure past R8 and the claim past R7.
	_, err = db.Exec(`UPDATE tasker_workflow_step_transitions SET created_at = created_at - interval '1 hour' WHERE workflow_step_uuid = $1`, step)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE tasker_workflow_steps SET backoff_request_seconds = 5, last_attempted_at = NOW() - interval '1 hour' WHERE workflow_step_uuid = $1`, step)
	require.NoError(t, err)

	ids, err = store.CandidateTasks(ctx, "me", 5)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{task.TaskUUID}, ids)
	rep, found, err := store.EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 1, rep.StepsEnqueued)
	require.Equal(t, 1, rep.StepsRetried)
	require.Equal(t, domain.StepEnqueued, stepState(t, db, step))
	var states []string
	require.NoError(t, db.Select(&states, `SELECT to_state FROM tasker_workflow_step_transitions WHERE workflow_step_uuid = $1 ORDER BY sort_key`, step))
	require.Equal(t, []string{"pending", "enqueued", "in_progress", "error", "pending", "enqueued"}, states)
}

func TestReadiness_FirstAttemptNeverBlockedByRetryRules(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	testdb.CreateQueue(t, db, "orch_ns_queue")
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "once",
		Steps: []testdb.StepSpec{{Name: "once", Retryable: testdb.Ptr(false)}}})
	_, err := db.Exec(`UPDATE tasker_workflow_steps SET retry_limit = 0 WHERE task_uuid = $1`, task.TaskUUID)
	require.NoError(t, err)
	rep, _, err := postgres.NewOrchestrationStore(db).EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, 1, rep.StepsEnqueued, "D-l: attempts = 0 waives R5 and R6")
}

func TestFinalizeTask(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		states map[string]domain.StepState
		// attempts per step, for permanence
		noRetry bool
		want    domain.TaskState
	}{
		{"all complete", map[string]domain.StepState{"a": domain.StepComplete, "b": domain.StepComplete,
			"c": domain.StepResolvedManually, "d": domain.StepComplete}, false, domain.TaskComplete},
		{"permanent failure, nothing progressing", map[string]domain.StepState{"a": domain.StepComplete,
			"b": domain.StepError, "c": domain.StepComplete}, true, domain.TaskError},
		{"permanent failure while a branch runs", map[string]domain.StepState{"a": domain.StepComplete,
			"b": domain.StepError, "c": domain.StepInProgress}, true, domain.TaskInProgress},
		{"retryable failure waits", map[string]domain.StepState{"a": domain.StepComplete,
			"b": domain.StepError, "c": domain.StepComplete}, false, domain.TaskInProgress},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := newDB(t)
			task := testdb.CreateTask(t, db, diamondSpec())
			testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
			for name, st := range tc.states {
				testdb.SetStepState(t, db, task.Steps[name], domain.StepInProgress)
				if st != domain.StepInProgress {
					testdb.SetStepState(t, db, task.Steps[name], st)
				}
			}
			if tc.noRetry {
				_, err := db.Exec(`UPDATE tasker_workflow_steps SET retryable = false WHERE task_uuid = $1`, task.TaskUUID)
				require.NoError(t, err)
			}
			rep, err := postgres.NewOrchestrationStore(db).FinalizeTask(context.Background(), task.TaskUUID)
			require.NoError(t, err)
			require.Equal(t, tc.want, rep.To)
			require.Equal(t, tc.want, taskState(t, db, task.TaskUUID))
			var completedAt *string
			require.NoError(t, db.Get(&completedAt, `SELECT completed_at::text FROM tasker_tasks WHERE task_uuid = $1`, task.TaskUUID))
			require.Equal(t, tc.want == domain.TaskComplete, completedAt != nil, "completed_at set exactly on completion (D-n)")
		})
	}
}

func TestCancelTask(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	task := testdb.CreateTask(t, db, diamondSpec())
	testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepComplete)
	testdb.SetStepState(t, db, task.Steps["b"], domain.StepEnqueued)

	n, err := store.CancelTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, domain.TaskCancelled, taskState(t, db, task.TaskUUID))
	require.Equal(t, domain.StepComplete, stepState(t, db, task.Steps["a"]))
	for _, s := range []string{"b", "c", "d"} {
		require.Equal(t, domain.StepCancelled, stepState(t, db, task.Steps[s]), s)
	}

	_, err = store.CancelTask(ctx, task.TaskUUID)
	var conflict *ports.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, "Cannot cancel task in state cancelled", conflict.Message)

	_, err = store.CancelTask(ctx, uuid.Must(uuid.NewV7()))
	require.True(t, errors.Is(err, ports.ErrNotFound))
}

func TestResolveStep_ResetsErroredTaskAndLetsDependantsRun(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, "orch_ns_queue")
	task := testdb.CreateTask(t, db, diamondSpec())
	testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskError)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepError)

	rep, err := store.ResolveStep(ctx, task.TaskUUID, task.Steps["a"], ports.ManualResolution{
		ResolutionData: json.RawMessage(`{"value":4}`), ResolvedBy: "ops", Reason: "fixed by hand"})
	require.NoError(t, err)
	require.Equal(t, domain.TaskInProgress, rep.To)
	require.Equal(t, domain.StepResolvedManually, stepState(t, db, task.Steps["a"]))
	var meta []byte
	require.NoError(t, db.Get(&meta, `SELECT metadata FROM tasker_workflow_step_transitions WHERE workflow_step_uuid = $1 AND most_recent`, task.Steps["a"]))
	require.JSONEq(t, `{"value":4}`, string(mustField(t, meta, "resolution_data")))

	enq, _, err := store.EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, 2, enq.StepsEnqueued)

	_, err = store.ResolveStep(ctx, task.TaskUUID, uuid.Must(uuid.NewV7()), ports.ManualResolution{})
	require.ErrorIs(t, err, ports.ErrNotFound)
}

func mustField(t *testing.T, obj []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(obj, &m))
	return m[key]
}
