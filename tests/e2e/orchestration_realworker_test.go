package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// apiTask posts an example task to an orchestration base URL.
func apiTask(t testing.TB, base, name string, even int) domain.TaskCreationResponse {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"namespace":"examples","version":"1.0.0","context":{"even_number":%d}}`, name, even)
	resp, err := http.Post(base+"/v1/tasks", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, string(b))
	var out domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// apiGet decodes GET base+path into v.
func apiGet(t testing.TB, base, path string, v any) {
	t.Helper()
	resp, err := http.Get(base + path)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func apiWait(t testing.TB, base string, id uuid.UUID, timeout time.Duration) string {
	t.Helper()
	var status string
	require.Eventually(t, func() bool {
		var task struct {
			Status string `json:"status"`
		}
		apiGet(t, base, "/v1/tasks/"+id.String(), &task)
		status = task.Status
		return status == "complete" || status == "error" || status == "cancelled"
	}, timeout, 20*time.Millisecond, "task %s did not finish", id)
	return status
}

func openURL(t testing.TB, url string) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestRealBinariesRunExampleWorkflows builds tasker-orchestration and
// tasker-worker, runs them on a fresh database and drives every example.
func TestRealBinariesRunExampleWorkflows(t *testing.T) {
	binDir := buildBinaries(t)
	dbURL := testdb.URL(t)
	orch, _ := startServices(t, binDir, dbURL)
	db := openURL(t, dbURL)
	for _, tc := range []struct{ workflow, final, value string }{
		{"linear_workflow", "linear_step_4", "65536"},
		{"diamond_workflow", "diamond_end", "256"},
		{"tree_workflow", "tree_final_convergence", "4294967296"},
		{"mixed_dag_workflow", "dag_finalize", "16777216"},
	} {
		t.Run(tc.workflow, func(t *testing.T) {
			created := apiTask(t, orch.URL, tc.workflow, 2)
			require.Equal(t, "complete", apiWait(t, orch.URL, created.TaskUUID, 30*time.Second))
			var steps []stepJSON
			apiGet(t, orch.URL, "/v1/tasks/"+created.TaskUUID.String()+"/workflow_steps", &steps)
			require.Len(t, steps, created.StepCount)
			for _, s := range steps {
				require.Equal(t, "complete", s.CurrentState, s.Name)
				if s.Name == tc.final {
					require.Equal(t, tc.value, resultValue(t, s.Results))
				}
			}
			requireParentsFirst(t, db, created.TaskUUID)
		})
	}
	t.Run("odd even_number is rejected by input_schema", func(t *testing.T) {
		body := `{"name":"linear_workflow","namespace":"examples","version":"1.0.0","context":{"even_number":3}}`
		resp, err := http.Post(orch.URL+"/v1/tasks", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(b))
		require.Contains(t, string(b), `input_schema at \"/even_number\"`)
	})
}

// TestRealBinariesTwoOrchestratorsTwoWorkers500Diamonds runs two
// tasker-orchestration and two tasker-worker processes on one database.
func TestRealBinariesTwoOrchestratorsTwoWorkers500Diamonds(t *testing.T) {
	if testing.Short() {
		t.Skip("500-task run skipped in -short mode")
	}
	const tasks = 500
	binDir := buildBinaries(t)
	dbURL := testdb.URL(t)
	orchs := []*process{startOrchestration(t, binDir, dbURL, freeAddr(t)), startOrchestration(t, binDir, dbURL, freeAddr(t))}
	for i := 0; i < 2; i++ {
		addr := freeAddr(t)
		startProcess(t, binDir, "tasker-worker", addr, "/health/ready",
			[]string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test", "TASKER_WORKER__NAMESPACES=examples",
				"TASKER_WORKER_WEB__BIND_ADDRESS=" + addr, "TASKER_ORCHESTRATION_API__BASE_URL=" + orchs[i].URL})
	}
	db := openURL(t, dbURL)
	start := time.Now()
	errs := make(chan error, 4)
	for c := 0; c < 4; c++ {
		go func() {
			for i := c; i < tasks; i += 4 {
				body := `{"name":"diamond_workflow","namespace":"examples","version":"1.0.0","context":{"even_number":2}}`
				resp, err := http.Post(orchs[i%2].URL+"/v1/tasks", "application/json", strings.NewReader(body))
				if err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("POST status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for c := 0; c < 4; c++ {
		require.NoError(t, <-errs)
	}
	require.Eventually(t, func() bool {
		var done int
		require.NoError(t, db.Get(&done, `SELECT COUNT(*) FROM tasker_tasks WHERE complete`))
		return done == tasks
	}, 5*time.Minute, 100*time.Millisecond)
	elapsed := time.Since(start)
	t.Logf("real binaries, 500 diamond tasks, 2 orchestrators + 2 workers: %s, %.1f tasks/s, %.1f steps/s",
		elapsed.Round(time.Millisecond), tasks/elapsed.Seconds(), 4*tasks/elapsed.Seconds())
	requireNoDuplicateWork(t, db, tasks)

	// Exactly one consumes the orchestration queues; when it stops, the
	// other takes over.
	var leaders []int
	for i, o := range orchs {
		if leading(t, o.URL) {
			leaders = append(leaders, i)
		}
	}
	require.Len(t, leaders, 1, "exactly one orchestration leads")
	orchs[leaders[0]].Stop()
	other := orchs[1-leaders[0]]
	require.Eventually(t, func() bool { return leading(t, other.URL) }, 30*time.Second, 50*time.Millisecond,
		"the standby takes over")
}

// leading reports whether the orchestration at base leads: its
// tasker_orchestration_leader gauge is 1.
func leading(t *testing.T, base string) bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "tasker_orchestration_leader "); ok {
			return v == "1"
		}
	}
	t.Fatalf("no tasker_orchestration_leader in %s/metrics", base)
	return false
}

// TestOrchestrationBinaryGracefulShutdownAndRestart stops the orchestration
// with SIGTERM while tasks are in flight (it must exit 0 with every
// transaction either committed or rolled back), starts a new one, and
// requires all tasks to complete with no duplicate sends or history gaps.
func TestOrchestrationBinaryGracefulShutdownAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restart run skipped in -short mode")
	}
	const tasks = 100
	binDir := buildBinaries(t)
	dbURL := testdb.URL(t)
	first, _ := startServices(t, binDir, dbURL)
	db := openURL(t, dbURL)
	for i := 0; i < tasks; i++ {
		apiTask(t, first.URL, "diamond_workflow", 2)
	}
	first.Stop() // requires exit 0 after SIGTERM
	var done int
	require.NoError(t, db.Get(&done, `SELECT COUNT(*) FROM tasker_tasks WHERE complete`))
	t.Logf("%d of %d tasks complete when the first orchestration stopped", done, tasks)

	startOrchestration(t, binDir, dbURL, freeAddr(t))
	require.Eventually(t, func() bool {
		require.NoError(t, db.Get(&done, `SELECT COUNT(*) FROM tasker_tasks WHERE complete`))
		return done == tasks
	}, 2*time.Minute, 50*time.Millisecond)
	requireNoDuplicateWork(t, db, tasks)
}

const cancelChainTemplate = `name: nap_chain
namespace_name: canceltest
version: "1.0.0"
steps:
  - name: nap_1
    handler: {callable: test.sleep}
  - name: nap_2
    dependencies: [nap_1]
    handler: {callable: test.sleep}
  - name: nap_3
    dependencies: [nap_2]
    handler: {callable: test.sleep}
`

// TestRealBinariesCancelRunningTask cancels a task while the real worker
// runs its first step: every remaining step is cancelled, no handler starts
// for them, the running step's late outcome is discarded.
func TestRealBinariesCancelRunningTask(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	binDir := buildBinaries(t)
	dbURL := testdb.URL(t)
	tplDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(tplDir, "nap_chain.yaml"), []byte(cancelChainTemplate), 0o644))
	orch := startOrchestration(t, binDir, dbURL, freeAddr(t))
	addr := freeAddr(t)
	startProcess(t, binDir, "tasker-worker", addr, "/health/ready",
		[]string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test", "TASKER_WORKER__NAMESPACES=canceltest",
			"TASKER_WORKER__TEMPLATE_DIR=" + tplDir, "TASKER_WORKER_TEST_HANDLERS=1",
			"TASKER_WORKER_WEB__BIND_ADDRESS=" + addr, "TASKER_ORCHESTRATION_API__BASE_URL=" + orch.URL})
	db := openURL(t, dbURL)

	body := `{"name":"nap_chain","namespace":"canceltest","version":"1.0.0","context":{"sleep_ms":1500}}`
	resp, err := http.Post(orch.URL+"/v1/tasks", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	var created domain.TaskCreationResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	_ = resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	stepState := func(name string) string {
		var st string
		require.NoError(t, db.Get(&st, `SELECT COALESCE((SELECT to_state FROM tasker_workflow_step_transitions
			WHERE workflow_step_uuid = $1 AND most_recent), 'pending')`, created.StepMapping[name]))
		return st
	}
	start := time.Now()
	require.Eventually(t, func() bool { return stepState("nap_1") == "in_progress" }, 20*time.Second, 10*time.Millisecond)
	t.Logf("nap_1 running after %s", time.Since(start))

	del, err := httpRequest(http.MethodDelete, orch.URL+"/v1/tasks/"+created.TaskUUID.String())
	require.NoError(t, err)
	require.Equal(t, 200, del.StatusCode)
	// Wait until the worker has finished nap_1 (1.5 s) and dropped its message.
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pgmq.q_canceltest_queue`))
		return n == 0
	}, 20*time.Second, 20*time.Millisecond)
	t.Logf("nap_1 message gone after %s", time.Since(start))
	time.Sleep(300 * time.Millisecond) // any wrongly enqueued follower would be claimed within this

	var task struct {
		Status string `json:"status"`
	}
	apiGet(t, orch.URL, "/v1/tasks/"+created.TaskUUID.String(), &task)
	require.Equal(t, "cancelled", task.Status)
	for _, s := range []string{"nap_1", "nap_2", "nap_3"} {
		require.Equal(t, "cancelled", stepState(s), s)
	}
	var started int
	require.NoError(t, db.Get(&started, `SELECT COUNT(*) FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = ANY($1::uuid[]) AND to_state IN ('enqueued', 'in_progress')`,
		"{"+created.StepMapping["nap_2"].String()+","+created.StepMapping["nap_3"].String()+"}"))
	require.Zero(t, started, "no handler ran for the cancelled followers")
	var completed int
	require.NoError(t, db.Get(&completed, `SELECT COUNT(*) FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = $1 AND to_state = 'complete'`, created.StepMapping["nap_1"]))
	require.Zero(t, completed, "the running step's outcome was discarded")
}
