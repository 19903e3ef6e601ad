package telemetry_test

import (
	"context"
	"database/sql"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

// lintExposition runs promlint over a /metrics body and returns its problems.
func lintExposition(t *testing.T, body string) []promlint.Problem {
	t.Helper()
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	require.NoError(t, err)
	for _, p := range problems {
		t.Logf("promlint: %s: %s", p.Metric, p.Text)
	}
	return problems
}

// Every family of the orchestration's /metrics, each with a sample, passes
// promlint.
func TestOrchestrationMetricsPromlintClean(t *testing.T) {
	t.Parallel()
	m := telemetry.NewOrchestrationMetrics(func(context.Context, []string) (map[string]int64, error) {
		return map[string]int64{"examples_queue": 2}, nil
	}, func() []string { return nil }, nil)
	m.TaskCreated("examples")
	m.TaskFinalized(domain.TaskComplete)
	m.StepsEnqueued("examples", 4)
	m.ResultProcessed(domain.QueueStepResults, "processed")
	m.EnqueueCycle(time.Millisecond)
	m.StepRetried("examples", "fetch")
	m.TaskDuration("examples", "diamond", domain.TaskComplete, time.Second)
	m.HTTP().Observe("POST", "/v1/tasks", 201, 3*time.Millisecond)
	_, body := scrape(t, m)
	require.Contains(t, body, "tasker_orchestration_step_retries_total")
	require.Empty(t, lintExposition(t, body))
}

// The same for the worker's /metrics.
func TestWorkerMetricsPromlintClean(t *testing.T) {
	t.Parallel()
	age := 3
	m, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: "v", WorkerID: "worker-1", WorkerType: "command_processor"},
		telemetry.WorkerSources{
			DBStats: func() sql.DBStats { return sql.DBStats{OpenConnections: 2, MaxOpenConnections: 10} },
			QueueMetrics: func(context.Context) []ports.QueueMetrics {
				return []ports.QueueMetrics{{QueueName: "examples_queue", QueueLength: 1, OldestMsgAgeSec: &age}}
			},
			Runtime: func() domain.WorkerStatus {
				return domain.WorkerStatus{Namespaces: map[string]domain.WorkerNamespaceStats{"examples": {Processed: 1, Succeeded: 1}},
					Handlers: []domain.WorkerHandlerStats{{Namespace: "examples", Callable: "h", Success: 1}}}
			},
		})
	require.NoError(t, err)
	m.ObserveClaim(telemetry.ClaimResultClaimed, time.Millisecond)
	inner := mocks.NewEventBus(t)
	inner.EXPECT().PublishExecution(mock.Anything, mock.Anything).Return(nil)
	inner.EXPECT().PublishCompletion(mock.Anything, mock.Anything).Return(nil)
	bus := m.InstrumentEventBus(inner)
	claim := domain.StepClaim{Namespace: "examples", TaskName: "diamond", StepName: "fetch", Attempts: 2}
	require.NoError(t, bus.PublishExecution(context.Background(), domain.StepExecutionEvent{Claim: claim}))
	require.NoError(t, bus.PublishCompletion(context.Background(), domain.StepCompletionEvent{Claim: claim,
		Result: domain.StepExecutionResult{Success: true}}))
	m.HTTP().Observe("GET", "/status", 200, time.Millisecond)
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(w.Body)
	require.NoError(t, err)
	require.Contains(t, string(b), "tasker_worker_step_retries_total")
	require.Contains(t, string(b), "tasker_worker_http_request_duration_seconds_bucket")
	require.Empty(t, lintExposition(t, string(b)))
}
