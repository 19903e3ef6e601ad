package worker

import (
	"context"
	"fmt"
	"net/http"
	"sort"
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

// Queue depth thresholds of the queue_processing check (contract §8.2).
const (
	queueDegradedAt  = 10000
	queueUnhealthyAt = 50000
)

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
	s.loops.observe(s.clock.Now(), snap.LoopTicks, snap.IntakeSaturated)
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
		switch {
		case total >= queueUnhealthyAt:
			return StatusUnhealthy, fmt.Errorf("%d messages waiting in served queues", total)
		case total >= queueDegradedAt:
			return StatusDegraded, fmt.Errorf("%d messages waiting in served queues", total)
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

// loopWatcher remembers when each loop's tick count last moved.
type loopWatcher struct {
	mu   sync.Mutex
	seen map[string]loopSeen
}

type loopSeen struct {
	count   uint64
	changed time.Time
}

func newLoopWatcher() *loopWatcher { return &loopWatcher{seen: map[string]loopSeen{}} }

// observe records ticks at now. A loop seen for the first time counts as
// having just ticked: absence of history is not evidence of a wedge. With
// excused set (back-pressure) every loop counts as having just ticked, so
// the moment saturation ends is not mistaken for a long silence.
func (w *loopWatcher) observe(now time.Time, ticks map[string]uint64, excused bool) map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]time.Time, len(ticks))
	for name, n := range ticks {
		prev, ok := w.seen[name]
		if !ok || prev.count != n || excused {
			prev = loopSeen{count: n, changed: now}
			w.seen[name] = prev
		}
		out[name] = prev.changed
	}
	return out
}

// stalledLoops names the checked loops whose ticks have not moved within
// their threshold. Loops are exempt while intake is saturated: intake
// readers then wait for a free slot and the dispatcher for a free handler,
// which is back-pressure, not a wedge.
func (s *Server) stalledLoops(snap domain.WorkerStatus, liveness bool) []string {
	now := s.clock.Now()
	last := s.loops.observe(now, snap.LoopTicks, snap.IntakeSaturated)
	if snap.IntakeSaturated {
		return nil
	}
	var stalled []string
	for name, at := range last {
		limit := s.stallLimit(name, liveness)
		if limit > 0 && now.Sub(at) > limit {
			stalled = append(stalled, name)
		}
	}
	sort.Strings(stalled)
	return stalled
}

// stallLimit is how long loop name may go without a tick; 0 = unchecked.
// Liveness waits at least LivenessStallAfter: a restart is costly, and a
// read blocked for a few seconds on a slow database is not a wedge.
func (s *Server) stallLimit(name string, liveness bool) time.Duration {
	var limit time.Duration
	switch {
	case name == "dispatcher" && s.cfg.DispatcherStallAfter > 0:
		limit = s.cfg.DispatcherStallAfter
	case s.stallChecked(name):
		limit = 3 * s.cfg.PollInterval
	default:
		return 0
	}
	if liveness {
		limit = max(limit, s.cfg.LivenessStallAfter)
	}
	return limit
}

func (s *Server) stallChecked(name string) bool {
	for _, p := range s.cfg.StallCheckedLoops {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// commandProcessorCheck is healthy iff the pipeline and dispatcher run, no
// checked loop is wedged and the worker is not shutting down (D-i).
func (s *Server) commandProcessorCheck(snap domain.WorkerStatus) HealthCheck {
	start := s.clock.Now()
	var problems []string
	if snap.ShuttingDown {
		problems = append(problems, "worker is shutting down")
	}
	if !snap.PipelineRunning {
		problems = append(problems, "step pipeline is not running")
	}
	if !snap.DispatcherRunning {
		problems = append(problems, "event dispatcher is not running")
	}
	if stalled := s.stalledLoops(snap, false); len(stalled) > 0 {
		problems = append(problems, "loops not ticking: "+strings.Join(stalled, ", "))
	}
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

// handleLive fails only when the worker's loops cannot make progress: a
// checked loop is wedged, or the pipeline or dispatcher stopped although
// the worker is neither starting nor shutting down. A database outage is a
// readiness concern; restarting the process would not fix it.
func (s *Server) handleLive(c *gin.Context) {
	snap := s.deps.Status.Snapshot()
	checks := map[string]HealthCheck{}
	for _, name := range s.stalledLoops(snap, true) {
		msg := fmt.Sprintf("no tick within %s", s.stallLimit(name, true))
		checks[name] = HealthCheck{Status: StatusUnhealthy, Message: &msg, LastChecked: s.now()}
	}
	if snap.Started && !snap.ShuttingDown {
		for name, running := range map[string]bool{"pipeline": snap.PipelineRunning, "dispatcher": snap.DispatcherRunning} {
			if !running {
				msg := name + " stopped unexpectedly"
				checks[name] = HealthCheck{Status: StatusUnhealthy, Message: &msg, LastChecked: s.now()}
			}
		}
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
