package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/adapters/web/dashboard"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/ports"
)

// logSink collects JSON log lines in memory.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) Sync() error { return nil }

// entries are the decoded lines whose task_uuid is task (every line when task is Nil).
func (s *logSink) entries(t testing.TB, task uuid.UUID) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.buf.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), sc.Text())
		if task == uuid.Nil || e[lifecycle.FieldTaskUUID] == task.String() {
			out = append(out, e)
		}
	}
	return out
}

// raw are the undecoded lines of task.
func (s *logSink) raw(task uuid.UUID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.buf.String(), "\n") {
		if strings.Contains(l, task.String()) {
			out = append(out, l)
		}
	}
	return out
}

func countMsg(es []map[string]any, msg string) int {
	n := 0
	for _, e := range es {
		if e["msg"] == msg {
			n++
		}
	}
	return n
}

// observedStack is an in-process orchestration (API, loops, metrics) and
// one worker (instrumented), each logging JSON into its own sink.
type observedStack struct {
	db          *sqlx.DB
	api         *httptest.Server
	orchLogs    *logSink
	workerLogs  *logSink
	orchMetrics *telemetry.OrchestrationMetrics
	workerMet   *telemetry.WorkerMetrics
}

func jsonLogger(t testing.TB, sink *logSink, service string) *zap.Logger {
	t.Helper()
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Level: "info", Format: telemetry.FormatJSON, Output: sink,
		Fields: []zap.Field{zap.String("service", service)}})
	require.NoError(t, err)
	return log
}

func startObservedStack(t *testing.T, handlers *handler.Registry) *observedStack {
	t.Helper()
	db, url := OrchDB(t)
	st := &observedStack{db: db, orchLogs: &logSink{}, workerLogs: &logSink{}}
	orchLog := jsonLogger(t, st.orchLogs, "orchestration")
	orch := postgres.NewOrchestrationStore(db)
	query := postgres.NewTaskQuery(db)
	st.orchMetrics = telemetry.NewOrchestrationMetrics(query.QueueDepths, func() []string { return nil }, orchLog)
	listener, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: url,
		Channels: []string{pgmq.GlobalReadyChannel}}, nil)
	require.NoError(t, err)
	svc := service.New(service.Config{Environment: environment}, service.Deps{
		Templates: postgres.NewTemplateStore(db), Creator: postgres.NewTaskStore(db), Enqueuer: orch,
		Batches: orch, Canceller: orch, Queue: pgmq.New(db), Notifier: listener, Metrics: st.orchMetrics, Log: orchLog,
	})
	breaker := web.NewBreakerPinger(query, 0, 0)
	ui, err := dashboard.New(dashboard.Config{BasePath: web.UIPath}, dashboard.Deps{Tasks: query,
		History: postgres.NewTaskHistory(db), Templates: postgres.NewTemplateStore(db), Queues: pgmq.New(db), Log: orchLog})
	require.NoError(t, err)
	var tracer trace.Tracer
	if lifecycle.TracingEnabled() {
		tracer = lifecycle.Tracer(lifecycle.OrchestrationTracer)
	}
	api := web.New(web.Config{Tracer: tracer}, web.Deps{Tasks: svc, Query: query, Templates: postgres.NewTemplateStore(db), DB: breaker,
		Breaker: breaker, UI: ui, Metrics: st.orchMetrics.Handler(), ObserveRequest: st.orchMetrics.HTTP().Observe, Log: orchLog})
	st.api = httptest.NewServer(api.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	require.Eventually(t, svc.Running, 5*time.Second, 5*time.Millisecond)
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		st.api.Close()
		require.NoError(t, listener.Close())
	})

	st.workerMet, err = telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: "test", WorkerID: "worker-obs", WorkerType: "command_processor"},
		telemetry.WorkerSources{})
	require.NoError(t, err)
	startWorker(t, url, workerOpts{handlers: handlers, log: jsonLogger(t, st.workerLogs, "worker"),
		wrap: func(s ports.StepStore, b ports.EventBus) (ports.StepStore, ports.EventBus) {
			return st.workerMet.InstrumentStepStore(s), st.workerMet.InstrumentEventBus(b)
		}})
	return st
}

func scrapeBody(t testing.TB, h http.Handler) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, err := io.ReadAll(w.Body)
	require.NoError(t, err)
	return string(b)
}

// failOnce wraps the example handlers so that step fails its first attempt
// with a retryable error (retry after 1 s).
func failOnce(t testing.TB, steps ...string) *handler.Registry {
	t.Helper()
	reg := handler.NewRegistry()
	wrap := func(inner handler.HandlerFunc) handler.HandlerFunc {
		return func(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
			if slices.Contains(steps, sc.StepName()) && sc.Attempts() == 1 {
				return handler.Success{}, handler.Retryable("flaky_dependency", "simulated outage of %s", sc.StepName()).RetryAfter(1)
			}
			return inner(ctx, sc)
		}
	}
	require.NoError(t, reg.Register(examples.SquareCallable, wrap(examples.Square)))
	require.NoError(t, reg.Register(examples.MultiplyCallable, wrap(examples.Multiply)))
	return reg
}

// A diamond task whose branch fails once: each service writes one line per
// lifecycle event with the shared fields, the retry shows in both retry
// counters, and both /metrics expositions pass promlint.
func TestObservabilityLifecycleLogsRetryAndPromlint(t *testing.T) {
	st := startObservedStack(t, failOnce(t, "diamond_branch_b"))
	task := apiTask(t, st.api.URL, "diamond_workflow", 2)
	require.Equal(t, "complete", apiWait(t, st.api.URL, task.TaskUUID, 30*time.Second))
	require.Eventually(t, func() bool { return countMsg(st.orchLogs.entries(t, task.TaskUUID), lifecycle.TaskFinalized) >= 1 },
		5*time.Second, 10*time.Millisecond)

	orch := st.orchLogs.entries(t, task.TaskUUID)
	work := st.workerLogs.entries(t, task.TaskUUID)
	require.Equal(t, 1, countMsg(orch, lifecycle.TaskCreated))
	require.Equal(t, 5, countMsg(orch, lifecycle.StepEnqueued), "4 steps + 1 retry")
	require.Equal(t, 1, countMsg(orch, lifecycle.StepRetried))
	require.GreaterOrEqual(t, countMsg(orch, lifecycle.TaskFinalized), 1)
	require.Equal(t, 5, countMsg(work, lifecycle.StepClaimed))
	require.Equal(t, 1, countMsg(work, lifecycle.StepFailed))
	require.Equal(t, 4, countMsg(work, lifecycle.StepCompleted))
	for _, e := range append(append([]map[string]any{}, orch...), work...) {
		if strings.HasPrefix(e["msg"].(string), "step ") {
			for _, f := range []string{lifecycle.FieldTaskUUID, lifecycle.FieldStepUUID, lifecycle.FieldNamespace,
				lifecycle.FieldStep, lifecycle.FieldAttempt} {
				require.Contains(t, e, f, "%v", e)
			}
		}
		if e["msg"] == lifecycle.StepRetried {
			require.Equal(t, "diamond_branch_b", e[lifecycle.FieldStep])
			require.EqualValues(t, 2, e[lifecycle.FieldAttempt])
		}
	}
	t.Logf("orchestration log lines of task %s:\n%s", task.TaskUUID, strings.Join(st.orchLogs.raw(task.TaskUUID), "\n"))
	t.Logf("worker log lines of task %s:\n%s", task.TaskUUID, strings.Join(st.workerLogs.raw(task.TaskUUID), "\n"))

	// Scrape the orchestration through its API (also feeds the HTTP histogram).
	resp, err := http.Get(st.api.URL + "/metrics")
	require.NoError(t, err)
	ob, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	orchBody, workerBody := string(ob), scrapeBody(t, st.workerMet.Handler())
	require.Contains(t, orchBody, `tasker_orchestration_step_retries_total{namespace="examples",step="diamond_branch_b"} 1`)
	require.Contains(t, workerBody, `tasker_worker_step_retries_total{namespace="examples",step="diamond_branch_b"} 1`)
	require.Contains(t, orchBody, `tasker_orchestration_task_duration_seconds_count{namespace="examples",state="complete",template="diamond_workflow"} 1`)
	require.Contains(t, orchBody, `tasker_orchestration_http_request_duration_seconds_count{method="POST",route="/v1/tasks",status="200"} 1`)
	require.Contains(t, workerBody, `tasker_worker_step_duration_seconds_count{namespace="examples",outcome="success",template="diamond_workflow"} 4`)
	for name, body := range map[string]string{"orchestration": orchBody, "worker": workerBody} {
		problems, err := promlint.New(strings.NewReader(body)).Lint()
		require.NoError(t, err)
		t.Logf("promlint %s /metrics: %d problems %v", name, len(problems), problems)
		require.Empty(t, problems, name)
		for _, l := range strings.Split(body, "\n") {
			if strings.Contains(l, "retries_total{") {
				t.Logf("%s: %s", name, l)
			}
		}
	}
}
