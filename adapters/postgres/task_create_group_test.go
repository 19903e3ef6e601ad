package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// Concurrent creations share insert statements (group commit), and a task
// whose rows break a constraint fails alone: its neighbours in the shared
// statement are written, each with all its rows, and the bad one leaves
// nothing behind.
func TestConcurrentCreationsShareStatementsAndFailAlone(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	named := testdb.RegisterTemplate(t, db, testdb.TemplateFromSpec(diamondSpec()))
	store := postgres.NewTaskStore(db)
	diamond := func(namedTask uuid.UUID, i int) ports.NewTask {
		return ports.NewTask{NamedTaskUUID: namedTask, TaskName: "diamond", IdentityHash: fmt.Sprint(i),
			Request: domain.TaskRequest{Namespace: "orch_ns", Name: "diamond", Version: "1.0.0", Priority: testdb.Ptr(i % 3)},
			Context: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
			Steps: []ports.NewStep{
				{Name: "a", SystemDependency: "sys", Retryable: true, RetryLimit: 3, Inputs: json.RawMessage(`{"k":1}`)},
				{Name: "b", SystemDependency: "sys", Dependencies: []string{"a"}},
				{Name: "c", SystemDependency: "sys", Dependencies: []string{"a"}},
				{Name: "d", SystemDependency: "sys", Dependencies: []string{"b", "c"}},
			}}
	}
	// The first creation creates the named steps (the transaction path);
	// the others find them cached and take the grouped path.
	_, err := store.CreateTask(ctx, diamond(named, -1))
	require.NoError(t, err)

	const n = 96
	resps := make([]domain.TaskCreationResponse, n)
	errs := make([]error, n)
	bad := func(i int) bool { return i%8 == 5 } // an unknown named task: a foreign key violation
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			nt := diamond(named, i)
			if bad(i) {
				nt.NamedTaskUUID = uuid.New()
			}
			resps[i], errs[i] = store.CreateTask(ctx, nt)
		}()
	}
	close(start)
	wg.Wait()

	var good []string
	for i := range n {
		if bad(i) {
			require.Error(t, errs[i], "task %d has an unknown named task", i)
			continue
		}
		require.NoError(t, errs[i], "task %d", i)
		good = append(good, resps[i].TaskUUID.String())
		var row struct {
			Context  string `db:"context"`
			Priority int    `db:"priority"`
			Hash     string `db:"identity_hash"`
			Steps    int    `db:"steps"`
			Edges    int    `db:"edges"`
			StepTr   int    `db:"step_transitions"`
			TaskTr   int    `db:"task_transitions"`
			Created  bool   `db:"created_matches"`
		}
		require.NoError(t, db.Get(&row, `SELECT t.context::text, t.priority, t.identity_hash,
			(SELECT count(*) FROM tasker_workflow_steps ws WHERE ws.task_uuid = t.task_uuid) AS steps,
			(SELECT count(*) FROM tasker_workflow_step_edges e JOIN tasker_workflow_steps ws ON ws.workflow_step_uuid = e.to_step_uuid
			  WHERE ws.task_uuid = t.task_uuid) AS edges,
			(SELECT count(*) FROM tasker_workflow_step_transitions st JOIN tasker_workflow_steps ws ON ws.workflow_step_uuid = st.workflow_step_uuid
			  WHERE ws.task_uuid = t.task_uuid AND st.to_state = 'pending' AND st.most_recent AND st.sort_key = 1) AS step_transitions,
			(SELECT count(*) FROM tasker_task_transitions tt WHERE tt.task_uuid = t.task_uuid AND tt.to_state = 'pending' AND tt.most_recent) AS task_transitions,
			t.created_at = $2 AS created_matches
			FROM tasker_tasks t WHERE t.task_uuid = $1`, resps[i].TaskUUID, resps[i].CreatedAt))
		require.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), row.Context)
		require.Equal(t, i%3, row.Priority)
		require.Equal(t, fmt.Sprint(i), row.Hash)
		require.Equal(t, []int{4, 4, 4, 1}, []int{row.Steps, row.Edges, row.StepTr, row.TaskTr}, "task %d: steps, edges, transitions", i)
		require.True(t, row.Created, "task %d: the response's created_at is the row's", i)
		for name, id := range resps[i].StepMapping {
			var stepTask uuid.UUID
			require.NoError(t, db.Get(&stepTask, `SELECT ws.task_uuid FROM tasker_workflow_steps ws
				JOIN tasker_named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
				WHERE ws.workflow_step_uuid = $1 AND ns.name = $2`, id, name))
			require.Equal(t, resps[i].TaskUUID, stepTask, "task %d step %s", i, name)
		}
	}
	var tasks, statements int
	require.NoError(t, db.Get(&tasks, `SELECT count(*) FROM tasker_tasks`))
	require.Equal(t, len(good)+1, tasks, "the bad creations wrote nothing")
	// Tasks written by one statement share its transaction's NOW().
	require.NoError(t, db.Get(&statements, `SELECT count(DISTINCT created_at) FROM tasker_tasks WHERE task_uuid = ANY($1::uuid[])`,
		pq.Array(good)))
	require.Less(t, statements, len(good), "concurrent creations shared insert statements")
}
