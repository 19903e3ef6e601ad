package workerapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/tasker-systems/tasker-go/domain"
)

// Readiness check names (contract §8.2).
const (
	CheckDatabase         = "database"
	CheckCommandProcessor = "command_processor"
	CheckQueueProcessing  = "queue_processing"
)

// HealthPolicy judges the worker's status for the probes; the server runs
// the database and queue checks and renders the verdicts, it decides
// nothing itself (app/worker/health.Policy implements it).
type HealthPolicy interface {
	// Observe records st's loop ticks at now (the background monitor calls
	// it so that silences are measured between probes too).
	Observe(now time.Time, st domain.WorkerStatus) map[string]time.Time
	// ReadinessProblems says why the worker cannot take steps (none: ready).
	ReadinessProblems(now time.Time, st domain.WorkerStatus) []string
	// LivenessProblems maps each loop that cannot make progress to why.
	LivenessProblems(now time.Time, st domain.WorkerStatus) map[string]string
	// QueueDepth judges the total depth of the served queues.
	QueueDepth(total int64) (domain.CheckLevel, string)
}

// healthState caches the results of the database and queue checks, which
// need the database and are refreshed in the background.
type healthState struct {
	mu       sync.Mutex
	checked  bool
	at       time.Time
	database HealthCheck
	queues   HealthCheck
	depths   map[string]int64 // namespace → queue_length; absent if its metrics failed
	oldest   map[string]int   // namespace → oldest message age, only for non-empty queues
	// refresh serialises check rounds so a burst of stale reads runs one round.
	refresh sync.Mutex
	// rounds counts check rounds begun; freshChecks uses it to share a
	// round that began after its probe arrived.
	rounds atomic.Uint64
}

type checkResults struct {
	database HealthCheck
	queues   HealthCheck
	depths   map[string]int64
	oldest   map[string]int
}

func (h *healthState) get() (checkResults, time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return checkResults{h.database, h.queues, h.depths, h.oldest}, h.at, h.checked
}

// RefreshChecks runs the database and queue checks now and caches them.
// The background monitor calls it every HealthCheckInterval; tests call it
// to avoid waiting.
func (s *Server) RefreshChecks(ctx context.Context) {
	s.health.refresh.Lock()
	defer s.health.refresh.Unlock()
	s.runChecks(ctx)
	snap := s.deps.Status.Snapshot()
	s.deps.Health.Observe(s.clock.Now(), snap)
	s.rates.observe(s.clock.Now(), snap.Namespaces)
}

func (s *Server) runChecks(ctx context.Context) {
	s.health.rounds.Add(1)
	res := checkResults{depths: map[string]int64{}, oldest: map[string]int{}}
	res.database = s.timedCheck(ctx, func(ctx context.Context) (string, error) {
		_, err := s.deps.DB.ExecContext(ctx, "SELECT 1")
		return "", err
	})
	res.queues = s.timedCheck(ctx, func(ctx context.Context) (string, error) {
		var total int64
		var failed []string
		for _, ns := range s.cfg.Namespaces {
			m, err := s.deps.Queues.Metrics(ctx, ns+"_queue")
			if err != nil {
				failed = append(failed, ns)
				continue
			}
			res.depths[ns] = m.QueueLength
			if m.QueueLength > 0 && m.OldestMsgAgeSec != nil {
				res.oldest[ns] = *m.OldestMsgAgeSec
			}
			total += m.QueueLength
		}
		if len(failed) > 0 {
			return "", fmt.Errorf("queue metrics failed for %s", strings.Join(failed, ", "))
		}
		if level, reason := s.deps.Health.QueueDepth(total); level != domain.CheckHealthy {
			return string(level), errors.New(reason)
		}
		return "", nil
	})
	s.health.mu.Lock()
	s.health.checked = true
	s.health.at = s.clock.Now()
	s.health.database, s.health.queues = res.database, res.queues
	s.health.depths, s.health.oldest = res.depths, res.oldest
	s.health.mu.Unlock()
}

// timedCheck runs fn with DefaultCheckTimeout. fn returns an explicit
// status with a reason, or "" and an error (unhealthy) or nil (healthy).
func (s *Server) timedCheck(ctx context.Context, fn func(context.Context) (string, error)) HealthCheck {
	start := s.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, DefaultCheckTimeout)
	defer cancel()
	status, err := fn(cctx)
	hc := HealthCheck{Status: StatusHealthy, LastChecked: s.now(), DurationMs: uint64(s.clock.Now().Sub(start) / time.Millisecond)}
	if err != nil {
		msg := err.Error()
		hc.Message = &msg
		hc.Status = StatusUnhealthy
	}
	if status != "" {
		hc.Status = status
	}
	return hc
}

// cachedChecks returns the background results, or runs a round inline when
// none is fresh (monitor not running yet, or stuck): a result older than
// two intervals is not evidence of anything.
func (s *Server) cachedChecks(ctx context.Context) checkResults {
	res, at, ok := s.health.get()
	if ok && s.clock.Now().Sub(at) <= 2*s.cfg.HealthCheckInterval {
		return res
	}
	s.health.refresh.Lock()
	defer s.health.refresh.Unlock()
	if res, at, ok = s.health.get(); ok && s.clock.Now().Sub(at) <= 2*s.cfg.HealthCheckInterval {
		return res
	}
	s.runChecks(ctx)
	res, _, _ = s.health.get()
	return res
}

// freshChecks runs the database and queue checks for this probe, each
// bounded by DefaultCheckTimeout, so readiness and /status/namespaces
// reflect the database as it is now: a cached result said "ready" for
// seconds after the database went away, and "not ready" for seconds after
// it came back (issue 13). Probes arriving together share one round: a
// caller that waited for a round which began after it arrived uses that
// round's result instead of starting another.
func (s *Server) freshChecks(ctx context.Context) checkResults {
	arrived := s.health.rounds.Load()
	s.health.refresh.Lock()
	defer s.health.refresh.Unlock()
	if s.health.rounds.Load() > arrived {
		if res, _, ok := s.health.get(); ok {
			return res
		}
	}
	s.runChecks(ctx)
	res, _, _ := s.health.get()
	return res
}

// commandProcessorCheck renders the policy's readiness verdict (D-i).
func (s *Server) commandProcessorCheck(snap domain.WorkerStatus) HealthCheck {
	start := s.clock.Now()
	problems := s.deps.Health.ReadinessProblems(start, snap)
	hc := HealthCheck{Status: StatusHealthy, LastChecked: s.now(), DurationMs: uint64(s.clock.Now().Sub(start) / time.Millisecond)}
	if len(problems) > 0 {
		msg := strings.Join(problems, "; ")
		hc.Status, hc.Message = StatusUnhealthy, &msg
	}
	return hc
}

func (s *Server) handleHealth(c *gin.Context) {
	c.JSON(http.StatusOK, BasicHealthResponse{Status: "ok", Timestamp: s.now(), WorkerID: s.cfg.WorkerID})
}

func (s *Server) handleReady(c *gin.Context) {
	snap := s.deps.Status.Snapshot()
	res := s.freshChecks(c.Request.Context())
	cp := s.commandProcessorCheck(snap)
	checks := map[string]HealthCheck{CheckDatabase: res.database, CheckCommandProcessor: cp, CheckQueueProcessing: res.queues}
	failing := map[string]HealthCheck{}
	for _, name := range []string{CheckDatabase, CheckCommandProcessor} {
		if checks[name].Status != StatusHealthy {
			failing[name] = checks[name]
		}
	}
	if len(failing) > 0 {
		s.writeErrorChecks(c, http.StatusServiceUnavailable, CodeServiceUnavailable, "Worker is not ready to process steps", failing)
		return
	}
	c.JSON(http.StatusOK, DetailedHealthResponse{
		Status: "ready", Timestamp: s.now(), WorkerID: s.cfg.WorkerID, Checks: checks,
		SystemInfo: SystemInfo{
			Version: s.cfg.Version, Environment: s.cfg.Environment, UptimeSeconds: s.uptimeSeconds(),
			WorkerType: WorkerType, DatabasePoolSize: uint32(max(0, s.deps.DB.Stats().OpenConnections)),
			CommandProcessorActive: cp.Status == StatusHealthy, SupportedNamespaces: s.namespaces(),
		},
	})
}

// handleLive renders the policy's liveness verdict: it fails only when the
// worker's loops cannot make progress, never for a database outage.
func (s *Server) handleLive(c *gin.Context) {
	snap := s.deps.Status.Snapshot()
	checks := map[string]HealthCheck{}
	for name, msg := range s.deps.Health.LivenessProblems(s.clock.Now(), snap) {
		checks[name] = HealthCheck{Status: StatusUnhealthy, Message: &msg, LastChecked: s.now()}
	}
	if len(checks) > 0 {
		s.writeErrorChecks(c, http.StatusServiceUnavailable, CodeServiceUnavailable, "Worker loops are not making progress", checks)
		return
	}
	c.JSON(http.StatusOK, BasicHealthResponse{Status: "alive", Timestamp: s.now(), WorkerID: s.cfg.WorkerID})
}

// namespaces returns a copy of the served namespaces (never null in JSON).
func (s *Server) namespaces() []string {
	return append(make([]string, 0, len(s.cfg.Namespaces)), s.cfg.Namespaces...)
}
