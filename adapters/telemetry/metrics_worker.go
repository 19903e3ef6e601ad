package telemetry

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// MetricsContentType is the Content-Type of /metrics (contract D-j): the
// Prometheus text format 0.0.4, without the escaping parameter newer
// negotiation adds, so scrapers and the contract agree byte for byte.
const MetricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// DefaultScrapeTimeout bounds the database reads one scrape makes (queue
// depths), so a slow database cannot pile up scrapes.
const DefaultScrapeTimeout = 2 * time.Second

// Step outcome label values of tasker_worker_steps_total (contract §8.3).
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// WorkerInfo labels tasker_worker_info (contract §8.3).
type WorkerInfo struct {
	Version    string
	WorkerID   string
	WorkerType string
}

// WorkerSources are read at scrape time. Any may be nil; the families they
// feed are then omitted rather than reported as zero, because a fake zero
// (e.g. queue depth 0 when the database is down) would mislead alerting.
type WorkerSources struct {
	// DBStats reports the database/sql pool (a *sqlx.DB's Stats method).
	DBStats func() sql.DBStats
	// QueueMetrics reports pgmq.metrics of every served queue; a queue whose
	// metrics failed is left out.
	QueueMetrics func(ctx context.Context) []ports.QueueMetrics
	// Runtime reports the worker's status (domain.WorkerStatus, the one
	// model /status and /health render too, so the numbers can never
	// disagree); its counts are cumulative since start and exposed as
	// counters.
	Runtime func() domain.WorkerStatus
}

// QueueMetricsReader reads pgmq.metrics of one queue; ports.Queue satisfies it.
type QueueMetricsReader interface {
	Metrics(ctx context.Context, queue string) (ports.QueueMetrics, error)
}

// ServedQueueMetrics is a WorkerSources.QueueMetrics reading the
// "<namespace>_queue" of every served namespace; a queue whose metrics
// failed is left out of that scrape.
func ServedQueueMetrics(queues QueueMetricsReader, namespaces []string) func(ctx context.Context) []ports.QueueMetrics {
	served := append([]string(nil), namespaces...)
	return func(ctx context.Context) []ports.QueueMetrics {
		out := make([]ports.QueueMetrics, 0, len(served))
		for _, ns := range served {
			if m, err := queues.Metrics(ctx, ns+"_queue"); err == nil {
				out = append(out, m)
			}
		}
		return out
	}
}

// WorkerMetrics owns the worker's Prometheus registry: info, uptime, pool,
// queue and step families, Go runtime and process collectors. Scrape-time
// families read WorkerSources; event and claim families are fed by the
// Instrument* decorators, so the worker's application code needs no
// metrics calls of its own.
type WorkerMetrics struct {
	reg   *prometheus.Registry
	start time.Time
	now   func() time.Time

	claimed       *prometheus.CounterVec
	published     *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	stepDuration  *prometheus.HistogramVec
	claimDuration *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	http          *HTTPMetrics
}

// Bucket layouts: step handlers range from sub-millisecond no-ops to the
// five-minute claim timeout; claims are a single short transaction.
var (
	stepDurationBuckets  = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	claimDurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
)

// NewWorkerMetrics builds the registry with every worker family registered.
func NewWorkerMetrics(info WorkerInfo, src WorkerSources) (*WorkerMetrics, error) {
	m := &WorkerMetrics{reg: prometheus.NewRegistry(), start: time.Now(), now: time.Now}
	m.claimed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tasker_worker_steps_claimed_total",
		Help: "Steps claimed and handed to a handler, by namespace and handler callable",
	}, []string{"namespace", "handler"})
	m.published = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tasker_worker_event_bus_published_total",
		Help: "Events published on the in-process event bus, by event kind",
	}, []string{"event"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tasker_worker_event_bus_dropped_total",
		Help: "Events that could not be published on the event bus (shutdown or cancelled), by event kind",
	}, []string{"event"})
	m.stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tasker_worker_step_duration_seconds",
		Help:    "Handler execution time of finished steps, by namespace, template (task name) and outcome",
		Buckets: stepDurationBuckets,
	}, []string{"namespace", "template", "outcome"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tasker_worker_step_retries_total",
		Help: "Claimed steps that are a retry (second or later attempt), by namespace and step name",
	}, []string{"namespace", "step"})
	m.http = NewHTTPMetrics("tasker_worker")
	m.claimDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tasker_worker_claim_duration_seconds",
		Help:    "Time taken by the atomic step claim transaction, by result (claimed, not_claimable, error)",
		Buckets: claimDurationBuckets,
	}, []string{"result"})

	infoGauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tasker_worker_info", Help: "Worker information",
	}, []string{"version", "worker_id", "worker_type"})
	infoGauge.WithLabelValues(info.Version, info.WorkerID, info.WorkerType).Set(1)
	// A gauge, not a counter: promlint requires counters to end in _total
	// and the contract's name has no suffix; a gauge keeps the name.
	uptime := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tasker_worker_uptime_seconds", Help: "Worker uptime in seconds",
	}, func() float64 { return m.now().Sub(m.start).Seconds() })

	cs := []prometheus.Collector{
		infoGauge, uptime, m.claimed, m.published, m.dropped, m.stepDuration, m.claimDuration,
		m.retries, m.http.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrapeCollector{src: src, timeout: DefaultScrapeTimeout},
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register worker metrics: %w", err)
		}
	}
	return m, nil
}

// Registry is the registry behind /metrics, for tests and extra collectors.
func (m *WorkerMetrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format with exactly
// the contract's Content-Type (D-j). It encodes with expfmt rather than
// promhttp's negotiation, which may append an escaping parameter or switch
// to protobuf; one HELP/TYPE per family is guaranteed by the registry.
func (m *WorkerMetrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		families, err := m.reg.Gather()
		if err != nil && len(families) == 0 {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", MetricsContentType)
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range families {
			if err := enc.Encode(mf); err != nil {
				return // the client went away mid-write; nothing else to do
			}
		}
	})
}

// HTTP is the per-route request duration histogram of the worker API.
func (m *WorkerMetrics) HTTP() *HTTPMetrics { return m.http }

// ObserveClaim records one claim attempt's duration. result is "claimed",
// "not_claimable" or "error".
func (m *WorkerMetrics) ObserveClaim(result string, d time.Duration) {
	m.claimDuration.WithLabelValues(result).Observe(d.Seconds())
}

// scrapeCollector computes the families read from WorkerSources at scrape time.
type scrapeCollector struct {
	src     WorkerSources
	timeout time.Duration
}

var (
	descPoolSize    = prometheus.NewDesc("tasker_worker_db_pool_size", "Database connection pool size", nil, nil)
	descPoolMax     = prometheus.NewDesc("tasker_worker_db_pool_max_open", "Configured maximum open database connections", nil, nil)
	descPoolInUse   = prometheus.NewDesc("tasker_worker_db_pool_in_use", "Database connections currently in use", nil, nil)
	descPoolIdle    = prometheus.NewDesc("tasker_worker_db_pool_idle", "Idle database connections", nil, nil)
	descPoolWaits   = prometheus.NewDesc("tasker_worker_db_pool_wait_count_total", "Times a caller waited for a free database connection", nil, nil)
	descPoolWaitDur = prometheus.NewDesc("tasker_worker_db_pool_wait_seconds_total", "Total time callers waited for a free database connection", nil, nil)
	descQueueDepth  = prometheus.NewDesc("tasker_worker_queue_depth", "Queue depth per namespace", []string{"namespace"}, nil)
	descQueueAge    = prometheus.NewDesc("tasker_worker_queue_oldest_message_age_seconds",
		"Age of oldest message in queue (omitted when the queue is empty)", []string{"namespace"}, nil)
	descStepsTotal = prometheus.NewDesc("tasker_worker_steps_total", "Steps finished", []string{"namespace", "outcome"}, nil)
	descCompleted  = prometheus.NewDesc("tasker_worker_steps_completed_total", "Steps completed successfully, by namespace and handler callable", []string{"namespace", "handler"}, nil)
	descFailed     = prometheus.NewDesc("tasker_worker_steps_failed_total", "Steps failed, by namespace and handler callable", []string{"namespace", "handler"}, nil)
	descInFlight   = prometheus.NewDesc("tasker_worker_steps_in_flight", "Handlers currently running", nil, nil)
	descCmdDepth   = prometheus.NewDesc("tasker_worker_command_queue_depth", "Commands waiting in the worker's command channel", nil, nil)
	descPoison     = prometheus.NewDesc("tasker_worker_poison_messages_archived_total", "Unparseable step messages archived", nil, nil)
	scrapeDescs    = []*prometheus.Desc{descPoolSize, descPoolMax, descPoolInUse, descPoolIdle, descPoolWaits, descPoolWaitDur,
		descQueueDepth, descQueueAge, descStepsTotal, descCompleted, descFailed, descInFlight, descCmdDepth, descPoison}
)

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range scrapeDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.DBStats != nil {
		s := c.src.DBStats()
		ch <- prometheus.MustNewConstMetric(descPoolSize, prometheus.GaugeValue, float64(s.OpenConnections))
		ch <- prometheus.MustNewConstMetric(descPoolMax, prometheus.GaugeValue, float64(s.MaxOpenConnections))
		ch <- prometheus.MustNewConstMetric(descPoolInUse, prometheus.GaugeValue, float64(s.InUse))
		ch <- prometheus.MustNewConstMetric(descPoolIdle, prometheus.GaugeValue, float64(s.Idle))
		ch <- prometheus.MustNewConstMetric(descPoolWaits, prometheus.CounterValue, float64(s.WaitCount))
		ch <- prometheus.MustNewConstMetric(descPoolWaitDur, prometheus.CounterValue, s.WaitDuration.Seconds())
	}
	if c.src.QueueMetrics != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		qs := c.src.QueueMetrics(ctx)
		cancel()
		for _, q := range qs {
			ns := QueueNamespace(q.QueueName)
			ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(q.QueueLength), ns)
			if q.QueueLength > 0 && q.OldestMsgAgeSec != nil {
				ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, float64(*q.OldestMsgAgeSec), ns)
			}
		}
	}
	if c.src.Runtime != nil {
		rt := c.src.Runtime()
		for ns, o := range rt.Namespaces {
			ch <- prometheus.MustNewConstMetric(descStepsTotal, prometheus.CounterValue, float64(o.Succeeded), ns, OutcomeSuccess)
			ch <- prometheus.MustNewConstMetric(descStepsTotal, prometheus.CounterValue, float64(o.Failed), ns, OutcomeFailure)
		}
		for _, h := range rt.Handlers {
			ch <- prometheus.MustNewConstMetric(descCompleted, prometheus.CounterValue, float64(h.Success), h.Namespace, h.Callable)
			ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(h.Failure), h.Namespace, h.Callable)
		}
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(rt.InFlight))
		ch <- prometheus.MustNewConstMetric(descCmdDepth, prometheus.GaugeValue, float64(rt.CommandQueueDepth))
		ch <- prometheus.MustNewConstMetric(descPoison, prometheus.CounterValue, float64(rt.PoisonArchived))
	}
}

// QueueNamespace is the namespace a worker queue serves ("<ns>_queue" → ns);
// any other name is returned unchanged.
func QueueNamespace(queue string) string {
	const suffix = "_queue"
	if len(queue) > len(suffix) && queue[len(queue)-len(suffix):] == suffix {
		return queue[:len(queue)-len(suffix)]
	}
	return queue
}
