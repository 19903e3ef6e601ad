package orchestrationapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tasker-systems/tasker-go/ports"
)

// healthCheck is one entry of the readiness checks (§7.6).
type healthCheck struct {
	Status     string  `json:"status"`
	Message    *string `json:"message"`
	DurationMs int64   `json:"duration_ms"`
}

func isNotFound(err error) bool { return errors.Is(err, ports.ErrNotFound) }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (s *Server) health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok", "timestamp": now()})
}

func (s *Server) live(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "alive", "timestamp": now()})
}

// checks runs the readiness checks: the database answers and the
// orchestration loops are running and not shutting down.
func (s *Server) checks(ctx context.Context) (map[string]healthCheck, bool) {
	out := map[string]healthCheck{}
	ok := true
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := s.deps.DB.Ping(pctx)
	cancel()
	db := healthCheck{Status: "healthy", DurationMs: time.Since(start).Milliseconds()}
	if err != nil {
		msg := "database unreachable: " + err.Error()
		db.Status, db.Message, ok = "unhealthy", &msg, false
	}
	out["database"] = db
	loops := healthCheck{Status: "healthy"}
	if !s.deps.Tasks.Running() {
		msg := "orchestration loops are not running or the service is shutting down"
		loops.Status, loops.Message, ok = "unhealthy", &msg, false
	}
	out["orchestration"] = loops
	return out, ok
}

func (s *Server) ready(c *gin.Context) {
	checks, ok := s.checks(c.Request.Context())
	status, code := "ready", http.StatusOK
	if !ok {
		status, code = "not_ready", http.StatusServiceUnavailable
	}
	c.JSON(code, gin.H{"status": status, "timestamp": now(), "checks": checks})
}

func (s *Server) detailed(c *gin.Context) {
	checks, ok := s.checks(c.Request.Context())
	status, state := "healthy", "normal"
	if !ok {
		status, state = "unhealthy", "degraded"
	}
	if !s.deps.Tasks.Running() {
		state = "shutdown"
	}
	if s.deps.Leader != nil {
		checks["leadership"] = leadershipCheck(s.deps.Leader.Leading())
	}
	breaker := BreakerClosed // no breaker wired: every ping goes to the database
	if s.deps.Breaker != nil {
		breaker = s.deps.Breaker.BreakerState()
	}
	c.JSON(http.StatusOK, gin.H{"status": status, "timestamp": now(), "checks": checks, "info": gin.H{
		"version": s.cfg.Version, "environment": s.cfg.Environment, "operational_state": state,
		"web_database_pool_size": s.cfg.DBPoolSize, "orchestration_database_pool_size": s.cfg.DBPoolSize,
		"circuit_breaker_state": breaker,
	}})
}

// leadershipCheck tells whether this instance consumes the orchestration
// queues. Both answers are healthy: a standby serves the API and takes over
// when the leader goes away. It is a check entry, not an info field, because
// the checks map is open to new entries and the info object is not.
func leadershipCheck(leading bool) healthCheck {
	msg := "standby: another orchestration instance consumes the orchestration queues"
	if leading {
		msg = "leading: this instance consumes the orchestration queues"
	}
	return healthCheck{Status: "healthy", Message: &msg}
}
