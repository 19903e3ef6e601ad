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

// batchScenario is a set of tasks whose results arrive together: one
// completes, one is retried, one fails permanently, one was cancelled while
// its step ran, one moves on to its next step.
type batchScenario struct {
	tasks   map[string]uuid.UUID
	steps   map[string]uuid.UUID // "<task>.<step>"
	results []ports.ResultItem
}

const batchResultsQueue = domain.QueueStepResults

// arrangeBatchScenario builds the scenario on db: every task in_progress,
// each reported step finished (or cancelled) with its completion message on
// orchestration_step_results.
func arrangeBatchScenario(t *testing.T, db *sqlx.DB) batchScenario {
	t.Helper()
	ctx := context.Background()
	testdb.CreateQueue(t, db, "orch_ns_queue")
	testdb.CreateQueue(t, db, batchResultsQueue)
	sc := batchScenario{tasks: map[string]uuid.UUID{}, steps: map[string]uuid.UUID{}}
	linear := []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}
	single := []testdb.StepSpec{{Name: "a"}}
	for _, tc := range []struct {
		name  string
		steps []testdb.StepSpec
	}{{"done", linear}, {"retry", single}, {"failed", single}, {"cancelled", single}, {"next", linear}} {
		task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "orch_ns", Name: "batch_" + tc.name, Steps: tc.steps})
		testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
		sc.tasks[tc.name] = task.TaskUUID
		for name, id := range task.Steps {
			sc.steps[tc.name+"."+name] = id
		}
	}
	run := func(key string, to domain.StepState, results json.RawMessage) {
		step := sc.steps[key]
		testdb.SetStepState(t, db, step, domain.StepEnqueued)
		testdb.SetStepState(t, db, step, domain.StepInProgress)
		testdb.SetStepState(t, db, step, to)
		testdb.SetStepResults(t, db, step, results)
	}
	ok := func(key string) json.RawMessage {
		b, err := json.Marshal(successResult(sc.steps[key], `1`))
		require.NoError(t, err)
		return b
	}
	fail := func(key string, retryable bool) json.RawMessage {
		r := failureResult(sc.steps[key], "boom", "test")
		r.Error.Retryable = retryable
		b, err := json.Marshal(r)
		require.NoError(t, err)
		return b
	}
	run("done.a", domain.StepComplete, ok("done.a"))
	run("done.b", domain.StepComplete, ok("done.b"))
	run("retry.a", domain.StepError, fail("retry.a", true))
	run("failed.a", domain.StepError, fail("failed.a", false))
	run("next.a", domain.StepComplete, ok("next.a"))
	// cancelled: the step was running when the task was cancelled; its
	// worker's outcome was discarded but a duplicate message still arrives.
	testdb.SetStepState(t, db, sc.steps["cancelled.a"], domain.StepEnqueued)
	testdb.SetStepState(t, db, sc.steps["cancelled.a"], domain.StepInProgress)
	_, err := postgres.NewOrchestrationStore(db).CancelTask(ctx, sc.tasks["cancelled"])
	require.NoError(t, err)
	for _, key := range []string{"done.a", "done.b", "retry.a", "failed.a", "cancelled.a", "next.a"} {
		task := sc.tasks[key[:len(key)-2]]
		id := testdb.SendStepMessage(t, db, batchResultsQueue, task, sc.steps[key])
		sc.results = append(sc.results, ports.ResultItem{MsgID: id, StepUUID: sc.steps[key]})
	}
	return sc
}

// testBookkeeping is the result processor's §10.3 step 3 in miniature.
func testBookkeeping(v ports.StepResultView) ports.ResultBookkeeping {
	var bk ports.ResultBookkeeping
	res, parsed := domain.ParseStepExecutionResult(v.Results)
	if v.State != domain.StepError {
		return bk
	}
	if parsed && res.Error != nil && !res.Error.Retryable {
		bk.NotRetryable = true
		return bk
	}
	if v.Attempts < v.RetryLimit {
		s := 1 << v.Attempts
		bk.BackoffSeconds = &s
	}
	return bk
}

// batchOutcome is what a scenario ended as, comparable across databases.
type batchOutcome struct {
	Tasks      map[string]string
	Steps      map[string]string
	Backoff    map[string]*int
	Retryable  map[string]bool
	Sent       []string // step keys with a message on orch_ns_queue
	ResultsSet int      // messages left on orchestration_step_results
}

func readBatchOutcome(t *testing.T, db *sqlx.DB, sc batchScenario) batchOutcome {
	t.Helper()
	o := batchOutcome{Tasks: map[string]string{}, Steps: map[string]string{}, Backoff: map[string]*int{}, Retryable: map[string]bool{}}
	for name, id := range sc.tasks {
		o.Tasks[name] = string(taskState(t, db, id))
	}
	byID := map[uuid.UUID]string{}
	for key, id := range sc.steps {
		byID[id] = key
		o.Steps[key] = string(stepState(t, db, id))
		var row struct {
			Backoff   *int `db:"backoff_request_seconds"`
			Retryable bool `db:"retryable"`
		}
		require.NoError(t, db.Get(&row, `SELECT backoff_request_seconds, COALESCE(retryable, true) AS retryable
			FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, id))
		o.Backoff[key], o.Retryable[key] = row.Backoff, row.Retryable
	}
	for _, m := range testdb.QueueMessages(t, db, "orch_ns_queue") {
		var body domain.SimpleStepMessage
		require.NoError(t, json.Unmarshal(m.Message, &body))
		o.Sent = append(o.Sent, byID[body.StepUUID])
	}
	o.ResultsSet = len(testdb.QueueMessages(t, db, batchResultsQueue))
	return o
}

// TestTaskBatchEndsEachTaskAsIfAlone: one result batch holding tasks that
// complete, retry, fail permanently, were cancelled meanwhile and move on
// ends each task exactly as processing its result alone does, and writes
// everything in one transaction.
func TestTaskBatchEndsEachTaskAsIfAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	alone := newDB(t)
	sc := arrangeBatchScenario(t, alone)
	store := postgres.NewOrchestrationStore(alone)
	for _, r := range sc.results {
		_, err := store.ProcessTasks(ctx, ports.TaskBatch{Queue: batchResultsQueue, Results: []ports.ResultItem{r}, Bookkeeping: testBookkeeping})
		require.NoError(t, err)
	}
	want := readBatchOutcome(t, alone, sc)

	db := newDB(t)
	sc = arrangeBatchScenario(t, db)
	store = postgres.NewOrchestrationStore(db)
	var before int64
	require.NoError(t, db.Get(&before, `SELECT txid_current()`))
	rep, err := store.ProcessTasks(ctx, ports.TaskBatch{Queue: batchResultsQueue, Results: sc.results, Bookkeeping: testBookkeeping})
	require.NoError(t, err)
	got := readBatchOutcome(t, db, sc)
	require.Equal(t, want, got, "the batch ends every task as processing it alone does")

	// What that is, spelled out.
	require.Equal(t, map[string]string{"done": "complete", "retry": "in_progress", "failed": "error",
		"cancelled": "cancelled", "next": "in_progress"}, got.Tasks)
	require.Equal(t, "enqueued", got.Steps["next.b"])
	require.Equal(t, []string{"next.b"}, got.Sent, "only the newly ready step is sent")
	require.Equal(t, 2, *got.Backoff["retry.a"])
	require.Nil(t, got.Backoff["failed.a"])
	require.False(t, got.Retryable["failed.a"])
	require.Zero(t, got.ResultsSet, "every result message deleted")
	require.Empty(t, rep.UnknownResults)
	require.Len(t, rep.Finalized, 5)
	require.Len(t, rep.Enqueued, 1)
	// The retried step's task is reported with the time its backoff ends,
	// so the orchestration can enqueue it then without scanning.
	require.Len(t, rep.Retries, 1)
	require.Equal(t, sc.tasks["retry"], rep.Retries[0].TaskUUID)
	var lastAttempt time.Time
	require.NoError(t, db.Get(&lastAttempt, `SELECT last_attempted_at FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, sc.steps["retry.a"]))
	require.WithinDuration(t, lastAttempt.Add(2*time.Second), rep.Retries[0].At, time.Second,
		"last_attempted_at + the 2 s backoff (the R8 floor of 2 s after the failure is about the same)")

	// One transaction: every row the batch wrote carries the same xmin.
	var xmins []int64
	require.NoError(t, db.Select(&xmins, `
SELECT DISTINCT x FROM (
  SELECT xmin::text::bigint AS x FROM tasker_task_transitions WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM tasker_workflow_step_transitions WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM tasker_workflow_steps WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM tasker_tasks WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM pgmq.q_orch_ns_queue WHERE xmin::text::bigint > $1) s`, before))
	require.Len(t, xmins, 1, "all writes in one transaction")
}

// TestTaskBatchFinishingAndEnqueuingWithoutBookkeeping: a batch without
// error results, in which one task completes while another enqueues its next
// step, writes both in one statement (batchFinalizeEnqueueSQL) and still
// ends each task as processing its result alone does, in one transaction.
func TestTaskBatchFinishingAndEnqueuingWithoutBookkeeping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noErrors := func(sc batchScenario) []ports.ResultItem {
		var out []ports.ResultItem
		for _, r := range sc.results {
			if r.StepUUID != sc.steps["retry.a"] && r.StepUUID != sc.steps["failed.a"] {
				out = append(out, r)
			}
		}
		return out
	}
	alone := newDB(t)
	sc := arrangeBatchScenario(t, alone)
	store := postgres.NewOrchestrationStore(alone)
	for _, r := range noErrors(sc) {
		_, err := store.ProcessTasks(ctx, ports.TaskBatch{Queue: batchResultsQueue, Results: []ports.ResultItem{r}, Bookkeeping: testBookkeeping})
		require.NoError(t, err)
	}
	want := readBatchOutcome(t, alone, sc)

	db := newDB(t)
	sc = arrangeBatchScenario(t, db)
	store = postgres.NewOrchestrationStore(db)
	var before int64
	require.NoError(t, db.Get(&before, `SELECT txid_current()`))
	rep, err := store.ProcessTasks(ctx, ports.TaskBatch{Queue: batchResultsQueue, Results: noErrors(sc), Bookkeeping: testBookkeeping})
	require.NoError(t, err)
	got := readBatchOutcome(t, db, sc)
	require.Equal(t, want, got, "the batch ends every task as processing it alone does")
	require.Equal(t, map[string]string{"done": "complete", "retry": "in_progress", "failed": "in_progress",
		"cancelled": "cancelled", "next": "in_progress"}, got.Tasks)
	require.Equal(t, []string{"next.b"}, got.Sent)
	require.Equal(t, 2, got.ResultsSet, "only the two error results left unprocessed")
	require.Len(t, rep.Finalized, 3)
	require.Len(t, rep.Enqueued, 1)
	require.Equal(t, sc.tasks["next"], rep.Enqueued[0].TaskUUID)
	require.Equal(t, 1, rep.Enqueued[0].StepsEnqueued)

	var completedAt *time.Time
	require.NoError(t, db.Get(&completedAt, `SELECT completed_at FROM tasker_tasks WHERE task_uuid = $1`, sc.tasks["done"]))
	require.NotNil(t, completedAt, "the completed task's row is updated by the same statement")
	var xmins []int64
	require.NoError(t, db.Select(&xmins, `
SELECT DISTINCT x FROM (
  SELECT xmin::text::bigint AS x FROM tasker_task_transitions WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM tasker_workflow_step_transitions WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM tasker_tasks WHERE xmin::text::bigint > $1
  UNION ALL SELECT xmin::text::bigint FROM pgmq.q_orch_ns_queue WHERE xmin::text::bigint > $1) s`, before))
	require.Len(t, xmins, 1, "all writes in one transaction")
}

// TestTaskBatchUnknownStepsAndTasks: a result for a step that does not
// exist and a task that does not exist are reported and their messages left
// (for the caller to archive); the rest of the batch proceeds.
func TestTaskBatchUnknownStepsAndTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newDB(t)
	sc := arrangeBatchScenario(t, db)
	store := postgres.NewOrchestrationStore(db)
	ghost := testdb.SendStepMessage(t, db, batchResultsQueue, uuid.New(), uuid.New())
	results := append([]ports.ResultItem{{MsgID: ghost, StepUUID: uuid.New()}}, sc.results...)
	rep, err := store.ProcessTasks(ctx, ports.TaskBatch{Queue: batchResultsQueue, Results: results,
		Tasks: []ports.TaskItem{{TaskUUID: uuid.New()}}, Bookkeeping: testBookkeeping})
	require.NoError(t, err)
	require.Equal(t, []int{0}, rep.UnknownResults)
	require.Equal(t, []int{0}, rep.UnknownTasks)
	left := testdb.QueueMessages(t, db, batchResultsQueue)
	require.Len(t, left, 1)
	require.Equal(t, ghost, left[0].MsgID)
	require.Equal(t, domain.TaskComplete, taskState(t, db, sc.tasks["done"]))
}

// TestTaskBatchSkipLockedLeavesHeldTasks: with SkipLocked a task another
// transaction holds is reported skipped and untouched.
func TestTaskBatchSkipLockedLeavesHeldTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := newDB(t)
	testdb.CreateQueue(t, db, "orch_ns_queue")
	held := testdb.CreateTask(t, db, diamondSpec())
	free := testdb.CreateTask(t, db, diamondSpec())
	tx, err := db.Beginx()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.Exec(`SELECT 1 FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE`, held.TaskUUID)
	require.NoError(t, err)
	rep, err := postgres.NewOrchestrationStore(db).ProcessTasks(ctx, ports.TaskBatch{SkipLocked: true,
		Tasks: []ports.TaskItem{{TaskUUID: held.TaskUUID}, {TaskUUID: free.TaskUUID}}})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{held.TaskUUID}, rep.Skipped)
	require.Len(t, rep.Enqueued, 1)
	require.Equal(t, free.TaskUUID, rep.Enqueued[0].TaskUUID)
	require.Equal(t, domain.TaskPending, taskState(t, db, held.TaskUUID))
	require.Equal(t, domain.TaskInProgress, taskState(t, db, free.TaskUUID))
}
