package workerapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/adapters/web/webserver"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults of the server's tunables (contract §8, config worker_web).
const (
	DefaultRequestTimeout      = 30 * time.Second
	DefaultHealthCheckInterval = 10 * time.Second
	DefaultCommandBufferSize   = 1000
	DefaultShutdownTimeout     = 10 * time.Second
	// DefaultCheckTimeout bounds one database or queue check, so a hung
	// database makes readiness fail instead of hanging the probe.
	DefaultCheckTimeout = 2 * time.Second
	// WorkerType is the contract's fixed worker_type.
	WorkerType = "command_processor"
)

// Config configures the worker API. Zero values select the defaults.
type Config struct {
	// WorkerID is "worker-<uuid v7>" (contract §8).
	WorkerID string
	// Version is reported in system_info and tasker_worker_info.
	Version string
	// Environment is the resolved environment; templates are resolved for it (D-q).
	Environment string
	// Namespaces are the served namespaces (supported_namespaces).
	Namespaces []string
	// BindAddress is host:port for ListenAndServe.
	BindAddress string
	// RequestTimeout answers 408 after this long.
	RequestTimeout time.Duration
	// AuthEnabled requires a bearer token from Tokens on every route
	// except /health*.
	AuthEnabled bool
	// Tokens are the accepted bearer tokens.
	Tokens []string
	// CORSEnabled answers CORS for CORSAllowedOrigins.
	CORSEnabled bool
	// CORSAllowedOrigins are the origins answered with CORS headers ("*"
	// for any); empty (the default) allows no cross-origin browser access.
	CORSAllowedOrigins []string
	// Verifier, when set with AuthEnabled, also accepts bearer JWTs whose
	// permissions are enforced per route (RoutePermissions) and whose
	// worker_namespaces per template namespace. Static Tokens grant all.
	Verifier middleware.TokenVerifier
	// MetricsEnabled serves /metrics and /metrics/worker.
	MetricsEnabled bool
	// HealthCheckInterval is how often the database and queue checks are
	// refreshed in the background; probes read the cached result.
	HealthCheckInterval time.Duration
	// CommandBufferSize is reported in the status configuration.
	CommandBufferSize int
	// TemplateCacheTTL and TemplateCacheSize bound the template cache
	// (contract: 300 s, 1000 entries).
	TemplateCacheTTL  time.Duration
	TemplateCacheSize int
	// ShutdownTimeout bounds draining in-flight requests on stop.
	ShutdownTimeout time.Duration
	// MaxInFlight caps requests served at once; beyond it requests get 503
	// with Retry-After (health probes excepted). 0 selects
	// middleware.DefaultMaxInFlight, negative disables the cap.
	MaxInFlight int
	// HTTP bounds connections (timeouts, header size) in Serve.
	HTTP webserver.Config
}

func (c *Config) applyDefaults() {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.HealthCheckInterval <= 0 {
		c.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if c.CommandBufferSize <= 0 {
		c.CommandBufferSize = DefaultCommandBufferSize
	}
	if c.TemplateCacheTTL <= 0 {
		c.TemplateCacheTTL = DefaultTemplateCacheTTL
	}
	if c.TemplateCacheSize <= 0 {
		c.TemplateCacheSize = DefaultTemplateCacheSize
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = middleware.DefaultMaxInFlight
	}
	c.Namespaces = append([]string(nil), c.Namespaces...)
	sort.Strings(c.Namespaces)
}

// Deps are the server's collaborators. Status, Health, Templates,
// Handlers, DB and Queues are required; Metrics is required when
// MetricsEnabled.
type Deps struct {
	Status StatusProvider
	// Health judges Status for the probes (app/worker/health.Policy).
	Health    HealthPolicy
	Templates TemplateCatalog
	Handlers  HandlerRegistry
	DB        Database
	Queues    QueueMetricsReader
	// Metrics serves /metrics (telemetry.WorkerMetrics.Handler).
	Metrics http.Handler
	// ObserveRequest, when set, records every request's duration by route
	// (telemetry.HTTPMetrics.Observe).
	ObserveRequest middleware.RequestObserver
	// Breaker is optional: the OrchestrationAPI client, whose circuit
	// breaker state /status reports (null when not wired).
	Breaker BreakerReporter
	Logger  *zap.Logger
	Clock   ports.Clock
}

// Server is the worker HTTP API. Handler serves requests; Serve also runs
// the background health checks for as long as it serves.
type Server struct {
	cfg      Config
	deps     Deps
	log      *zap.Logger
	clock    ports.Clock
	started  time.Time
	engine   *gin.Engine
	health   *healthState
	cache    *templateCache
	handlers *handlerIndex
	rates    *rateTracker
}

// New validates deps and builds the gin engine with every route.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg.applyDefaults()
	if deps.Status == nil || deps.Health == nil || deps.Templates == nil || deps.Handlers == nil || deps.DB == nil || deps.Queues == nil {
		return nil, errors.New("worker web: Status, Health, Templates, Handlers, DB and Queues are required")
	}
	if cfg.MetricsEnabled && deps.Metrics == nil {
		return nil, errors.New("worker web: Metrics handler is required when metrics are enabled")
	}
	if cfg.AuthEnabled && len(cfg.Tokens) == 0 && cfg.Verifier == nil {
		return nil, errors.New("worker web: authentication enabled without tokens")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Clock == nil {
		deps.Clock = ports.SystemClock{}
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, clock: deps.Clock}
	s.started = s.clock.Now()
	s.health = &healthState{}
	s.cache = newTemplateCache(cfg.TemplateCacheSize, cfg.TemplateCacheTTL, s.clock.Now)
	s.handlers = &handlerIndex{ttl: handlerIndexTTL}
	s.rates = newRateTracker()
	s.engine = s.routes()
	return s, nil
}

// Handler is the gin engine, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.engine }

// Engine exposes the gin engine, e.g. to enumerate routes.
func (s *Server) Engine() *gin.Engine { return s.engine }

// ListenAndServe listens on cfg.BindAddress and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.BindAddress)
	if err != nil {
		return fmt.Errorf("worker web: listen on %s: %w", s.cfg.BindAddress, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln and refreshes health checks every
// HealthCheckInterval until ctx is done, then drains in-flight requests
// for up to ShutdownTimeout. It returns nil on a clean stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := webserver.New(s.engine, s.cfg.HTTP)
	var wg sync.WaitGroup
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.monitor(monitorCtx)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("worker web listening", zap.String("address", ln.Addr().String()))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopMonitor()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	if serveErr == nil {
		serveErr = <-errc
	}
	wg.Wait()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("worker web: serve: %w", serveErr)
	}
	if shutdownErr != nil {
		return fmt.Errorf("worker web: shutdown: %w", shutdownErr)
	}
	return nil
}

// monitor refreshes the database and queue checks and samples loop ticks,
// so probes answer from memory and never wait on the database.
func (s *Server) monitor(ctx context.Context) {
	for {
		s.RefreshChecks(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(s.cfg.HealthCheckInterval):
		}
	}
}

func (s *Server) now() time.Time { return s.clock.Now().UTC() }

func (s *Server) uptimeSeconds() uint64 {
	d := s.clock.Now().Sub(s.started)
	if d < 0 {
		return 0
	}
	return uint64(d / time.Second)
}
