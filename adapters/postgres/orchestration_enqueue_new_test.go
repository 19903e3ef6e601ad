package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// twoRootSpec has two root steps and a join.
func twoRootSpec() testdb.TaskSpec {
	return testdb.TaskSpec{Namespace: "fresh_ns", Name: "two_roots", Steps: []testdb.StepSpec{
		{Name: "a"}, {Name: "b"}, {Name: "c", Deps: []string{"a", "b"}},
	}}
}

func rootsOf(task testdb.CreatedTask, names ...string) ports.NewTaskRoots {
	r := ports.NewTaskRoots{TaskUUID: task.TaskUUID, Namespace: "fresh_ns"}
	for _, n := range names {
		r.Roots = append(r.Roots, ports.EnqueuedStep{StepUUID: task.Steps[n], Name: n})
	}
	return r
}

// freshTransition is a transition as the comparison sees it: the event type
// of its metadata instead of the metadata (whose timestamp differs).
type freshTransition struct {
	Step       string  `db:"step"`
	ToState    string  `db:"to_state"`
	FromState  *string `db:"from_state"`
	SortKey    int     `db:"sort_key"`
	MostRecent bool    `db:"most_recent"`
	Event      *string `db:"event"`
	Keys       string  `db:"keys"`
}

func transitionsOf(t *testing.T, db *sqlx.DB, task uuid.UUID) (steps, tasks []freshTransition) {
	t.Helper()
	require.NoError(t, db.Select(&steps, `
		SELECT ns.name AS step, tr.to_state, tr.from_state, tr.sort_key, tr.most_recent, tr.metadata->>'event' AS event,
		       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(tr.metadata) k) AS keys
		FROM tasker_workflow_step_transitions tr
		JOIN tasker_workflow_steps ws ON ws.workflow_step_uuid = tr.workflow_step_uuid
		JOIN tasker_named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
		WHERE ws.task_uuid = $1 ORDER BY ns.name, tr.sort_key`, task))
	require.NoError(t, db.Select(&tasks, `
		SELECT '' AS step, tr.to_state, tr.from_state, tr.sort_key, tr.most_recent, tr.metadata->>'event' AS event,
		       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(tr.metadata) k) AS keys
		FROM tasker_task_transitions tr WHERE tr.task_uuid = $1 ORDER BY tr.sort_key`, task))
	return steps, tasks
}

// TestEnqueueNewTasksWritesWhatTheBatchPathWrites: a new task enqueued in
// one statement ends with the transitions, states and messages that the
// batch path (EnqueueTask) writes for an identical task.
func TestEnqueueNewTasksWritesWhatTheBatchPathWrites(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	viaBatch := testdb.CreateTask(t, db, twoRootSpec())
	viaNew := testdb.CreateTask(t, db, twoRootSpec())

	_, _, err := store.EnqueueNewTasks(ctx, []ports.NewTaskRoots{rootsOf(viaNew, "a", "b")}, nil)
	var missing *ports.QueueMissingError
	require.ErrorAs(t, err, &missing, "no queue yet")
	require.Equal(t, domain.TaskPending, taskState(t, db, viaNew.TaskUUID), "nothing written without the queue")
	testdb.CreateQueue(t, db, "fresh_ns_queue")

	_, found, err := store.EnqueueTask(ctx, viaBatch.TaskUUID)
	require.NoError(t, err)
	require.True(t, found)
	hdr := json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)
	reps, left, err := store.EnqueueNewTasks(ctx, []ports.NewTaskRoots{rootsOf(viaNew, "a", "b")},
		func(id uuid.UUID) json.RawMessage {
			require.Equal(t, viaNew.TaskUUID, id)
			return hdr
		})
	require.NoError(t, err)
	require.Empty(t, left)
	require.Len(t, reps, 1)
	require.Equal(t, viaNew.TaskUUID, reps[0].TaskUUID)
	require.Equal(t, "fresh_ns", reps[0].Namespace)
	require.True(t, reps[0].TaskStarted)
	require.Equal(t, 2, reps[0].StepsEnqueued)
	require.ElementsMatch(t, []string{"a", "b"}, []string{reps[0].Steps[0].Name, reps[0].Steps[1].Name})

	wantSteps, wantTask := transitionsOf(t, db, viaBatch.TaskUUID)
	gotSteps, gotTask := transitionsOf(t, db, viaNew.TaskUUID)
	require.Equal(t, wantSteps, gotSteps)
	require.Equal(t, wantTask, gotTask)
	require.Equal(t, domain.TaskInProgress, taskState(t, db, viaNew.TaskUUID))
	require.Equal(t, domain.StepPending, stepState(t, db, viaNew.Steps["c"]))

	var msgs []struct {
		Message []byte  `db:"message"`
		Headers *[]byte `db:"headers"`
	}
	require.NoError(t, db.Select(&msgs, `SELECT message, headers FROM pgmq.q_fresh_ns_queue WHERE message->>'task_uuid' = $1 ORDER BY msg_id`,
		viaNew.TaskUUID.String()))
	require.Len(t, msgs, 2)
	for i, name := range []string{"a", "b"} {
		var m domain.SimpleStepMessage
		require.NoError(t, json.Unmarshal(msgs[i].Message, &m))
		require.Contains(t, []uuid.UUID{viaNew.Steps["a"], viaNew.Steps["b"]}, m.StepUUID, name)
		require.NotNil(t, msgs[i].Headers)
		require.JSONEq(t, string(hdr), string(*msgs[i].Headers))
	}

	reps, left, err = store.EnqueueNewTasks(ctx, []ports.NewTaskRoots{rootsOf(viaNew, "a", "b")}, nil)
	require.NoError(t, err)
	require.Empty(t, reps, "a started task is not enqueued again")
	require.Equal(t, []uuid.UUID{viaNew.TaskUUID}, left)
	require.Len(t, testdb.QueueMessages(t, db, "fresh_ns_queue"), 4)
}

// TestEnqueueNewTasksLeavesWhatItCannotCompareAndSet: a task locked by
// another transaction, a task cancelled before its enqueue and a task
// whose root step moved on are left to the batch path, with nothing of
// theirs written, while their neighbours in the same statement are enqueued.
func TestEnqueueNewTasksLeavesWhatItCannotCompareAndSet(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, "fresh_ns_queue")
	plain := testdb.CreateTask(t, db, twoRootSpec())
	locked := testdb.CreateTask(t, db, twoRootSpec())
	cancelled := testdb.CreateTask(t, db, twoRootSpec())
	moved := testdb.CreateTask(t, db, twoRootSpec())
	testdb.SetTaskState(t, db, cancelled.TaskUUID, domain.TaskCancelled)
	testdb.SetStepState(t, db, moved.Steps["b"], domain.StepResolvedManually)

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, `SELECT 1 FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE`, locked.TaskUUID)
	require.NoError(t, err)

	reps, left, err := store.EnqueueNewTasks(ctx, []ports.NewTaskRoots{rootsOf(plain, "a", "b"), rootsOf(locked, "a", "b"),
		rootsOf(cancelled, "a", "b"), rootsOf(moved, "a", "b")}, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{locked.TaskUUID, cancelled.TaskUUID, moved.TaskUUID}, left)
	byTask := map[uuid.UUID]ports.EnqueueReport{}
	for _, r := range reps {
		byTask[r.TaskUUID] = r
	}
	require.Len(t, byTask, 2)
	require.Equal(t, 2, byTask[plain.TaskUUID].StepsEnqueued)
	require.Equal(t, 1, byTask[moved.TaskUUID].StepsEnqueued, "the root still pending is enqueued; the batch path sees the rest")
	require.Equal(t, domain.StepResolvedManually, stepState(t, db, moved.Steps["b"]))
	require.Equal(t, domain.StepEnqueued, stepState(t, db, moved.Steps["a"]))

	require.NoError(t, tx.Rollback())
	require.Equal(t, domain.TaskPending, taskState(t, db, locked.TaskUUID))
	require.Equal(t, domain.StepPending, stepState(t, db, locked.Steps["a"]))
	require.Equal(t, domain.TaskCancelled, taskState(t, db, cancelled.TaskUUID))
	require.Equal(t, domain.StepPending, stepState(t, db, cancelled.Steps["a"]))
	require.Len(t, testdb.QueueMessages(t, db, "fresh_ns_queue"), 3)
}
