package postgres_test

import (
	"context"
	"encoding/json"
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

// What the contract suite (dlqtest) cannot see: the scan's failure carries
// the entry in the task transition's metadata, and scan and requeue leave
// well-formed step and task histories.
func TestScanStaleAndRequeueHistory(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	stale := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "nobody", Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})
	testdb.SetTaskState(t, db, stale.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, stale.Steps["a"], domain.StepEnqueued)
	backdate(t, db, stale.TaskUUID)
	store := postgres.NewDLQStore(db)

	found, err := store.ScanStale(ctx, policy)
	require.NoError(t, err)
	require.Len(t, found, 1)
	e := found[0]
	var meta map[string]any
	rows := taskTransitionRows(t, db, stale.TaskUUID)
	require.NoError(t, json.Unmarshal(rows[len(rows)-1].Metadata, &meta))
	require.Equal(t, "enqueued_timeout", meta["dlq_reason"])
	require.Equal(t, e.EntryUUID.String(), meta["dlq_entry_uuid"])

	_, err = store.RequeueDLQ(ctx, e.EntryUUID)
	require.NoError(t, err)
	requireWellFormedHistory(t, stepTransitionRows(t, db, stale.Steps["a"]))
	requireWellFormedHistory(t, taskTransitionRows(t, db, stale.TaskUUID))
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
