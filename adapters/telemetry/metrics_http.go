package telemetry

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UnmatchedRoute labels requests that matched no route, so probing scanners
// cannot blow up the label cardinality with arbitrary paths.
const UnmatchedRoute = "unmatched"

// httpDurationBuckets cover a health probe (sub-millisecond) to a request
// that hits the 30 s request timeout.
var httpDurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// HTTPMetrics is the per-route request duration histogram of one HTTP API
// (<prefix>_http_request_duration_seconds{method, route, status}). The
// route is the route template (/v1/tasks/:task_uuid), never the raw path.
type HTTPMetrics struct {
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics builds the histogram; register Collector() on a registry.
func NewHTTPMetrics(prefix string) *HTTPMetrics {
	return &HTTPMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    prefix + "_http_request_duration_seconds",
		Help:    "HTTP request duration, by method, route template and status code",
		Buckets: httpDurationBuckets,
	}, []string{"method", "route", "status"})}
}

// Collector is the histogram, for registration.
func (h *HTTPMetrics) Collector() prometheus.Collector { return h.duration }

// Observe records one request. An empty route counts as UnmatchedRoute.
func (h *HTTPMetrics) Observe(method, route string, status int, d time.Duration) {
	if route == "" {
		route = UnmatchedRoute
	}
	h.duration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}
