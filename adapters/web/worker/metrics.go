package worker

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/ports"
)

// handleWorkerMetrics is the JSON view of the main gauges (contract §8.2
// MetricsResponse). It reads the cached queue checks, like readiness.
func (s *Server) handleWorkerMetrics(c *gin.Context) {
	checks := s.cachedChecks(c.Request.Context())
	m := map[string]MetricValue{
		"uptime_seconds": {Value: float64(s.uptimeSeconds()), MetricType: "counter", Labels: map[string]string{},
			Help: "Worker uptime in seconds"},
		"database_pool_size": {Value: float64(s.deps.DB.Stats().OpenConnections), MetricType: "gauge", Labels: map[string]string{},
			Help: "Database connection pool size"},
	}
	for _, ns := range s.cfg.Namespaces {
		depth, ok := checks.depths[ns]
		if !ok {
			continue
		}
		labels := map[string]string{"namespace": ns}
		m["queue_depth_"+ns] = MetricValue{Value: float64(depth), MetricType: "gauge", Labels: labels, Help: "Queue depth per namespace"}
		if age, ok := checks.oldest[ns]; ok {
			m["queue_oldest_message_age_"+ns] = MetricValue{Value: float64(age), MetricType: "gauge",
				Labels: map[string]string{"namespace": ns}, Help: "Age of oldest message in queue"}
		}
	}
	c.JSON(http.StatusOK, MetricsResponse{Metrics: m, Timestamp: s.now(), WorkerID: s.cfg.WorkerID})
}

// MetricsSources builds the scrape-time sources of the worker's Prometheus
// registry from the same collaborators the server uses, so /metrics,
// /metrics/worker and /status report one truth. The composition root
// passes the result to telemetry.NewWorkerMetrics.
func MetricsSources(db Database, queues QueueMetricsReader, status StatusProvider, namespaces []string) telemetry.WorkerSources {
	served := append([]string(nil), namespaces...)
	return telemetry.WorkerSources{
		DBStats: db.Stats,
		QueueMetrics: func(ctx context.Context) []ports.QueueMetrics {
			out := make([]ports.QueueMetrics, 0, len(served))
			for _, ns := range served {
				if m, err := queues.Metrics(ctx, ns+"_queue"); err == nil {
					out = append(out, m)
				}
			}
			return out
		},
		Runtime: func() telemetry.WorkerRuntime { return runtimeOf(status.Snapshot()) },
	}
}

func runtimeOf(snap Snapshot) telemetry.WorkerRuntime {
	rt := telemetry.WorkerRuntime{InFlight: snap.InFlight, CommandQueueDepth: snap.CommandQueueDepth,
		PoisonArchived: snap.PoisonArchived, Namespaces: make(map[string]telemetry.NamespaceOutcomes, len(snap.Namespaces))}
	for ns, st := range snap.Namespaces {
		rt.Namespaces[ns] = telemetry.NamespaceOutcomes{Success: st.Succeeded, Failure: st.Failed}
	}
	for _, h := range snap.Handlers {
		rt.Handlers = append(rt.Handlers, telemetry.HandlerOutcomes{Namespace: h.Namespace, Handler: h.Callable, Success: h.Success, Failure: h.Failure})
	}
	return rt
}
