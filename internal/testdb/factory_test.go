package testdb_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestCreateTaskShape checks that CreateTask writes the contract §10.1 shape
// other packages' tests rely on.
func TestCreateTaskShape(t *testing.T) {
	db := testdb.New(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "fac_ns", Context: map[string]any{"even_number": 2},
		Steps: []testdb.StepSpec{{Name: "a", Inputs: map[string]any{"x": 1}}, {Name: "b", Deps: []string{"a"}, RetryLimit: 5, Retryable: testdb.Ptr(false)}}})
	require.Len(t, task.Steps, 2)

	var edges []struct {
		From string `db:"from_step_uuid"`
		To   string `db:"to_step_uuid"`
		Name string `db:"name"`
	}
	require.NoError(t, db.Select(&edges, `SELECT from_step_uuid, to_step_uuid, name FROM tasker_workflow_step_edges
		WHERE to_step_uuid = $1`, task.Steps["b"]))
	require.Len(t, edges, 1)
	require.Equal(t, task.Steps["a"].String(), edges[0].From)
	require.Equal(t, "provides", edges[0].Name)

	var initial []struct {
		ToState    string  `db:"to_state"`
		FromState  *string `db:"from_state"`
		SortKey    int     `db:"sort_key"`
		MostRecent bool    `db:"most_recent"`
		Metadata   string  `db:"metadata"`
	}
	require.NoError(t, db.Select(&initial, `
		SELECT to_state, from_state, sort_key, most_recent, metadata::text FROM tasker_task_transitions WHERE task_uuid = $1
		UNION ALL
		SELECT t.to_state, t.from_state, t.sort_key, t.most_recent, t.metadata::text FROM tasker_workflow_step_transitions t
		JOIN tasker_workflow_steps s ON s.workflow_step_uuid = t.workflow_step_uuid WHERE s.task_uuid = $1`, task.TaskUUID))
	require.Len(t, initial, 3, "one initial row for the task and each step")
	for _, r := range initial {
		require.Equal(t, "pending", r.ToState)
		require.Nil(t, r.FromState)
		require.Equal(t, 1, r.SortKey)
		require.True(t, r.MostRecent)
		require.JSONEq(t, string(domain.InitialTransitionMetadata), r.Metadata)
	}

	var b struct {
		Retryable  bool    `db:"retryable"`
		RetryLimit int     `db:"retry_limit"`
		Attempts   int     `db:"attempts"`
		Inputs     *string `db:"inputs"`
	}
	require.NoError(t, db.Get(&b, `SELECT retryable, retry_limit, attempts, inputs::text FROM tasker_workflow_steps
		WHERE workflow_step_uuid = $1`, task.Steps["b"]))
	require.False(t, b.Retryable)
	require.Equal(t, 5, b.RetryLimit)
	require.Zero(t, b.Attempts)
	require.Nil(t, b.Inputs, "no inputs → NULL")

	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepComplete)
	var keys []int
	require.NoError(t, db.Select(&keys, `SELECT sort_key FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = $1 ORDER BY sort_key`, task.Steps["a"]))
	require.Equal(t, []int{1, 2, 3}, keys)

	msgID := testdb.SendStepMessage(t, db, "fac_ns_queue", task.TaskUUID, task.Steps["a"])
	msgs := testdb.QueueMessages(t, db, "fac_ns_queue")
	require.Len(t, msgs, 1)
	require.Equal(t, msgID, msgs[0].MsgID)
	require.JSONEq(t, `{"task_uuid":"`+task.TaskUUID.String()+`","step_uuid":"`+task.Steps["a"].String()+`"}`, string(msgs[0].Message))
}
