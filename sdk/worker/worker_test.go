package worker

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/registry"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// exampleHandlers is a fresh registry with the example handlers: each
// worker gets its own (nothing global).
func exampleHandlers(t *testing.T) *handler.Registry {
	t.Helper()
	r := handler.NewRegistry()
	require.NoError(t, examples.Register(r))
	return r
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// orchestrationStub answers GET /health like the orchestration API.
func orchestrationStub(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok","timestamp":"2026-01-01T00:00:00Z"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// workerConfig is a valid worker configuration on a fresh database serving
// the examples namespace with the web API (and metrics) on a free port.
func workerConfig(t *testing.T, orchestrationURL string) *config.Config {
	t.Helper()
	cfg := config.Defaults(config.EnvTest)
	cfg.Database.URL = testdb.URL(t)
	cfg.Worker.Namespaces = []string{"examples"}
	cfg.Worker.TemplateDir = filepath.Join("..", "..", "configs", "tasks", "examples")
	cfg.WorkerWeb.Enabled = true
	cfg.WorkerWeb.MetricsEnabled = true
	cfg.WorkerWeb.BindAddress = freePort(t)
	cfg.Pgmq.PollIntervalMs = 50
	cfg.OrchestrationAPI.BaseURL = orchestrationURL
	_, err := cfg.Worker.EnsureID()
	require.NoError(t, err)
	require.NoError(t, cfg.ValidateWorker())
	return &cfg
}

type runningWorker struct {
	base   string
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan error
}

// startWorker builds the worker and runs it until the test stops it.
func startWorker(t *testing.T, cfg *config.Config) *runningWorker {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, WithLogger(zap.New(core)), WithHandlers(exampleHandlers(t)))
	require.NoError(t, err)
	w := &runningWorker{base: "http://" + cfg.WorkerWeb.BindAddress, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// stop ends the worker as a signal would and returns run's error.
func (w *runningWorker) stop(t *testing.T) error {
	t.Helper()
	w.cancel()
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
		return nil
	}
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func awaitReady(t *testing.T, base string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/health/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 20*time.Millisecond, "worker never became ready")
}

// enqueueRoot creates a linear_workflow task and enqueues its first step as
// the orchestration would (§10.2).
func enqueueRoot(t *testing.T, db *sqlx.DB) uuid.UUID {
	t.Helper()
	tm, err := registry.LoadFile(filepath.Join("..", "..", "configs", "tasks", "examples", "linear_workflow.yaml"))
	require.NoError(t, err)
	spec := testdb.TaskSpec{Namespace: "examples", Name: tm.Name, Version: tm.Version, Context: map[string]any{"even_number": 2}}
	for _, s := range tm.Steps {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: s.Name, Deps: s.Dependencies})
	}
	task := testdb.CreateTask(t, db, spec)
	root := task.Steps[tm.Steps[0].Name]
	testdb.SetStepState(t, db, root, domain.StepEnqueued)
	testdb.SendStepMessage(t, db, domain.QueueName("examples"), task.TaskUUID, root)
	return root
}

func stepState(t *testing.T, db *sqlx.DB, step uuid.UUID) string {
	t.Helper()
	var s string
	require.NoError(t, db.Get(&s, `SELECT to_state FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = $1 AND most_recent`, step))
	return s
}

// TestWorkerProcessesStepsWhetherOrNotOrchestrationAnswers runs the
// assembled worker in-process: it registers the templates, becomes ready,
// completes an enqueued step, reports it in /status and /metrics, logs the
// orchestration API check, and stops cleanly on cancellation.
func TestWorkerProcessesStepsWhetherOrNotOrchestrationAnswers(t *testing.T) {
	cases := []struct {
		name      string
		orchURL   func(t *testing.T) string
		wantLog   string
		wantLevel zapcore.Level
	}{
		{"orchestration reachable", orchestrationStub, "orchestration API reachable", zapcore.InfoLevel},
		{"orchestration down", func(t *testing.T) string { return "http://" + freePort(t) },
			"orchestration API not reachable (steps are processed regardless)", zapcore.WarnLevel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := workerConfig(t, tc.orchURL(t))
			w := startWorker(t, cfg)
			awaitReady(t, w.base)

			db := sqlx.MustOpen("postgres", cfg.Database.URL)
			t.Cleanup(func() { _ = db.Close() })
			step := enqueueRoot(t, db)
			require.Eventually(t, func() bool { return stepState(t, db, step) == string(domain.StepComplete) },
				20*time.Second, 20*time.Millisecond)

			require.Eventually(t, func() bool {
				code, st := getJSON(t, w.base+"/status")
				pm, _ := st["performance_metrics"].(map[string]any)
				return code == http.StatusOK && pm["steps_processed_total"] == float64(1) &&
					pm["steps_processed_success"] == float64(1)
			}, 10*time.Second, 20*time.Millisecond, "the completed step shows in /status")
			_, st := getJSON(t, w.base+"/status")
			require.Equal(t, true, st["capabilities"].(map[string]any)["can_initialize_tasks"],
				"handlers can create tasks through the orchestration client")

			resp, err := http.Get(w.base + "/metrics")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, string(body), "tasker_worker", "metrics enabled: worker metrics are served")

			require.Eventually(t, func() bool { return w.logs.FilterMessage(tc.wantLog).Len() == 1 },
				20*time.Second, 20*time.Millisecond, "start-up check of the orchestration API is logged")
			require.Equal(t, tc.wantLevel, w.logs.FilterMessage(tc.wantLog).All()[0].Level)

			require.NoError(t, w.stop(t))
			_, err = http.Get(w.base + "/health")
			require.Error(t, err, "the web API stopped with the worker")
		})
	}
}

// TestPortInUseFailsNewBeforeAnythingElse: a taken bind address is New's
// error, and the only thing that happens: no log line, no template
// registered, no database connection left open (the binary then prints
// exactly one line).
func TestPortInUseFailsNewBeforeAnythingElse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	cfg := workerConfig(t, orchestrationStub(t))
	cfg.WorkerWeb.BindAddress = ln.Addr().String()
	core, logs := observer.New(zapcore.DebugLevel)

	svc, err := New(context.Background(), cfg, WithLogger(zap.New(core)), WithHandlers(exampleHandlers(t)))
	require.Nil(t, svc)
	require.ErrorContains(t, err, "worker web: listen on "+ln.Addr().String()+": ")
	require.ErrorContains(t, err, "address already in use")
	require.Empty(t, logs.All(), "nothing is logged before the one-line failure")

	db := sqlx.MustOpen("postgres", cfg.Database.URL)
	t.Cleanup(func() { _ = db.Close() })
	var named int
	require.NoError(t, db.Get(&named, `SELECT count(*) FROM tasker_named_tasks`))
	require.Zero(t, named, "no template was registered")
	var others int
	require.NoError(t, db.Get(&others, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND pid <> pg_backend_pid()`))
	require.Zero(t, others, "the worker never connected")
}

// TestStopBeforeTheOrchestrationAnswersLogsNoWarning: stopping the worker
// while its start-up health check of the orchestration API is still waiting
// is our own stop, not an unreachable orchestration, so no warning is
// logged (it used to read "not reachable: context canceled").
func TestStopBeforeTheOrchestrationAnswersLogsNoWarning(t *testing.T) {
	asked := make(chan struct{}, 1)
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) }) // runs before hanging.Close
	cfg := workerConfig(t, hanging.URL)
	w := startWorker(t, cfg)
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the worker never asked the orchestration for its health")
	}
	require.NoError(t, w.stop(t))
	require.NotEmpty(t, w.logs.FilterMessage("worker stopped").All(), "the worker ran and stopped")
	require.Empty(t, w.logs.FilterMessageSnippet("orchestration API").All())
}

// TestBootstrapFailuresCloseWhatWasOpened: a failure after the database was
// opened is reported with its cause and leaves no connection behind.
func TestBootstrapFailuresCloseWhatWasOpened(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(c *config.Config)
		want   string
	}{
		{"missing template directory", func(c *config.Config) { c.Worker.TemplateDir = filepath.Join(t.TempDir(), "nope") },
			"templates: "},
		{"bad orchestration url", func(c *config.Config) { c.OrchestrationAPI.BaseURL = "::not a url" },
			"invalid configuration: orchestration_api.base_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := workerConfig(t, orchestrationStub(t))
			tc.mutate(cfg)
			svc, err := New(context.Background(), cfg, WithHandlers(exampleHandlers(t)))
			require.Nil(t, svc)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tc.want), err.Error())
			db := sqlx.MustOpen("postgres", cfg.Database.URL)
			t.Cleanup(func() { _ = db.Close() })
			// A closed connection's backend exits shortly after the client
			// hangs up, so the count is awaited rather than read once.
			require.Eventually(t, func() bool {
				var n int
				require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
					AND pid <> pg_backend_pid()`))
				return n == 0
			}, 10*time.Second, 10*time.Millisecond, "the worker's pool was closed")
		})
	}
}

// TestWorkerWithCallerOwnedPool: with WithDB the worker needs no
// database.url (LISTEN is then off), processes steps on the caller's pool
// and leaves it open when Run returns.
func TestWorkerWithCallerOwnedPool(t *testing.T) {
	cfg := workerConfig(t, orchestrationStub(t))
	pool, err := postgres.Open(context.Background(), cfg.Database.URL, postgres.PoolConfig{MaxOpenConns: 8})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pool.Close() })
	cfg.Database.URL = ""
	cfg.Pgmq.ListenEnabled = true

	core, logs := observer.New(zapcore.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := New(ctx, cfg, WithDB(pool), WithLogger(zap.New(core)), WithHandlers(exampleHandlers(t)))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	awaitReady(t, "http://"+cfg.WorkerWeb.BindAddress)

	step := enqueueRoot(t, pool)
	require.Eventually(t, func() bool { return stepState(t, pool, step) == string(domain.StepComplete) },
		20*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, pool.Ping(), "the caller's pool stays open")
	require.Len(t, logs.FilterMessageSnippet("polling only").All(), 1)
}
