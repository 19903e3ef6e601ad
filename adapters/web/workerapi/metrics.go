package workerapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
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
