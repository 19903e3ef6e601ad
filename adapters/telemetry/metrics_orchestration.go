package telemetry

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// PrometheusTextContentType is the exposition content type required by D-j.
const PrometheusTextContentType = "text/plain; version=0.0.4; charset=utf-8"

// QueueDepthFunc reports the current depth of each named queue; it is
// called on every scrape, so it must be cheap.
type QueueDepthFunc func(ctx context.Context, queues []string) (map[string]int64, error)

// OrchestrationMetrics holds the orchestration's Prometheus collectors
// (prefix tasker_orchestration_) on a private registry and implements
// ports.OrchestrationMetrics.
type OrchestrationMetrics struct {
	registry       *prometheus.Registry
	tasksCreated   *prometheus.CounterVec
	tasksFinalized *prometheus.CounterVec
	stepsEnqueued  *prometheus.CounterVec
	resultsHandled *prometheus.CounterVec
	cycleDuration  prometheus.Histogram
	dlqEntries     *prometheus.CounterVec
	stepRetries    *prometheus.CounterVec
	taskDuration   *prometheus.HistogramVec
	leader         prometheus.Gauge
	http           *HTTPMetrics
	log            *zap.Logger
}

// taskDurationBuckets span a no-op task (milliseconds) to a long workflow
// with retries and backoff (an hour).
var taskDurationBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

var _ ports.OrchestrationMetrics = (*OrchestrationMetrics)(nil)

// NewOrchestrationMetrics registers the collectors. depth (may be nil)
// feeds the tasker_orchestration_queue_depth gauge for queues() at scrape time.
func NewOrchestrationMetrics(depth QueueDepthFunc, queues func() []string, log *zap.Logger) *OrchestrationMetrics {
	if log == nil {
		log = zap.NewNop()
	}
	m := &OrchestrationMetrics{
		registry: prometheus.NewRegistry(),
		tasksCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_orchestration_tasks_created_total", Help: "Tasks created"}, []string{"namespace"}),
		tasksFinalized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_orchestration_tasks_finalized_total",
			Help: "Tasks finalized, by final state (complete or error)"}, []string{"state"}),
		stepsEnqueued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_orchestration_steps_enqueued_total", Help: "Step messages sent"}, []string{"namespace"}),
		resultsHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_orchestration_messages_processed_total",
			Help: "Orchestration queue messages handled, by queue and outcome"}, []string{"queue", "outcome"}),
		cycleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tasker_orchestration_enqueue_cycle_duration_seconds", Help: "Duration of one enqueue cycle",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		stepRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_orchestration_step_retries_total",
			Help: "Steps sent again after an error, by namespace and step name"}, []string{"namespace", "step"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tasker_orchestration_task_duration_seconds",
			Help:    "Time from task creation to finalization, by namespace, template and final state",
			Buckets: taskDurationBuckets}, []string{"namespace", "template", "state"}),
		dlqEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasker_orchestration_dlq_entries_total",
			Help: "Dead-letter entries recorded, by reason (enqueued_timeout, message_archived, task_timeout, poison_message)"},
			[]string{"reason"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tasker_orchestration_leader",
			Help: "1 while this instance consumes the orchestration queues (leads), 0 while it stands by"}),
		http: NewHTTPMetrics("tasker_orchestration"),
		log:  log,
	}
	m.registry.MustRegister(m.tasksCreated, m.tasksFinalized, m.stepsEnqueued, m.resultsHandled, m.cycleDuration,
		m.stepRetries, m.taskDuration, m.dlqEntries, m.leader, m.http.Collector(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if depth != nil && queues != nil {
		m.registry.MustRegister(&queueDepthCollector{depth: depth, queues: queues, log: log,
			desc: prometheus.NewDesc("tasker_orchestration_queue_depth", "Messages in a queue", []string{"queue"}, nil)})
	}
	return m
}

// TaskCreated implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) TaskCreated(ns string) { m.tasksCreated.WithLabelValues(ns).Inc() }

// TaskFinalized implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) TaskFinalized(s domain.TaskState) {
	m.tasksFinalized.WithLabelValues(string(s)).Inc()
}

// StepsEnqueued implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) StepsEnqueued(ns string, n int) {
	m.stepsEnqueued.WithLabelValues(ns).Add(float64(n))
}

// ResultProcessed implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) ResultProcessed(queue, outcome string) {
	m.resultsHandled.WithLabelValues(queue, outcome).Inc()
}

// EnqueueCycle implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) EnqueueCycle(d time.Duration) { m.cycleDuration.Observe(d.Seconds()) }

// DeadLettered implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) DeadLettered(reason domain.DLQReason) {
	m.dlqEntries.WithLabelValues(string(reason)).Inc()
}

// StepRetried implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) StepRetried(ns, step string) {
	m.stepRetries.WithLabelValues(ns, step).Inc()
}

// TaskDuration implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) TaskDuration(ns, template string, state domain.TaskState, d time.Duration) {
	m.taskDuration.WithLabelValues(ns, template, string(state)).Observe(d.Seconds())
}

// Leader implements ports.OrchestrationMetrics.
func (m *OrchestrationMetrics) Leader(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	m.leader.Set(v)
}

// HTTP is the per-route request duration histogram of the API, fed by
// the web adapter's metrics middleware.
func (m *OrchestrationMetrics) HTTP() *HTTPMetrics { return m.http }

// Registry exposes the registry, e.g. to add process collectors.
func (m *OrchestrationMetrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the text exposition format with exactly
// the D-j content type. promhttp would negotiate other formats (and newer
// versions append an escaping parameter), which D-j rules out.
func (m *OrchestrationMetrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		families, err := m.registry.Gather()
		if err != nil {
			m.log.Warn("gather metrics", zap.Error(err))
		}
		w.Header().Set("Content-Type", PrometheusTextContentType)
		for _, f := range families {
			if _, err := expfmt.MetricFamilyToText(w, f); err != nil {
				m.log.Warn("write metrics", zap.Error(err))
				return
			}
		}
	})
}

// queueDepthCollector asks for queue depths at scrape time.
type queueDepthCollector struct {
	depth  QueueDepthFunc
	queues func() []string
	desc   *prometheus.Desc
	log    *zap.Logger
}

// Describe implements prometheus.Collector.
func (c *queueDepthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: one gauge per queue the depth
// function reports; nothing when it fails, so a scrape never shows stale depths.
func (c *queueDepthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	depths, err := c.depth(ctx, c.queues())
	if err != nil {
		c.log.Warn("queue depth", zap.Error(err))
		return
	}
	for q, n := range depths {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), q)
	}
}
