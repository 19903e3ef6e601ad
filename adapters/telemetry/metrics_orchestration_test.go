package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/domain"
)

func scrape(t *testing.T, m *telemetry.OrchestrationMetrics) (string, string) {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(w.Body)
	require.NoError(t, err)
	return w.Header().Get("Content-Type"), string(b)
}

func TestOrchestrationMetricsExposition(t *testing.T) {
	depths := func(_ context.Context, queues []string) (map[string]int64, error) {
		out := map[string]int64{}
		for i, q := range queues {
			out[q] = int64(i + 7)
		}
		return out, nil
	}
	m := telemetry.NewOrchestrationMetrics(depths, func() []string { return []string{"orchestration_step_results"} }, nil)
	m.TaskCreated("examples")
	m.TaskCreated("examples")
	m.TaskFinalized(domain.TaskComplete)
	m.StepsEnqueued("examples", 3)
	m.ResultProcessed("orchestration_step_results", "processed")
	m.EnqueueCycle(3 * time.Millisecond)
	m.StepRetried("examples", "fetch")
	m.TaskDuration("examples", "diamond", domain.TaskComplete, 1500*time.Millisecond)
	m.HTTP().Observe("GET", "/v1/tasks/:task_uuid", 200, 2*time.Millisecond)
	m.HTTP().Observe("GET", "", 404, time.Millisecond)
	m.Leader(true)
	require.NotNil(t, m.Registry())

	ct, body := scrape(t, m)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", ct, "D-j")
	for _, want := range []string{
		`tasker_orchestration_tasks_created_total{namespace="examples"} 2`,
		`tasker_orchestration_tasks_finalized_total{state="complete"} 1`,
		`tasker_orchestration_steps_enqueued_total{namespace="examples"} 3`,
		`tasker_orchestration_messages_processed_total{outcome="processed",queue="orchestration_step_results"} 1`,
		`tasker_orchestration_enqueue_cycle_duration_seconds_count 1`,
		`tasker_orchestration_queue_depth{queue="orchestration_step_results"} 7`,
		`tasker_orchestration_step_retries_total{namespace="examples",step="fetch"} 1`,
		`tasker_orchestration_task_duration_seconds_bucket{namespace="examples",state="complete",template="diamond",le="2.5"} 1`,
		`tasker_orchestration_http_request_duration_seconds_count{method="GET",route="/v1/tasks/:task_uuid",status="200"} 1`,
		`tasker_orchestration_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1`,
		"tasker_orchestration_leader 1",
		"process_cpu_seconds_total", "go_goroutines",
	} {
		require.Contains(t, body, want)
	}
	// Valid exposition with exactly one HELP and TYPE per family.
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	tasker := 0
	for name := range families {
		if strings.HasPrefix(name, "tasker_orchestration_") {
			tasker++
		}
	}
	require.Equal(t, 10, tasker)
	m.Leader(false)
	_, body = scrape(t, m)
	require.Contains(t, body, "tasker_orchestration_leader 0", "a standby")
	for name := range families {
		require.Equal(t, 1, strings.Count(body, "# TYPE "+name+" "), name)
		require.Equal(t, 1, strings.Count(body, "# HELP "+name+" "), name)
	}
}

func TestOrchestrationMetricsQueueDepthFailureOmitsTheGauge(t *testing.T) {
	m := telemetry.NewOrchestrationMetrics(func(context.Context, []string) (map[string]int64, error) {
		return nil, errors.New("db down")
	}, func() []string { return []string{"q"} }, nil)
	_, body := scrape(t, m)
	require.NotContains(t, body, "tasker_orchestration_queue_depth{")
}
