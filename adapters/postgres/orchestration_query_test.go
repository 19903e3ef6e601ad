package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestTaskStoreCreateTaskWritesEverythingInOneTransaction(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	named := testdb.RegisterTemplate(t, db, testdb.TemplateFromSpec(diamondSpec()))
	store := postgres.NewTaskStore(db)
	nt := ports.NewTask{NamedTaskUUID: named, TaskName: "diamond", IdentityHash: "abc",
		Request: domain.TaskRequest{Namespace: "orch_ns", Name: "diamond", Version: "1.0.0", Initiator: "me",
			SourceSystem: "tests", Reason: "because", Tags: []string{"x"}, Priority: testdb.Ptr(3)},
		Context: json.RawMessage(`{"on_hold":true,"script":"kept verbatim"}`),
		Steps: []ports.NewStep{
			{Name: "a", SystemDependency: "sys_one", Retryable: true, RetryLimit: 3, Inputs: json.RawMessage(`{"k":1}`)},
			{Name: "b", SystemDependency: "sys_two", Retryable: false, RetryLimit: 1, Dependencies: []string{"a"}},
		}}
	resp, err := store.CreateTask(ctx, nt)
	require.NoError(t, err)
	require.Equal(t, "created", resp.Status)
	require.Equal(t, 2, resp.StepCount)
	require.Len(t, resp.StepMapping, 2)
	require.WithinDuration(t, time.Now(), resp.CreatedAt, time.Minute, "created_at is UTC now")

	var row struct {
		Context      string `db:"context"`
		Tags         string `db:"tags"`
		Bypass       string `db:"bypass_steps"`
		Priority     int    `db:"priority"`
		ClaimTimeout int    `db:"claim_timeout_seconds"`
		Hash         string `db:"identity_hash"`
	}
	require.NoError(t, db.Get(&row, `SELECT context::text, tags::text, bypass_steps::text, priority, claim_timeout_seconds, identity_hash
		FROM tasker_tasks WHERE task_uuid = $1`, resp.TaskUUID))
	require.JSONEq(t, `{"on_hold":true,"script":"kept verbatim"}`, row.Context, "stored verbatim (D-p)")
	require.JSONEq(t, `["x"]`, row.Tags)
	require.JSONEq(t, `[]`, row.Bypass)
	require.Equal(t, 3, row.Priority)
	require.Equal(t, 60, row.ClaimTimeout)
	require.Equal(t, "abc", row.Hash)

	var b struct {
		Retryable bool    `db:"retryable"`
		Limit     int     `db:"retry_limit"`
		Inputs    *string `db:"inputs"`
		Attempts  int     `db:"attempts"`
		System    string  `db:"system"`
	}
	require.NoError(t, db.Get(&b, `SELECT ws.retryable, ws.retry_limit, ws.inputs::text, ws.attempts, ds.name AS system
		FROM tasker_workflow_steps ws JOIN tasker_named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
		JOIN tasker_dependent_systems ds ON ds.dependent_system_uuid = ns.dependent_system_uuid
		WHERE ws.workflow_step_uuid = $1`, resp.StepMapping["b"]))
	require.False(t, b.Retryable)
	require.Equal(t, 1, b.Limit)
	require.Nil(t, b.Inputs, "empty initialization stored as NULL")
	require.Equal(t, "sys_two", b.System)

	var edges, transitions int
	require.NoError(t, db.Get(&edges, `SELECT COUNT(*) FROM tasker_workflow_step_edges WHERE from_step_uuid = $1 AND to_step_uuid = $2 AND name = 'provides'`,
		resp.StepMapping["a"], resp.StepMapping["b"]))
	require.Equal(t, 1, edges)
	require.NoError(t, db.Get(&transitions, `SELECT COUNT(*) FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid IN ($1, $2) AND from_state IS NULL AND sort_key = 1 AND most_recent
		AND metadata = '{"created_by":"task_initializer","initialization":true}'::jsonb`, resp.StepMapping["a"], resp.StepMapping["b"]))
	require.Equal(t, 2, transitions)

	// A second task reuses the dependent systems and named steps.
	resp2, err := store.CreateTask(ctx, nt)
	require.NoError(t, err)
	var namedSteps int
	require.NoError(t, db.Get(&namedSteps, `SELECT COUNT(DISTINCT named_step_uuid) FROM tasker_workflow_steps WHERE task_uuid IN ($1, $2)`,
		resp.TaskUUID, resp2.TaskUUID))
	require.Equal(t, 2, namedSteps)

	// A failure part-way (unknown dependency) leaves nothing behind.
	var before int
	require.NoError(t, db.Get(&before, `SELECT COUNT(*) FROM tasker_tasks`))
	bad := nt
	bad.Steps = []ports.NewStep{{Name: "c", SystemDependency: "sys_three", RetryLimit: 3, Dependencies: []string{"ghost"}}}
	_, err = store.CreateTask(ctx, bad)
	require.Error(t, err)
	var after, systems int
	require.NoError(t, db.Get(&after, `SELECT COUNT(*) FROM tasker_tasks`))
	require.NoError(t, db.Get(&systems, `SELECT COUNT(*) FROM tasker_dependent_systems WHERE name = 'sys_three'`))
	require.Equal(t, before, after)
	require.Zero(t, systems)

	// So does a failure of the one-statement insert (named steps exist, so
	// there is no transaction around it): an unknown named task.
	ghost := nt
	ghost.NamedTaskUUID = uuid.New()
	_, err = store.CreateTask(ctx, ghost)
	require.Error(t, err)
	var steps int
	require.NoError(t, db.Get(&after, `SELECT COUNT(*) FROM tasker_tasks`))
	require.NoError(t, db.Get(&steps, `SELECT COUNT(*) FROM tasker_workflow_steps`))
	require.Equal(t, before, after)
	require.Equal(t, 4, steps, "only the two tasks' steps")
}

func TestTaskQueryViews(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	q := postgres.NewTaskQuery(db)
	task := testdb.CreateTask(t, db, diamondSpec())
	other := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "other_ns", Name: "single", Steps: []testdb.StepSpec{{Name: "x"}}})
	testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepComplete)
	testdb.SetStepState(t, db, task.Steps["b"], domain.StepInProgress)
	testdb.SetStepState(t, db, task.Steps["b"], domain.StepError)
	_, err := db.Exec(`UPDATE tasker_workflow_steps SET backoff_request_seconds = 30 WHERE workflow_step_uuid = $1`, task.Steps["b"])
	require.NoError(t, err)

	v, err := q.GetTask(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, domain.TaskInProgress, v.State)
	require.Equal(t, "orch_ns", v.Namespace)
	require.Equal(t, domain.StepCounts{Total: 4, Pending: 2, Completed: 1, Failed: 1, Ready: 1}, v.Counts)
	byName := map[string]ports.StepView{}
	for _, s := range v.Steps {
		byName[s.Name] = s
	}
	require.True(t, byName["c"].ReadyForExecution)
	require.False(t, byName["d"].DependenciesSatisfied)
	require.Equal(t, 2, byName["d"].TotalParents)
	require.Equal(t, 0, byName["d"].CompletedParents)
	bv := byName["b"]
	require.False(t, bv.ReadyForExecution, "R7 backoff pending")
	require.True(t, bv.RetryEligible)
	require.NotNil(t, bv.LastFailureAt)
	require.NotNil(t, bv.NextRetryAt)
	require.Equal(t, bv.LastAttemptedAt.Add(30*time.Second), *bv.NextRetryAt)

	steps, err := q.ListSteps(ctx, task.TaskUUID)
	require.NoError(t, err)
	require.Len(t, steps, 4)
	require.Equal(t, "a", steps[0].Name)
	st, err := q.GetStep(ctx, task.TaskUUID, task.Steps["a"])
	require.NoError(t, err)
	require.NotNil(t, st.ProcessedAt)
	_, err = q.GetStep(ctx, other.TaskUUID, task.Steps["a"])
	require.ErrorIs(t, err, ports.ErrNotFound, "step of another task")
	_, err = q.ListSteps(ctx, uuid.New())
	require.ErrorIs(t, err, ports.ErrNotFound)
	_, err = q.GetTask(ctx, uuid.New())
	require.ErrorIs(t, err, ports.ErrNotFound)

	page, err := q.ListTasks(ctx, ports.TaskFilter{Page: 1, PerPage: 1})
	require.NoError(t, err)
	require.EqualValues(t, 2, page.TotalCount)
	require.Len(t, page.Tasks, 1)
	require.Equal(t, other.TaskUUID, page.Tasks[0].TaskUUID, "newest first")
	page, err = q.ListTasks(ctx, ports.TaskFilter{Page: 1, PerPage: 10, Namespace: "orch_ns", Status: domain.TaskInProgress})
	require.NoError(t, err)
	require.Len(t, page.Tasks, 1)
	require.EqualValues(t, 4, page.Tasks[0].Counts.Total)
	page, err = q.ListTasks(ctx, ports.TaskFilter{Page: 5, PerPage: 10, Initiator: "nobody", SourceSystem: "none"})
	require.NoError(t, err)
	require.Empty(t, page.Tasks)
	require.Zero(t, page.TotalCount)
	page, err = q.ListTasks(ctx, ports.TaskFilter{Page: 9, PerPage: 10})
	require.NoError(t, err)
	require.EqualValues(t, 2, page.TotalCount, "count known past the last page")

	require.NoError(t, q.Ping(ctx))
	testdb.CreateQueue(t, db, "orch_ns_queue")
	testdb.SendStepMessage(t, db, "orch_ns_queue", task.TaskUUID, task.Steps["c"])
	depths, err := q.QueueDepths(ctx, []string{"orch_ns_queue", "missing_queue"})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"orch_ns_queue": 1}, depths)
	all, err := q.QueueDepths(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), all["orch_ns_queue"], "no names: every queue")
}

func TestCandidateTasksOrdersByComputedPriority(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, "orch_ns_queue")
	low := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "p", Priority: 0, Steps: []testdb.StepSpec{{Name: "s"}}})
	high := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "p", Priority: 4, Steps: []testdb.StepSpec{{Name: "s"}}})
	aged := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "p", Priority: 0, Steps: []testdb.StepSpec{{Name: "s"}}})
	claimed := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "p", Priority: 10, Steps: []testdb.StepSpec{{Name: "s"}}})
	// aged: priority 0 + min(age/30, 6) = 6 > high's 4 + ~0; claimed by another live instance.
	_, err := db.Exec(`UPDATE tasker_tasks SET created_at = created_at - interval '1 hour' WHERE task_uuid = $1`, aged.TaskUUID)
	require.NoError(t, err)
	_, err = db.Exec(`UPDATE tasker_tasks SET claimed_at = NOW(), claimed_by = 'other' WHERE task_uuid = $1`, claimed.TaskUUID)
	require.NoError(t, err)
	order, err := store.CandidateTasks(context.Background(), "me", 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{aged.TaskUUID, high.TaskUUID, low.TaskUUID}, order, "claimed task excluded")
	mine, err := store.CandidateTasks(context.Background(), "other", 1)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{claimed.TaskUUID}, mine, "own claim honoured")
}

func TestFinalizeAndEnqueue(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	task := testdb.CreateTask(t, db, diamondSpec())
	fin, _, err := store.FinalizeAndEnqueue(ctx, task.TaskUUID, ports.ConsumedMessages{})
	var missing *ports.QueueMissingError
	require.ErrorAs(t, err, &missing, "nothing written without the queue")
	require.Equal(t, domain.TaskPending, fin.From)
	require.Equal(t, domain.TaskPending, taskState(t, db, task.TaskUUID))

	testdb.CreateQueue(t, db, "orch_ns_queue")
	fin, enq, err := store.FinalizeAndEnqueue(ctx, task.TaskUUID, ports.ConsumedMessages{})
	require.NoError(t, err)
	require.Equal(t, domain.TaskPending, fin.To)
	require.Equal(t, 1, enq.StepsEnqueued)
	require.True(t, enq.TaskStarted)

	for _, s := range []string{"a", "b", "c", "d"} {
		if s != "a" {
			testdb.SetStepState(t, db, task.Steps[s], domain.StepEnqueued)
		}
		testdb.SetStepState(t, db, task.Steps[s], domain.StepInProgress)
		testdb.SetStepState(t, db, task.Steps[s], domain.StepComplete)
	}
	fin, enq, err = store.FinalizeAndEnqueue(ctx, task.TaskUUID, ports.ConsumedMessages{})
	require.NoError(t, err)
	require.Equal(t, domain.TaskComplete, fin.To)
	require.Zero(t, enq.StepsEnqueued)
	_, err = store.FinalizeTask(ctx, uuid.New())
	require.ErrorIs(t, err, ports.ErrNotFound)
}

// TestFinalizeAndEnqueueDeletesConsumedMessagesInItsTransaction: the result
// messages given as consumed disappear exactly when the finalization
// transaction commits; a failed transaction (missing namespace queue, unknown
// task) leaves them for redelivery, and other messages are never touched.
func TestFinalizeAndEnqueueDeletesConsumedMessagesInItsTransaction(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(t, db, domain.QueueStepResults)
	send := func() int64 {
		var id int64
		require.NoError(t, db.Get(&id, `SELECT pgmq.send($1::text, '{}'::jsonb, 0::integer)`, domain.QueueStepResults))
		return id
	}
	left := func() []int64 {
		var ids []int64
		require.NoError(t, db.Select(&ids, `SELECT msg_id FROM pgmq.q_`+domain.QueueStepResults+` ORDER BY msg_id`))
		return ids
	}
	a, b, other := send(), send(), send()
	consumed := ports.ConsumedMessages{Queue: domain.QueueStepResults, MsgIDs: []int64{a, b}}
	task := testdb.CreateTask(t, db, diamondSpec())

	_, _, err := store.FinalizeAndEnqueue(ctx, task.TaskUUID, consumed)
	var missing *ports.QueueMissingError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, []int64{a, b, other}, left(), "rolled back with the transaction")

	_, _, err = store.FinalizeAndEnqueue(ctx, uuid.New(), consumed)
	require.ErrorIs(t, err, ports.ErrNotFound)
	require.Equal(t, []int64{a, b, other}, left(), "unknown task: nothing deleted")

	testdb.CreateQueue(t, db, "orch_ns_queue")
	_, enq, err := store.FinalizeAndEnqueue(ctx, task.TaskUUID, consumed)
	require.NoError(t, err)
	require.Equal(t, 1, enq.StepsEnqueued)
	require.Equal(t, []int64{other}, left(), "consumed messages deleted with the commit")

	_, _, err = store.FinalizeAndEnqueue(ctx, task.TaskUUID, consumed)
	require.NoError(t, err, "redelivered (already deleted) messages are harmless")
	require.Equal(t, []int64{other}, left())
}
