package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/domain"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("github.com/lib/pq.(*ListenerConn).listenerConnLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// stepJSON is the part of StepResponse the tests read.
type stepJSON struct {
	StepUUID     uuid.UUID       `json:"step_uuid"`
	Name         string          `json:"name"`
	CurrentState string          `json:"current_state"`
	Attempts     int             `json:"attempts"`
	Results      json.RawMessage `json:"results"`
}

func (o *Orchestrator) Steps(t testing.TB, id uuid.UUID) map[string]stepJSON {
	t.Helper()
	var list []stepJSON
	require.Equal(t, 200, o.GetJSON(t, "/v1/tasks/"+id.String()+"/workflow_steps", &list))
	out := map[string]stepJSON{}
	for _, s := range list {
		out[s.Name] = s
	}
	return out
}

// resultValue is results.result of a stored StepExecutionResult.
func resultValue(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var r struct {
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(raw, &r), string(raw))
	return string(r.Result)
}

// requireParentsFirst checks, for every edge, that the child's first
// in_progress transition is not earlier than the parent's complete one.
//
// Only the start is compared: created_at is NOW(), the start time of the
// writing transaction, and an enqueue transaction may begin (e.g. on the
// cycle timer) before the parent's completion commits and still see that
// commit in its later statements (READ COMMITTED), so its enqueued row can
// carry an earlier timestamp than the completion it depended on. A claim
// transaction begins only after its message was read, which was sent in the
// enqueue transaction, so its timestamp is ordered after the parent's.
func requireParentsFirst(t testing.TB, db *sqlx.DB, taskUUID uuid.UUID) {
	t.Helper()
	var violations []string
	require.NoError(t, db.Select(&violations, `
SELECT pn.name || ' -> ' || cn.name
FROM tasker_workflow_step_edges e
JOIN tasker_workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
JOIN tasker_workflow_steps c ON c.workflow_step_uuid = e.to_step_uuid
JOIN tasker_named_steps pn ON pn.named_step_uuid = p.named_step_uuid
JOIN tasker_named_steps cn ON cn.named_step_uuid = c.named_step_uuid
WHERE c.task_uuid = $1
  AND (SELECT MIN(created_at) FROM tasker_workflow_step_transitions
        WHERE workflow_step_uuid = c.workflow_step_uuid AND to_state = 'in_progress')
    < (SELECT MAX(created_at) FROM tasker_workflow_step_transitions
        WHERE workflow_step_uuid = p.workflow_step_uuid AND to_state = 'complete')`, taskUUID))
	require.Empty(t, violations, "a step started before its parent completed")
	var edges int
	require.NoError(t, db.Get(&edges, `SELECT COUNT(*) FROM tasker_workflow_step_edges e
		JOIN tasker_workflow_steps c ON c.workflow_step_uuid = e.to_step_uuid WHERE c.task_uuid = $1`, taskUUID))
	require.Positive(t, edges)
}

func TestExampleWorkflowsCompleteWithFakeWorker(t *testing.T) {
	db, url := OrchDB(t)
	o := StartOrchestrator(t, db, url)
	NewFakeWorker(db, "fake-1").Start(t, 4)
	cases := []struct {
		workflow, final, value string
	}{
		{"linear_workflow", "linear_step_4", "65536"},
		{"diamond_workflow", "diamond_end", "256"},
		{"tree_workflow", "tree_final_convergence", "4294967296"},
		{"mixed_dag_workflow", "dag_finalize", "16777216"},
	}
	for _, tc := range cases {
		t.Run(tc.workflow, func(t *testing.T) {
			created := o.CreateTask(t, tc.workflow, 2)
			require.Equal(t, "complete", o.WaitStatus(t, created.TaskUUID, 20*time.Second))
			steps := o.Steps(t, created.TaskUUID)
			require.Len(t, steps, created.StepCount)
			for name, s := range steps {
				require.Equal(t, "complete", s.CurrentState, name)
				require.Equal(t, 1, s.Attempts, name)
			}
			require.Equal(t, tc.value, resultValue(t, steps[tc.final].Results))
			requireParentsFirst(t, db, created.TaskUUID)
			var completedAt *time.Time
			require.NoError(t, db.Get(&completedAt, `SELECT completed_at FROM tasker_tasks WHERE task_uuid = $1`, created.TaskUUID))
			require.NotNil(t, completedAt, "completed_at set (D-n)")
		})
	}
}

func TestRetryableFailureTwiceThenSuccess(t *testing.T) {
	db, url := OrchDB(t)
	o := StartOrchestrator(t, db, url)
	w := NewFakeWorker(db, "fake-retry")
	w.Fail = func(step string, attempt int) *domain.StepFailure {
		if step == "linear_step_2" && attempt <= 2 {
			return &domain.StepFailure{Message: "flaky dependency", Retryable: true, ErrorType: "transient"}
		}
		return nil
	}
	w.Start(t, 2)
	created := o.CreateTask(t, "linear_workflow", 2)
	require.Equal(t, "complete", o.WaitStatus(t, created.TaskUUID, 30*time.Second))
	steps := o.Steps(t, created.TaskUUID)
	require.Equal(t, 3, steps["linear_step_2"].Attempts)
	require.Equal(t, "65536", resultValue(t, steps["linear_step_4"].Results))

	var runs []time.Time
	var failures []time.Time
	for _, r := range w.Runs() {
		if r.Step == "linear_step_2" {
			runs = append(runs, r.At)
		}
	}
	require.NoError(t, db.Select(&failures, `SELECT created_at FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = $1 AND to_state = 'error' ORDER BY sort_key`, steps["linear_step_2"].StepUUID))
	require.Len(t, runs, 3)
	require.Len(t, failures, 2)
	// Backoff after attempt n is 2^n s (exponential, jitter off); R8 is the same floor.
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second} {
		gap := runs[i+1].Sub(failures[i])
		t.Logf("gap after failure %d: %s (backoff %s)", i+1, gap, want)
		require.GreaterOrEqual(t, gap, want-50*time.Millisecond, "retry %d came before its backoff", i+1)
	}
}

func TestPermanentFailureFailsTaskWhileBranchesFinish(t *testing.T) {
	db, url := OrchDB(t)
	o := StartOrchestrator(t, db, url)
	w := NewFakeWorker(db, "fake-perm")
	w.Fail = func(step string, _ int) *domain.StepFailure {
		if step == "diamond_branch_b" {
			return &domain.StepFailure{Message: "card declined", Retryable: false, ErrorType: "permanent"}
		}
		return nil
	}
	// diamond_branch_c is held until branch_b has failed, so the task must
	// wait for the independent branch before it can be failed.
	w.Hold = map[string]chan struct{}{"diamond_branch_c": make(chan struct{})}
	w.Start(t, 4)
	created := o.CreateTask(t, "diamond_workflow", 2)
	require.Eventually(t, func() bool {
		return o.Steps(t, created.TaskUUID)["diamond_branch_b"].CurrentState == "error"
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { // the failure's completion message has been processed
		var n int
		require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pgmq.q_orchestration_step_results`))
		return n == 0
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "in_progress", o.TaskStatus(t, created.TaskUUID), "branch c still progressing")
	close(w.Hold["diamond_branch_c"])
	require.Equal(t, "error", o.WaitStatus(t, created.TaskUUID, 10*time.Second))
	steps := o.Steps(t, created.TaskUUID)
	require.Equal(t, "complete", steps["diamond_branch_c"].CurrentState)
	require.Equal(t, "error", steps["diamond_branch_b"].CurrentState)
	require.Equal(t, 1, steps["diamond_branch_b"].Attempts, "not retried")
	require.Equal(t, "pending", steps["diamond_end"].CurrentState)
}

// TestOddEvenNumberIsRejectedByInputSchema: the examples' input_schema
// requires an even integer, so an odd even_number is a 400 at creation
// naming the JSON pointer, and no task is written. (The example handler's
// own check stays as defence in depth; app/worker/examples tests it.)
func TestOddEvenNumberIsRejectedByInputSchema(t *testing.T) {
	db, url := OrchDB(t)
	o := StartOrchestrator(t, db, url)
	body := `{"name":"linear_workflow","namespace":"examples","version":"1.0.0","context":{"even_number":3}}`
	resp, err := http.Post(o.URL()+"/v1/tasks", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
	require.Contains(t, string(b), `input_schema at \"/even_number\": multipleOf: got 3, want 2`)
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM tasker_tasks`))
	require.Zero(t, n, "nothing written")
}

func TestCancelRunningTask(t *testing.T) {
	db, url := OrchDB(t)
	o := StartOrchestrator(t, db, url)
	w := NewFakeWorker(db, "fake-cancel")
	w.Hold = map[string]chan struct{}{"linear_step_2": make(chan struct{})}
	w.Start(t, 2)
	created := o.CreateTask(t, "linear_workflow", 2)
	require.Eventually(t, func() bool {
		return o.Steps(t, created.TaskUUID)["linear_step_2"].CurrentState == "in_progress"
	}, 10*time.Second, 5*time.Millisecond)

	req, err := httpRequest("DELETE", o.URL()+"/v1/tasks/"+created.TaskUUID.String())
	require.NoError(t, err)
	require.Equal(t, 200, req.StatusCode)
	close(w.Hold["linear_step_2"])      // the running handler finishes; its outcome must be discarded
	require.Eventually(t, func() bool { // the worker dropped the step_2 message with its discarded outcome
		var msgs int
		require.NoError(t, db.GetContext(context.Background(), &msgs, `SELECT COUNT(*) FROM pgmq.q_examples_queue`))
		return msgs == 0
	}, 10*time.Second, 10*time.Millisecond, "no step message left behind")

	require.Equal(t, "cancelled", o.TaskStatus(t, created.TaskUUID))
	steps := o.Steps(t, created.TaskUUID)
	require.Equal(t, "complete", steps["linear_step_1"].CurrentState)
	for _, s := range []string{"linear_step_2", "linear_step_3", "linear_step_4"} {
		require.Equal(t, "cancelled", steps[s].CurrentState, s)
	}
	for _, r := range w.Runs() {
		require.False(t, strings.HasSuffix(r.Step, "_3") || strings.HasSuffix(r.Step, "_4"), "handler ran for cancelled %s", r.Step)
	}
	var completions int
	require.NoError(t, db.GetContext(context.Background(), &completions, `SELECT COUNT(*) FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = $1 AND to_state = 'complete'`, steps["linear_step_2"].StepUUID))
	require.Zero(t, completions, "the late outcome was discarded")
}

func TestTaskRequestAndFinalizationQueues(t *testing.T) {
	db, url := OrchDB(t)
	o := StartOrchestrator(t, db, url)
	NewFakeWorker(db, "fake-queue").Start(t, 2)
	ctx := context.Background()
	send := func(queue, body string) {
		_, err := db.ExecContext(ctx, `SELECT pgmq.send($1::text, $2::jsonb, 0::integer)`, queue, body)
		require.NoError(t, err)
	}
	send(domain.QueueTaskRequests, `{"request_id":"req-1","task_request":{"name":"diamond_workflow","namespace":"examples",
		"version":"1.0.0","context":{"even_number":2},"initiator":"queue-test"},
		"metadata":{"requested_at":"2025-08-27T12:00:00Z","requester":"test","priority":"Normal","custom":{}}}`)
	send(domain.QueueTaskRequests, `{"request_id":"req-2","task_request":{"name":"nope","namespace":"examples","version":"1.0.0"}}`)
	var taskUUID uuid.UUID
	require.Eventually(t, func() bool {
		return db.GetContext(ctx, &taskUUID, `SELECT task_uuid FROM tasker_tasks WHERE initiator = 'queue-test'`) == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "complete", o.WaitStatus(t, taskUUID, 20*time.Second))
	require.Eventually(t, func() bool {
		var archived int
		require.NoError(t, db.GetContext(ctx, &archived, `SELECT COUNT(*) FROM pgmq.a_orchestration_task_requests`))
		return archived == 1
	}, 5*time.Second, 10*time.Millisecond, "the request for an unknown template is archived")

	send(domain.QueueTaskFinalizations, `{"task_uuid":"`+taskUUID.String()+`"}`)
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, db.GetContext(ctx, &left, `SELECT COUNT(*) FROM pgmq.q_orchestration_task_finalizations`))
		return left == 0
	}, 5*time.Second, 10*time.Millisecond, "finalization request consumed")
	require.Equal(t, "complete", o.TaskStatus(t, taskUUID))
}
