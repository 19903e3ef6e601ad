package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// chromiumPath finds a Chromium/Chrome binary. Without one the browser
// tests skip locally and fail in CI (CI=true), where .ci/run installs
// Debian's chromium package.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no chromium binary on PATH (.ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium binary on PATH; install Debian's chromium package to run the dashboard browser tests")
	return ""
}

// browser starts headless Chromium for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	require.NoError(t, chromedp.Run(ctx)) // launch now, so a broken browser fails here
	return ctx
}

// screenshot saves a full-page PNG into the test's artifact directory
// (go test -artifacts keeps it) and into $TASKER_SCREENSHOT_DIR when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	require.NoError(t, chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)))
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("TASKER_SCREENSHOT_DIR"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name+".png")
		require.NoError(t, os.WriteFile(p, png, 0o644))
		t.Logf("screenshot %s (%d bytes)", p, len(png))
	}
}

// A task of every example (one mixed DAG with two steps that fail once, one
// diamond with invalid input) runs on the orchestration and a worker; the
// dashboard shows them in a real browser: the list with every task and its
// status, each task's DAG with every step in its final state and edges per
// dependency, the waterfall with one row per step (retried steps with more
// than one attempt), the templates with their DAGs and the queues.
func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	st := startObservedStack(t, permanentlyFailing(t, failOnce(t, "dag_process_right", "dag_analyze"), "diamond_start", 6))
	want := map[string]string{}
	ids := map[string]string{}
	for _, name := range []string{"linear_workflow", "diamond_workflow", "tree_workflow", "mixed_dag_workflow"} {
		task := apiTask(t, st.api.URL, name, 2)
		ids[name] = task.TaskUUID.String()
		want[task.TaskUUID.String()] = "complete"
	}
	bad := apiTask(t, st.api.URL, "diamond_workflow", 6) // diamond_start fails permanently for 6
	ids["invalid_diamond"] = bad.TaskUUID.String()
	want[bad.TaskUUID.String()] = "error"
	for name, id := range ids {
		require.Equal(t, want[id], apiWait(t, st.api.URL, uuidOf(t, id), 60*time.Second), name)
	}
	ui := st.api.URL + "/ui"

	// Task list.
	var rows []string
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(ui+"/tasks"), chromedp.WaitVisible("#tasks"),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('#tasks .task-row')).map(r => r.dataset.task + '=' + r.dataset.status)`, &rows)))
	require.Len(t, rows, len(want))
	for _, r := range rows {
		id, status, _ := strings.Cut(r, "=")
		require.Equal(t, want[id], status, r)
	}
	screenshot(t, ctx, "tasks_list")

	// Filter by status through the form.
	var filtered []string
	require.NoError(t, chromedp.Run(ctx, chromedp.SetValue(`select[name="status"]`, "error", chromedp.ByQuery),
		chromedp.Submit(`form.filters`, chromedp.ByQuery), chromedp.WaitVisible("#tasks"),
		chromedp.Sleep(200*time.Millisecond),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('#tasks .task-row')).map(r => r.dataset.task)`, &filtered)))
	require.Equal(t, []string{bad.TaskUUID.String()}, filtered)

	// Each task's page: DAG nodes and states, edges, waterfall rows.
	steps := map[string]int{"linear_workflow": 4, "diamond_workflow": 4, "tree_workflow": 8, "mixed_dag_workflow": 7}
	edges := map[string]int{"linear_workflow": 3, "diamond_workflow": 4, "tree_workflow": 10, "mixed_dag_workflow": 9}
	for name, id := range ids {
		tmpl := name
		if name == "invalid_diamond" {
			tmpl = "diamond_workflow"
		}
		var nodes, wf []string
		var nEdges int
		require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(ui+"/tasks/"+id), chromedp.WaitVisible("#dag"),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('#dag .dag-node')).map(n => n.dataset.step + '=' + n.dataset.state)`, &nodes),
			chromedp.Evaluate(`document.querySelectorAll('#dag .dag-edge').length`, &nEdges),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('#waterfall .wf-row')).map(r => r.dataset.step + '=' + r.dataset.attempts + '=' + r.querySelectorAll('.wf-seg').length)`, &wf)))
		require.Len(t, nodes, steps[tmpl], name)
		require.Equal(t, edges[tmpl], nEdges, name)
		require.Len(t, wf, steps[tmpl], name)
		for _, n := range nodes {
			step, state, _ := strings.Cut(n, "=")
			switch {
			case want[id] == "complete":
				require.Equal(t, string(domain.StepComplete), state, "%s %s", name, step)
			case step == "diamond_start":
				require.Equal(t, string(domain.StepError), state, "the root step failed permanently")
			default:
				require.Equal(t, string(domain.StepPending), state, "%s %s never ran", name, step)
			}
		}
		for _, r := range wf {
			parts := strings.Split(r, "=")
			if name == "mixed_dag_workflow" && (parts[0] == "dag_process_right" || parts[0] == "dag_analyze") {
				require.Equal(t, "2", parts[1], "retried step: two attempts (%s)", r)
				require.Contains(t, []string{"8", "9"}, parts[2], "two enqueued/in_progress/… cycles (%s)", r)
			}
		}
		t.Logf("%s: nodes %v; waterfall step=attempts=segments %v", name, nodes, wf)
		if name == "mixed_dag_workflow" {
			screenshot(t, ctx, "task_mixed_dag")
		}
		if name == "invalid_diamond" {
			var errText string
			require.NoError(t, chromedp.Run(ctx, chromedp.Text(`#steps tr[data-step="diamond_start"] .bad`, &errText, chromedp.ByQuery)))
			require.Contains(t, errText, "ledger_closed: the ledger for 6 is closed")
			screenshot(t, ctx, "task_error_diamond")
		}
	}

	// A queue nobody serves, with two waiting messages, shows its depth and age.
	testdb.CreateQueue(t, st.db, "idle_queue")
	testdb.SendStepMessage(t, st.db, "idle_queue", uuid.New(), uuid.New())
	testdb.SendStepMessage(t, st.db, "idle_queue", uuid.New(), uuid.New())
	time.Sleep(1100 * time.Millisecond) // an oldest-message age of at least 1 s

	// Templates with their DAGs, queues with depth.
	var cards int
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(ui+"/templates"), chromedp.WaitVisible(".template"),
		chromedp.Evaluate(`document.querySelectorAll('.template svg.dag').length`, &cards)))
	require.Equal(t, 4, cards)
	screenshot(t, ctx, "templates")
	var queues []string
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(ui+"/queues"), chromedp.WaitVisible("#queues"),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('#queues .queue-row')).map(r => r.dataset.queue + '=' + r.dataset.depth)`, &queues)))
	require.Contains(t, queues, "examples_queue=0", "every step message was consumed")
	require.Contains(t, queues, domain.QueueStepResults+"=0")
	require.Contains(t, queues, "idle_queue=2")
	var age string
	require.NoError(t, chromedp.Run(ctx, chromedp.Text(`#queues tr[data-queue="idle_queue"] td:nth-child(4)`, &age, chromedp.ByQuery)))
	require.Regexp(t, `^[1-9][0-9]* s$`, age, "oldest-message age")
	screenshot(t, ctx, "queues")
	var dlq string
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(ui+"/dlq"), chromedp.WaitVisible("main"),
		chromedp.Evaluate(`document.querySelector('#dlq') ? 'table' : (document.querySelector('#dlq-absent') ? 'absent' : 'none')`, &dlq)))
	require.Equal(t, "table", dlq, "the migrated schema has tasker_go_dlq_entries")
	t.Logf("queues: %v", queues)
}

func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}

// permanentlyFailing wraps reg's handlers so that step fails permanently
// (not retryable) when the task context's even_number is n.
func permanentlyFailing(t *testing.T, reg *handler.Registry, step string, n int) *handler.Registry {
	t.Helper()
	out := handler.NewRegistry()
	for _, callable := range reg.Callables() {
		inner, ok := reg.Lookup(callable)
		require.True(t, ok)
		require.NoError(t, out.Register(callable, handler.HandlerFunc(func(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
			var v int
			if sc.StepName() == step && sc.ContextValue(examples.EvenNumberKey, &v) == nil && v == n {
				return handler.Success{}, handler.Permanent("ledger_closed", "the ledger for %d is closed", n)
			}
			return inner.Handle(ctx, sc)
		})))
	}
	return out
}
