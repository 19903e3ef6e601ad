package telemetry

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

// scrape serves m's handler once and parses the body with the Prometheus
// text parser, which rejects a second HELP or TYPE line for one family.
func scrape(t *testing.T, m *WorkerMetrics) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, MetricsContentType, rec.Header().Get("Content-Type"))
	body := rec.Body.String()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams, body
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	mf, ok := fams[name]
	require.True(t, ok, "family %s missing", name)
	for _, mt := range mf.GetMetric() {
		if matches(mt, labels) {
			switch {
			case mt.Counter != nil:
				return mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue()
			case mt.Histogram != nil:
				return float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Failf(t, "sample missing", "%s%v", name, labels)
	return 0
}

func matches(mt *dto.Metric, labels map[string]string) bool {
	got := map[string]string{}
	for _, l := range mt.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range labels {
		if got[k] != v {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

func TestWorkerMetrics_ExpositionFamiliesAndValues(t *testing.T) {
	rt := domain.WorkerStatus{
		InFlight: 3, CommandQueueDepth: 7, PoisonArchived: 2,
		Namespaces: map[string]domain.WorkerNamespaceStats{"examples": {Processed: 6, Succeeded: 5, Failed: 1}},
		Handlers:   []domain.WorkerHandlerStats{{Namespace: "examples", Callable: "Demo::Square", Success: 5, Failure: 1}},
	}
	m, err := NewWorkerMetrics(WorkerInfo{Version: "1.2.3", WorkerID: "worker-x", WorkerType: "command_processor"}, WorkerSources{
		DBStats: func() sql.DBStats {
			return sql.DBStats{MaxOpenConnections: 20, OpenConnections: 4, InUse: 1, Idle: 3, WaitCount: 9, WaitDuration: 2 * time.Second}
		},
		QueueMetrics: func(context.Context) []ports.QueueMetrics {
			return []ports.QueueMetrics{
				{QueueName: "examples_queue", QueueLength: 12, OldestMsgAgeSec: ptr(30)},
				{QueueName: "empty_queue", QueueLength: 0},
			}
		},
		Runtime: func() domain.WorkerStatus { return rt },
	})
	require.NoError(t, err)
	fams, body := scrape(t, m)

	require.Equal(t, 1.0, value(t, fams, "tasker_worker_info", map[string]string{"version": "1.2.3", "worker_id": "worker-x", "worker_type": "command_processor"}))
	require.Equal(t, dto.MetricType_GAUGE, fams["tasker_worker_uptime_seconds"].GetType(), "a gauge: promlint wants counters to end in _total")
	require.Equal(t, 4.0, value(t, fams, "tasker_worker_db_pool_size", nil))
	require.Equal(t, 20.0, value(t, fams, "tasker_worker_db_pool_max_open", nil))
	require.Equal(t, 9.0, value(t, fams, "tasker_worker_db_pool_wait_count_total", nil))
	require.Equal(t, 12.0, value(t, fams, "tasker_worker_queue_depth", map[string]string{"namespace": "examples"}))
	require.Equal(t, 0.0, value(t, fams, "tasker_worker_queue_depth", map[string]string{"namespace": "empty"}))
	require.Equal(t, 30.0, value(t, fams, "tasker_worker_queue_oldest_message_age_seconds", map[string]string{"namespace": "examples"}))
	require.NotContains(t, body, `tasker_worker_queue_oldest_message_age_seconds{namespace="empty"}`, "age is omitted for an empty queue")
	require.Equal(t, 5.0, value(t, fams, "tasker_worker_steps_total", map[string]string{"namespace": "examples", "outcome": "success"}))
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_steps_total", map[string]string{"namespace": "examples", "outcome": "failure"}))
	require.Equal(t, 5.0, value(t, fams, "tasker_worker_steps_completed_total", map[string]string{"namespace": "examples", "handler": "Demo::Square"}))
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_steps_failed_total", map[string]string{"namespace": "examples", "handler": "Demo::Square"}))
	require.Equal(t, 3.0, value(t, fams, "tasker_worker_steps_in_flight", nil))
	require.Equal(t, 7.0, value(t, fams, "tasker_worker_command_queue_depth", nil))
	require.Equal(t, 2.0, value(t, fams, "tasker_worker_poison_messages_archived_total", nil))
	require.Contains(t, fams, "go_goroutines")
	require.Contains(t, fams, "process_cpu_seconds_total")
	require.Contains(t, body, "\ntasker_worker_steps_in_flight 3\n", "samples without labels have no braces")
}

func TestWorkerMetrics_NilSourcesOmitFamilies(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	fams, _ := scrape(t, m)
	for _, name := range []string{"tasker_worker_db_pool_size", "tasker_worker_queue_depth", "tasker_worker_steps_total", "tasker_worker_steps_in_flight"} {
		require.NotContains(t, fams, name)
	}
	require.Contains(t, fams, "tasker_worker_uptime_seconds")
}

func TestWorkerMetrics_UptimeMoves(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	m.now = func() time.Time { return m.start.Add(90 * time.Second) }
	fams, _ := scrape(t, m)
	require.Equal(t, 90.0, value(t, fams, "tasker_worker_uptime_seconds", nil))
}

func TestInstrumentEventBus_CountsClaimsCompletionsAndDrops(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	inner := mocks.NewEventBus(t)
	bus := m.InstrumentEventBus(inner)
	ctx := context.Background()

	exec := domain.StepExecutionEvent{Claim: domain.StepClaim{Namespace: "examples", TaskName: "diamond", StepName: "square", Attempts: 1},
		StepDefinition: domain.StepDefinition{Handler: domain.HandlerDefinition{Callable: "Demo::Square"}}}
	retry := exec
	retry.Claim.Attempts = 2
	inner.EXPECT().PublishExecution(ctx, exec).Return(nil).Once()
	inner.EXPECT().PublishExecution(ctx, retry).Return(nil).Once()
	require.NoError(t, bus.PublishExecution(ctx, exec))
	require.NoError(t, bus.PublishExecution(ctx, retry))

	done := domain.StepCompletionEvent{Claim: exec.Claim, Result: domain.StepExecutionResult{Success: true,
		Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 40}}}
	failed := domain.StepCompletionEvent{Claim: exec.Claim, Result: domain.StepExecutionResult{Success: false}}
	inner.EXPECT().PublishCompletion(ctx, done).Return(nil).Once()
	inner.EXPECT().PublishCompletion(ctx, failed).Return(errors.New("bus closed")).Once()
	require.NoError(t, bus.PublishCompletion(ctx, done))
	require.Error(t, bus.PublishCompletion(ctx, failed))

	fams, _ := scrape(t, m)
	require.Equal(t, 2.0, value(t, fams, "tasker_worker_steps_claimed_total", map[string]string{"namespace": "examples", "handler": "Demo::Square"}))
	require.Equal(t, 2.0, value(t, fams, "tasker_worker_event_bus_published_total", map[string]string{"event": EventExecution}))
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_event_bus_published_total", map[string]string{"event": EventCompletion}))
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_event_bus_dropped_total", map[string]string{"event": EventCompletion}))
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_step_retries_total", map[string]string{"namespace": "examples", "step": "square"}),
		"only the second attempt is a retry")
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_step_duration_seconds", map[string]string{"namespace": "examples", "template": "diamond", "outcome": "success"}))
	h := fams["tasker_worker_step_duration_seconds"].GetMetric()[0].GetHistogram()
	require.InDelta(t, 0.04, h.GetSampleSum(), 1e-9)
}

func TestInstrumentStepStore_ClaimDurationByResult(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	inner := mocks.NewStepStore(t)
	store := m.InstrumentStepStore(inner)
	ctx := context.Background()
	won, lost, broken := uuid.New(), uuid.New(), uuid.New()
	inner.EXPECT().ClaimStep(ctx, won, "w").Return(ports.StepSnapshot{State: domain.StepInProgress}, nil).Once()
	inner.EXPECT().ClaimStep(ctx, lost, "w").Return(ports.StepSnapshot{}, &domain.NotClaimableError{}).Once()
	inner.EXPECT().ClaimStep(ctx, broken, "w").Return(ports.StepSnapshot{}, errors.New("conn reset")).Once()
	inner.EXPECT().LoadStep(mock.Anything, won).Return(ports.StepSnapshot{}, nil).Once()

	snap, err := store.ClaimStep(ctx, won, "w")
	require.NoError(t, err)
	require.Equal(t, domain.StepInProgress, snap.State)
	_, err = store.ClaimStep(ctx, lost, "w")
	var nc *domain.NotClaimableError
	require.ErrorAs(t, err, &nc)
	_, err = store.ClaimStep(ctx, broken, "w")
	require.Error(t, err)
	_, err = store.LoadStep(ctx, won) // other methods pass through
	require.NoError(t, err)

	fams, _ := scrape(t, m)
	for _, r := range []string{ClaimResultClaimed, ClaimResultNotClaimable, ClaimResultError} {
		require.Equal(t, 1.0, value(t, fams, "tasker_worker_claim_duration_seconds", map[string]string{"result": r}), r)
	}
}

func TestQueueNamespace(t *testing.T) {
	cases := map[string]string{"examples_queue": "examples", "a_b_queue": "a_b", "_queue": "_queue", "other": "other"}
	for in, want := range cases {
		require.Equal(t, want, QueueNamespace(in), in)
	}
}

// badCollector emits a sample that contradicts its own description, which
// makes Gather report an error alongside the families it could gather.
type badCollector struct{}

var badDesc = prometheus.NewDesc("tasker_worker_test_bad", "Bad on purpose", []string{"a"}, nil)

func (badCollector) Describe(ch chan<- *prometheus.Desc) { ch <- badDesc }
func (badCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(badDesc, prometheus.GaugeValue, 1, "x")
	ch <- prometheus.MustNewConstMetric(badDesc, prometheus.GaugeValue, 2, "x") // duplicate series
}

func TestWorkerMetrics_PartialGatherStillServes(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	require.NoError(t, m.Registry().Register(badCollector{}))
	fams, _ := scrape(t, m)
	require.Contains(t, fams, "tasker_worker_uptime_seconds", "good families are served despite one bad collector")
}

func TestInstrumentEventBus_DroppedExecution(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	inner := mocks.NewEventBus(t)
	ev := domain.StepExecutionEvent{Claim: domain.StepClaim{Namespace: "examples"}}
	inner.EXPECT().PublishExecution(mock.Anything, ev).Return(context.Canceled).Once()
	require.ErrorIs(t, m.InstrumentEventBus(inner).PublishExecution(context.Background(), ev), context.Canceled)
	fams, _ := scrape(t, m)
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_event_bus_dropped_total", map[string]string{"event": EventExecution}))
	require.NotContains(t, fams, "tasker_worker_steps_claimed_total", "a dropped execution is not a claimed step")
}

func TestInstrumentStepStore_LoadAndClaimForwardedAndTimed(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	inner := mocks.NewStepStore(t)
	store := m.InstrumentStepStore(inner)
	ctx := context.Background()
	task := uuid.New()
	won, other, broken := uuid.New(), uuid.New(), uuid.New()
	inner.EXPECT().LoadAndClaim(ctx, won, task, "examples", "w").Return(ports.StepSnapshot{State: domain.StepInProgress}, true, nil).Once()
	inner.EXPECT().LoadAndClaim(ctx, other, task, "examples", "w").Return(ports.StepSnapshot{State: domain.StepComplete}, false, nil).Once()
	inner.EXPECT().LoadAndClaim(ctx, broken, task, "examples", "w").Return(ports.StepSnapshot{}, false, errors.New("conn reset")).Once()

	snap, claimed, err := store.LoadAndClaim(ctx, won, task, "examples", "w")
	require.NoError(t, err)
	require.True(t, claimed)
	require.Equal(t, domain.StepInProgress, snap.State, "the inner store's snapshot is returned")
	snap, claimed, err = store.LoadAndClaim(ctx, other, task, "examples", "w")
	require.NoError(t, err)
	require.False(t, claimed)
	require.Equal(t, domain.StepComplete, snap.State)
	_, _, err = store.LoadAndClaim(ctx, broken, task, "examples", "w")
	require.ErrorContains(t, err, "conn reset")

	fams, _ := scrape(t, m)
	for _, r := range []string{ClaimResultClaimed, ClaimResultNotClaimable, ClaimResultError} {
		require.Equal(t, 1.0, value(t, fams, "tasker_worker_claim_duration_seconds", map[string]string{"result": r}), r)
	}
}

// The production wiring (cmd/tasker-worker) hands the pipeline the
// instrumented store: the pipeline must still reach the inner store's
// LoadAndClaim, not fall back to LoadStep (which has no expectation here,
// so calling it fails the test), and the claim must be timed.
func TestInstrumentStepStore_PipelineTakesLoadAndClaim(t *testing.T) {
	m, err := NewWorkerMetrics(WorkerInfo{}, WorkerSources{})
	require.NoError(t, err)
	inner := mocks.NewStepStore(t)
	q := mocks.NewQueue(t)
	p, err := pipeline.New(pipeline.Config{WorkerID: "w"},
		pipeline.Deps{Steps: m.InstrumentStepStore(inner), Queue: q, Bus: mocks.NewEventBus(t)})
	require.NoError(t, err)
	task, step := uuid.New(), uuid.New()
	snap := ports.StepSnapshot{State: domain.StepComplete,
		Step: domain.StepInfo{WorkflowStepUUID: step, TaskUUID: task}, Task: domain.TaskInfo{TaskUUID: task, NamespaceName: "examples"}}
	inner.EXPECT().LoadAndClaim(mock.Anything, step, task, "examples", "w").Return(snap, false, nil).Once()
	q.EXPECT().Delete(mock.Anything, "examples_queue", int64(7)).Return(true, nil).Once()

	msg := ports.QueueMessage{MsgID: 7, Message: []byte(`{"task_uuid":"` + task.String() + `","step_uuid":"` + step.String() + `"}`)}
	d, err := p.Process(context.Background(), "examples_queue", msg, nil)
	require.NoError(t, err)
	require.Equal(t, pipeline.DecisionDeletedStale, d)
	fams, _ := scrape(t, m)
	require.Equal(t, 1.0, value(t, fams, "tasker_worker_claim_duration_seconds", map[string]string{"result": ClaimResultNotClaimable}))
}
