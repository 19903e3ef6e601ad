package workerapi

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tasker-systems/tasker-go/domain"
)

// supportedMessageTypes is capabilities.supported_message_types (contract §8.2).
var supportedMessageTypes = []string{"SimpleStepMessage", "StepCompletionEvent"}

// Namespace health thresholds of /status/namespaces (contract §8.2).
const (
	namespaceWarningAt  = 100
	namespaceCriticalAt = 500
)

// handlerIndexTTL bounds how stale the (namespace, callable) → version map
// may be; templates change only at registration and refresh (which
// invalidates it), so a status poll need not list templates every time.
const handlerIndexTTL = 30 * time.Second

func lifecycle(snap domain.WorkerStatus) string {
	switch {
	case snap.ShuttingDown:
		return LifecycleStopping
	case !snap.Started || !snap.PipelineRunning:
		return LifecycleStarting
	}
	return LifecycleActive
}

func (s *Server) handleStatus(c *gin.Context) {
	snap := s.deps.Status.Snapshot()
	handlers, err := s.registeredHandlers(c.Request.Context(), snap)
	if err != nil {
		s.writeStoreError(c, "list registered handlers", err)
		return
	}
	checks := s.cachedChecks(c.Request.Context())
	var breaker *string
	if s.deps.Breaker != nil {
		st := s.deps.Breaker.BreakerState()
		breaker = &st
	}
	errs := make([]ErrorDetail, 0, len(snap.RecentErrors))
	for _, e := range snap.RecentErrors {
		errs = append(errs, ErrorDetail{Timestamp: e.At.UTC(), ErrorType: e.ErrorType, Message: e.Message, Namespace: e.Namespace, StepName: e.StepName})
	}
	c.JSON(http.StatusOK, WorkerStatusResponse{
		WorkerID: s.cfg.WorkerID, WorkerType: WorkerType, Status: lifecycle(snap), UptimeSeconds: s.uptimeSeconds(),
		Configuration: StatusConfiguration{
			Environment: s.cfg.Environment, DatabaseConnected: checks.database.Status == StatusHealthy,
			EventSystemEnabled: true, CommandBufferSize: s.cfg.CommandBufferSize, SupportedNamespaces: s.namespaces(),
			CircuitBreakerState: breaker,
		},
		Capabilities: Capabilities{
			CanProcessSteps: snap.PipelineRunning && snap.DispatcherRunning && !snap.ShuttingDown,
			// Handlers create tasks through the orchestration client (StepContext.CreateTask).
			CanInitializeTasks:     s.deps.Breaker != nil,
			EventPublishingEnabled: false, HealthMonitoringEnabled: true, SupportedMessageTypes: supportedMessageTypes,
		},
		PerformanceMetrics: PerformanceMetrics{
			StepsProcessedTotal: snap.Processed, StepsProcessedSuccess: snap.Succeeded, StepsProcessedFailed: snap.Failed,
			AverageProcessingTimeMs: snap.AverageDurationMs, QueueProcessingRate: snap.RatePerSecond,
			LastStepProcessed: utcPtr(snap.LastProcessedAt), ErrorDetails: errs,
		},
		RegisteredHandlers: handlers,
	})
}

func (s *Server) handleNamespaces(c *gin.Context) {
	snap := s.deps.Status.Snapshot()
	checks := s.freshChecks(c.Request.Context())
	rates := s.rates.observe(s.clock.Now(), snap.Namespaces)
	out := make([]NamespaceHealth, 0, len(s.cfg.Namespaces))
	for _, ns := range s.cfg.Namespaces {
		st := snap.Namespaces[ns]
		rate := st.RatePerSecond
		if rate == 0 {
			rate = rates[ns]
		}
		active := uint64(0)
		if st.Active > 0 {
			active = uint64(st.Active)
		}
		if active == 0 && len(s.cfg.Namespaces) == 1 && snap.InFlight > 0 {
			active = uint64(snap.InFlight) // one namespace: every step in flight is its own
		}
		nh := NamespaceHealth{Namespace: ns, ProcessingRate: rate, ActiveSteps: active, LastProcessed: utcPtr(st.LastProcessed)}
		depth, ok := checks.depths[ns]
		switch {
		case !ok:
			nh.HealthStatus = "unknown"
		case depth < namespaceWarningAt:
			nh.HealthStatus, nh.QueueDepth = StatusHealthy, uint64(depth)
		case depth < namespaceCriticalAt:
			nh.HealthStatus, nh.QueueDepth = "warning", uint64(depth)
		default:
			nh.HealthStatus, nh.QueueDepth = "critical", uint64(depth)
		}
		out = append(out, nh)
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) handleHandlers(c *gin.Context) {
	handlers, err := s.registeredHandlers(c.Request.Context(), s.deps.Status.Snapshot())
	if err != nil {
		s.writeStoreError(c, "list registered handlers", err)
		return
	}
	c.JSON(http.StatusOK, handlers)
}

// registeredHandlers lists one entry per (namespace, callable) where a
// served namespace's template uses a callable that has a Go handler,
// joined with the pipeline's outcome counts (contract §8.2).
func (s *Server) registeredHandlers(ctx context.Context, snap domain.WorkerStatus) ([]RegisteredHandler, error) {
	idx, err := s.handlers.get(ctx, s)
	if err != nil {
		return nil, err
	}
	stats := make(map[[2]string]domain.WorkerHandlerStats, len(snap.Handlers))
	for _, h := range snap.Handlers {
		stats[[2]string{h.Namespace, h.Callable}] = h
	}
	out := make([]RegisteredHandler, 0, len(idx))
	for _, e := range idx {
		st := stats[[2]string{e.namespace, e.callable}]
		out = append(out, RegisteredHandler{Namespace: e.namespace, HandlerClass: e.callable, Version: e.version,
			LastUsed: utcPtr(st.LastUsed), SuccessCount: st.Success, FailureCount: st.Failure})
	}
	return out, nil
}

type handlerEntry struct{ namespace, callable, version string }

// handlerIndex caches the (namespace, callable) pairs of registered handlers.
type handlerIndex struct {
	mu      sync.Mutex
	ttl     time.Duration
	built   time.Time
	valid   bool
	entries []handlerEntry
}

func (h *handlerIndex) invalidate() {
	h.mu.Lock()
	h.valid = false
	h.mu.Unlock()
}

func (h *handlerIndex) get(ctx context.Context, s *Server) ([]handlerEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.valid && s.clock.Now().Sub(h.built) < h.ttl {
		return h.entries, nil
	}
	registered := map[string]bool{}
	for _, cb := range s.deps.Handlers.Callables() {
		registered[cb] = true
	}
	seen := map[[2]string]bool{}
	var entries []handlerEntry
	for _, ns := range s.cfg.Namespaces {
		ts, err := s.deps.Templates.ListTemplates(ctx, ns)
		if err != nil {
			return nil, err
		}
		sort.Slice(ts, func(i, j int) bool {
			if ts[i].Name != ts[j].Name {
				return ts[i].Name < ts[j].Name
			}
			return ts[i].Version < ts[j].Version
		})
		for _, t := range ts {
			tmpl, err := domain.ParseTemplateJSON(t.Configuration)
			if err != nil {
				continue // a template without usable configuration names no handlers
			}
			for _, st := range tmpl.Steps {
				k := [2]string{ns, st.Handler.Callable}
				if !registered[st.Handler.Callable] || seen[k] {
					continue
				}
				seen[k] = true
				entries = append(entries, handlerEntry{namespace: ns, callable: st.Handler.Callable, version: t.Version})
			}
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].namespace != entries[j].namespace {
			return entries[i].namespace < entries[j].namespace
		}
		return entries[i].callable < entries[j].callable
	})
	h.entries, h.built, h.valid = entries, s.clock.Now(), true
	return entries, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
