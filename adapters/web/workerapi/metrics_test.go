package workerapi

import (
	"bytes"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/domain"
)

// parseMetrics parses an exposition with the Prometheus text parser, which
// rejects duplicate HELP/TYPE lines and malformed samples (D-j).
func parseMetrics(t *testing.T, res response) map[string]*dto.MetricFamily {
	t.Helper()
	require.Equal(t, http.StatusOK, res.code)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", res.header.Get("Content-Type"))
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(res.body))
	require.NoError(t, err)
	return fams
}

func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		ok := true
		for _, l := range m.GetLabel() {
			if want, has := labels[l.GetName()]; has && want != l.GetValue() {
				ok = false
			}
		}
		if ok {
			if m.Counter != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestGetMetrics_PrometheusExpositionMovesWithSteps(t *testing.T) {
	t.Parallel()
	e := setup(t)
	fams := parseMetrics(t, e.do(t, http.MethodGet, "/metrics"))
	for _, name := range []string{"tasker_worker_info", "tasker_worker_uptime_seconds", "tasker_worker_db_pool_size",
		"tasker_worker_queue_depth", "tasker_worker_queue_oldest_message_age_seconds", "tasker_worker_steps_total",
		"tasker_worker_steps_in_flight", "tasker_worker_steps_completed_total", "tasker_worker_steps_failed_total",
		"tasker_worker_poison_messages_archived_total", "tasker_worker_command_queue_depth", "go_goroutines", "process_open_fds"} {
		require.Contains(t, fams, name)
	}
	v, ok := sample(fams, "tasker_worker_info", map[string]string{"worker_id": "worker-test", "worker_type": "command_processor", "version": "0.1.0"})
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	before, _ := sample(fams, "tasker_worker_steps_total", map[string]string{"namespace": "examples", "outcome": telemetry.OutcomeSuccess})
	require.Equal(t, 2.0, before)
	_, hasAge := sample(fams, "tasker_worker_queue_oldest_message_age_seconds", map[string]string{"namespace": "other"})
	require.False(t, hasAge, "empty queue: no age sample")

	e.status.update(func(s *domain.WorkerStatus) {
		st := s.Namespaces["examples"]
		st.Succeeded += 5
		s.Namespaces = map[string]domain.WorkerNamespaceStats{"examples": st}
		s.Handlers = []domain.WorkerHandlerStats{{Namespace: "examples", Callable: "Examples::Square", Success: 7, Failure: 1}}
	})
	fams = parseMetrics(t, e.do(t, http.MethodGet, "/metrics"))
	after, _ := sample(fams, "tasker_worker_steps_total", map[string]string{"namespace": "examples", "outcome": telemetry.OutcomeSuccess})
	require.Equal(t, 7.0, after)
	v, _ = sample(fams, "tasker_worker_steps_completed_total", map[string]string{"namespace": "examples", "handler": "Examples::Square"})
	require.Equal(t, 7.0, v)
}
