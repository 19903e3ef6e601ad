package postgres_test

import (
	"context"
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

// requireEventRows checks the rows the hot path wrote after the first
// skip rows: the event type of each, and created_at = updated_at on the
// rows that are still current (flipped rows get a later updated_at only
// in another transaction).
func requireEventRows(t *testing.T, rows []transitionRow, skip int, events ...string) {
	t.Helper()
	requireWellFormedHistory(t, rows)
	require.Len(t, rows, skip+len(events))
	for i, ev := range events {
		r := rows[skip+i]
		m := decodeEventMetadata(t, r.Metadata)
		require.Equal(t, ev, m.Decoded["type"], "event of row %d", skip+i)
		require.Equal(t, r.CreatedAt, r.UpdatedAt, "row %d written once in one transaction (NOW())", skip+i)
	}
}

func TestEnqueueWritesRetryEnqueueAndStartRowsPerContract(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, "orch_ns_queue")
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "pair",
		Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b"}}})
	a, b := task.Steps["a"], task.Steps["b"]
	// a failed long ago (R7/R8 passed); b was never run.
	testdb.SetStepState(t, db, a, domain.StepEnqueued)
	testdb.SetStepState(t, db, a, domain.StepInProgress)
	testdb.SetStepState(t, db, a, domain.StepError)
	_, err := db.Exec(`UPDATE tasker_workflow_step_transitions SET created_at = created_at - interval '1 hour' WHERE workflow_step_uuid = $1`, a)
	require.NoError(t, err)
	var before time.Time
	require.NoError(t, db.Get(&before, `SELECT updated_at FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, b))

	rep, found, err := store.EnqueueTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, 2, rep.StepsEnqueued)
	require.Equal(t, 1, rep.StepsRetried)
	require.True(t, rep.TaskStarted)
	require.Equal(t, "orch_ns", rep.Namespace)

	requireEventRows(t, stepTransitionRows(t, db, a), 4, "Retry", "Enqueue")
	requireEventRows(t, stepTransitionRows(t, db, b), 1, "Enqueue")
	requireEventRows(t, taskTransitionRows(t, db, task.TaskUUID), 1, "Start")
	var after time.Time
	require.NoError(t, db.Get(&after, `SELECT updated_at FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, b))
	require.True(t, after.After(before), "Enqueue side effect: updated_at = NOW()")

	msgs := testdb.QueueMessages(t, db, "orch_ns_queue")
	require.Len(t, msgs, 2)
	first, second := a, b
	if b.String() < a.String() {
		first, second = b, a
	}
	require.JSONEq(t, `{"task_uuid":"`+task.TaskUUID.String()+`","step_uuid":"`+first.String()+`"}`, string(msgs[0].Message),
		"sent in workflow_step_uuid order")
	require.JSONEq(t, `{"task_uuid":"`+task.TaskUUID.String()+`","step_uuid":"`+second.String()+`"}`, string(msgs[1].Message))
}

func TestFinalizeWritesStartAndCompleteForPendingTask(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "one", Steps: []testdb.StepSpec{{Name: "a"}}})
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepResolvedManually)

	rep, err := postgres.NewOrchestrationStore(db).FinalizeTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, domain.TaskPending, rep.From)
	require.Equal(t, domain.TaskComplete, rep.To)
	rows := taskTransitionRows(t, db, task.TaskUUID)
	requireEventRows(t, rows, 1, "Start", "Complete")
	require.Equal(t, "in_progress", rows[1].ToState)
	require.Equal(t, "complete", rows[2].ToState)
	var done struct {
		Complete    bool      `db:"complete"`
		CompletedAt time.Time `db:"completed_at"`
		UpdatedAt   time.Time `db:"updated_at"`
	}
	require.NoError(t, db.Get(&done, `SELECT complete, completed_at, updated_at FROM tasker_tasks WHERE task_uuid = $1`, task.TaskUUID))
	require.True(t, done.Complete)
	require.Equal(t, rows[2].CreatedAt, done.CompletedAt, "completed_at = NOW() of the finalizing transaction")
	require.Equal(t, done.CompletedAt, done.UpdatedAt)
}

func TestFinalizeFailWritesFailEventWithMessage(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "one", Steps: []testdb.StepSpec{{Name: "a"}}})
	testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepError)
	_, err := db.Exec(`UPDATE tasker_workflow_steps SET retryable = false WHERE task_uuid = $1`, task.TaskUUID)
	require.NoError(t, err)

	rep, err := postgres.NewOrchestrationStore(db).FinalizeTask(context.Background(), task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, domain.TaskError, rep.To)
	rows := taskTransitionRows(t, db, task.TaskUUID)
	requireEventRows(t, rows, 2, "Fail")
	m := decodeEventMetadata(t, rows[2].Metadata)
	require.Equal(t, domain.FinalizationFailMessage, m.Decoded["data"])
	var complete bool
	require.NoError(t, db.Get(&complete, `SELECT complete FROM tasker_tasks WHERE task_uuid = $1`, task.TaskUUID))
	require.False(t, complete)
}

// A step that changes state while the enqueuer waits for its row lock is
// re-checked under the lock and not enqueued.
func TestEnqueueRechecksReadinessUnderTheStepLock(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, "orch_ns_queue")
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "one", Steps: []testdb.StepSpec{{Name: "a"}}})
	a := task.Steps["a"]

	// A worker that claims the pending step (a reference orchestrator's
	// message, D-m) holds its row lock.
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.Exec(`SELECT 1 FROM tasker_workflow_steps WHERE workflow_step_uuid = $1 FOR UPDATE`, a)
	require.NoError(t, err)
	_, err = tx.Exec(`UPDATE tasker_workflow_step_transitions SET most_recent = false WHERE workflow_step_uuid = $1`, a)
	require.NoError(t, err)
	_, err = tx.Exec(`INSERT INTO tasker_workflow_step_transitions (workflow_step_uuid, to_state, from_state, sort_key, most_recent, created_at, updated_at)
		VALUES ($1, 'in_progress', 'pending', 2, true, NOW(), NOW())`, a)
	require.NoError(t, err)
	_, err = tx.Exec(`UPDATE tasker_workflow_steps SET in_process = true, attempts = 1 WHERE workflow_step_uuid = $1`, a)
	require.NoError(t, err)

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, enq, err := store.FinalizeAndEnqueue(ctx, task.TaskUUID, ports.ConsumedMessages{})
		done <- result{enq.StepsEnqueued, err}
	}()
	requireWaitingOnLock(t, db)
	require.NoError(t, tx.Commit())
	r := <-done
	require.NoError(t, r.err)
	require.Zero(t, r.n, "the step is in_progress once the lock is granted")
	require.Empty(t, testdb.QueueMessages(t, db, "orch_ns_queue"))
	require.Equal(t, domain.StepInProgress, stepState(t, db, a))
}

// requireWaitingOnLock waits until some session of db waits for a row lock.
func requireWaitingOnLock(t *testing.T, db *sqlx.DB) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`))
		return n > 0
	}, 10*time.Second, 5*time.Millisecond)
}

// Concurrent result processing of one task (several instances, or sibling
// results in one batch) sends every ready step exactly once.
func TestConcurrentFinalizeAndEnqueueSendsEachStepOnce(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	testdb.CreateQueue(t, db, "orch_ns_queue")
	spec := testdb.TaskSpec{Namespace: "orch_ns", Name: "fan", Steps: []testdb.StepSpec{{Name: "root"}}}
	for _, n := range []string{"p", "q", "r", "s", "t", "u"} {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: n, Deps: []string{"root"}})
	}
	const tasks = 8
	var ids []uuid.UUID
	for i := 0; i < tasks; i++ {
		task := testdb.CreateTask(t, db, spec)
		testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
		testdb.SetStepState(t, db, task.Steps["root"], domain.StepComplete)
		ids = append(ids, task.TaskUUID)
	}
	stores := []*postgres.OrchestrationStore{postgres.NewOrchestrationStore(db), postgres.NewOrchestrationStore(db)}
	errs := make(chan error, 4*tasks)
	for i := 0; i < 4; i++ {
		go func() {
			for _, id := range ids {
				_, _, err := stores[i%2].FinalizeAndEnqueue(ctx, id, ports.ConsumedMessages{})
				errs <- err
			}
		}()
	}
	for i := 0; i < 4*tasks; i++ {
		require.NoError(t, <-errs)
	}
	var dup, sent int
	require.NoError(t, db.Get(&sent, `SELECT COUNT(*) FROM pgmq.q_orch_ns_queue`))
	require.NoError(t, db.Get(&dup, `SELECT COUNT(*) FROM (SELECT message->>'step_uuid' FROM pgmq.q_orch_ns_queue
		GROUP BY 1 HAVING COUNT(*) > 1) d`))
	require.Equal(t, 6*tasks, sent)
	require.Zero(t, dup)
	for _, id := range ids {
		requireWellFormedHistory(t, taskTransitionRows(t, db, id))
	}
}
