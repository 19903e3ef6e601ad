package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func TestTaskHistoryStepTransitionsAndDeadLetters(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	h := postgres.NewTaskHistory(db)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})
	other := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "x"}}})
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepEnqueued)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)

	trans, err := h.StepTransitions(ctx, task.TaskUUID)
	require.NoError(t, err)
	var a []string
	for _, tr := range trans {
		require.NotEqual(t, other.Steps["x"], tr.StepUUID, "only the task's own steps")
		require.False(t, tr.CreatedAt.IsZero())
		if tr.StepUUID == task.Steps["a"] {
			a = append(a, tr.ToState)
		}
	}
	require.Equal(t, []string{"pending", "enqueued", "in_progress"}, a, "in sort order")
	require.Len(t, trans, 4)

	none, err := h.StepTransitions(ctx, uuid.New())
	require.NoError(t, err)
	require.Empty(t, none)

	// The dead-letter table is optional: report whether it exists.
	_, err = db.ExecContext(ctx, `DROP TABLE IF EXISTS tasker_go_dlq_entries`)
	require.NoError(t, err)
	es, ok, err := h.DeadLetters(ctx, 10)
	require.NoError(t, err)
	require.False(t, ok)
	require.Empty(t, es)
	_, err = db.ExecContext(ctx, `CREATE TABLE tasker_go_dlq_entries (entry_uuid uuid PRIMARY KEY, task_uuid uuid, step_uuid uuid,
		namespace varchar(64) NOT NULL DEFAULT '', reason varchar(32) NOT NULL, queue_name varchar(64), message jsonb,
		status varchar(16) NOT NULL DEFAULT 'open', detail text NOT NULL DEFAULT '',
		created_at timestamp(6) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'))`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO tasker_go_dlq_entries (entry_uuid, task_uuid, step_uuid, namespace, reason, queue_name, detail)
		VALUES ($1, $2, $3, 'test_ns', 'max_receive_count', 'test_ns_queue', 'read 6 times')`, uuid.New(), task.TaskUUID, task.Steps["a"])
	require.NoError(t, err)
	es, ok, err = h.DeadLetters(ctx, 10)
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, es, 1)
	require.Equal(t, task.TaskUUID, *es[0].TaskUUID)
	require.Equal(t, "max_receive_count", es[0].Reason)
	require.Equal(t, "open", es[0].Status)
}
