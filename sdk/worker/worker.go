// Package worker is the embeddable Tasker worker: a program builds one with
// its own configuration, logger, handler registry and (optionally) its own
// database pool, and runs it under its own context:
//
//	reg := handler.NewRegistry()
//	reg.Register("Billing::ChargeCard", handler.Typed(chargeCard))
//	w, err := worker.New(ctx, cfg, worker.WithHandlers(reg), worker.WithLogger(log), worker.WithDB(pool))
//	if err != nil { … }
//	err = w.Run(ctx) // until ctx ends; then a graceful stop
//
// New loads and registers the task templates, creates the namespace queues,
// wires the step pipeline, the handler dispatcher, the orchestration API
// client (handlers create tasks through it, StepContext.CreateTask) and the
// worker HTTP API. Run serves until ctx ends, then: readiness 503, intake
// stops, in-flight handlers get up to pgmq.shutdown_timeout_seconds, the
// rest are persisted as retryable worker_shutdown failures, and Run returns
// nil. Nothing here is global: two workers in one process do not share
// handlers, pools or metrics registries.
//
// cmd/tasker-worker is a thin wrapper over this package (cmd/tasker-worker/launch).
package worker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/adapters/web/webserver"
	web "github.com/tasker-systems/tasker-go/adapters/web/workerapi"
	engine "github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/app/worker/registry"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/buildinfo"
	"github.com/tasker-systems/tasker-go/ports"
)

// Option customises New.
type Option func(*options)

type options struct {
	db       *sqlx.DB
	log      *zap.Logger
	handlers *handler.Registry
}

// WithDB makes the worker use the caller's pool instead of opening one from
// database.url. The caller keeps ownership: Run does not close it. The
// pool's sessions should run in UTC (contract §1 rule 3); postgres.Open
// does that for pools it opens. LISTEN/NOTIFY still dials database.url when
// pgmq.listen_enabled is on, so leave the URL set or turn listening off.
func WithDB(db *sqlx.DB) Option { return func(o *options) { o.db = db } }

// WithSQLDB is WithDB for a plain *sql.DB (lib/pq driver).
func WithSQLDB(db *sql.DB) Option {
	return func(o *options) { o.db = sqlx.NewDb(db, "postgres") }
}

// WithLogger sets the worker's logger (default: discard). Handlers get it
// with their step's ids via StepContext.Logger.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithHandlers sets the registry the worker serves. Without it the registry
// is empty, so New fails when worker.require_handlers is on (the default)
// and a served template names a callable.
func WithHandlers(r *handler.Registry) Option { return func(o *options) { o.handlers = r } }

// Worker is an assembled worker, ready to Run.
type Worker struct {
	log      *zap.Logger
	db       interface{ Close() error } // nil when the caller owns the pool
	worker   *engine.Worker
	web      *web.Server
	ln       net.Listener // the web API's port, bound by New, served by Run
	notifier ports.MessageNotifier
	orchAPI  *httpclient.Client
	closed   sync.Once
}

// New builds every adapter and the worker from cfg (validated with
// cfg.ValidateWorker); any error is a start-up failure, after which
// nothing New opened stays open. ctx bounds start-up only.
//
// The web API's port (worker_web.bind_address) is bound first, before the
// database is opened or a template registered: a port in use is then one
// error and nothing else — no templates written, no worker started and
// stopped, no log lines about either. Run serves on it.
func New(ctx context.Context, cfg *config.Config, opts ...Option) (*Worker, error) {
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.handlers == nil {
		o.handlers = handler.NewRegistry()
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if err := validate(cfg, o.db != nil); err != nil {
		return nil, err
	}
	if _, err := cfg.Worker.EnsureID(); err != nil {
		return nil, err
	}
	log := o.log.With(zap.String("worker_id", cfg.Worker.WorkerID))
	svc := &Worker{log: log}
	if cfg.WorkerWeb.Enabled {
		ln, err := net.Listen("tcp", cfg.WorkerWeb.BindAddress)
		if err != nil {
			return nil, fmt.Errorf("worker web: listen on %s: %w", cfg.WorkerWeb.BindAddress, err)
		}
		svc.ln = ln
	}
	ok := false
	defer func() {
		if !ok {
			svc.close()
		}
	}()
	db := o.db
	if db == nil {
		connectCtx, cancel := context.WithTimeout(ctx, cfg.Database.Pool.ConnectTimeout()+5*time.Second)
		defer cancel()
		var err error
		db, err = postgres.Open(connectCtx, cfg.Database.URL, postgres.PoolConfig{
			MaxOpenConns: cfg.Database.Pool.MaxOpenConns, MaxIdleConns: cfg.Database.Pool.MaxIdleConns,
			ConnMaxLifetime: cfg.Database.Pool.ConnMaxLifetime()})
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		svc.db = db
	}
	// The worker talks to the orchestration only through this client (task
	// creation from handlers, health); its breaker state shows in /status.
	var err error
	if svc.orchAPI, err = httpclient.New(clientConfig(cfg.OrchestrationAPI)); err != nil {
		return nil, fmt.Errorf("orchestration_api: %w", err)
	}
	handlers := o.handlers

	queue := pgmq.New(db)
	templates := postgres.NewTemplateStore(db)
	reg, err := registry.New(registry.Config{TemplateDir: cfg.Worker.TemplateDir, Namespaces: cfg.Worker.Namespaces,
		SkipInvalid: cfg.Worker.SkipInvalidTemplates}, templates, queue, log)
	if err != nil {
		return nil, err
	}
	rep, err := reg.Load(ctx)
	if err != nil {
		var le *registry.LoadError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%w (set worker.skip_invalid_templates = true to start anyway)", err)
		}
		return nil, fmt.Errorf("templates: %w", err)
	}
	log.Info("task templates registered", zap.Int("registered", len(rep.Registered)), zap.Int("invalid_skipped", len(rep.Invalid)),
		zap.Int("rejected", len(rep.Rejected)), zap.String("template_dir", cfg.Worker.TemplateDir))
	if missing := reg.MissingHandlers(cfg.Environment, func(c string) bool { _, ok := handlers.Lookup(c); return ok }); len(missing) > 0 {
		if cfg.Worker.RequireHandlers {
			return nil, &registry.MissingError{Missing: missing}
		}
		for _, m := range missing {
			log.Warn("served work this worker cannot run (worker.require_handlers = false)", zap.String("namespace", m.Namespace),
				zap.String("template", m.Template), zap.String("callable", m.Callable), zap.String("problem", m.String()))
		}
	}
	if err := reg.EnsureQueues(ctx); err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}

	if cfg.Pgmq.ListenEnabled && cfg.Database.URL == "" {
		log.Info("pgmq.listen_enabled but no database.url to dial LISTEN with (caller-owned pool); polling only")
	}
	if cfg.Pgmq.ListenEnabled && cfg.Database.URL != "" {
		channels := make([]string, len(cfg.Worker.Namespaces))
		for i, ns := range cfg.Worker.Namespaces {
			channels[i] = pgmq.NamespaceReadyChannel(ns)
		}
		l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: cfg.Database.URL, Channels: channels}, log)
		if err != nil {
			return nil, fmt.Errorf("LISTEN: %w", err)
		}
		svc.notifier = l
	}

	hostname, _ := os.Hostname()
	var status web.StatusProvider = web.StatusFunc(func() domain.WorkerStatus {
		if svc.worker == nil {
			return domain.WorkerStatus{}
		}
		return svc.worker.Status()
	})
	var steps ports.StepStore = postgres.NewStepStore(db)
	var bus ports.EventBus = eventbus.New(eventbus.Config{PublisherBufferSize: cfg.EventIntegration.PublisherBufferSize,
		SubscriberBufferSize: cfg.EventIntegration.SubscriberBufferSize})
	var metrics *telemetry.WorkerMetrics
	if cfg.WorkerWeb.Enabled && cfg.WorkerWeb.MetricsEnabled {
		metrics, err = telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: buildinfo.Get(), WorkerID: cfg.Worker.WorkerID, WorkerType: web.WorkerType},
			telemetry.WorkerSources{DBStats: db.Stats, QueueMetrics: telemetry.ServedQueueMetrics(queue, cfg.Worker.Namespaces), Runtime: status.Snapshot})
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		steps = metrics.InstrumentStepStore(steps)
		bus = metrics.InstrumentEventBus(bus)
	}

	w, err := engine.New(engine.Config{
		WorkerID:                 cfg.Worker.WorkerID,
		Hostname:                 hostname,
		Environment:              cfg.Environment,
		Queues:                   reg.Queues(),
		VisibilityTimeoutSeconds: cfg.Pgmq.VisibilityTimeoutSeconds,
		PollInterval:             cfg.Pgmq.PollInterval(),
		BatchSize:                cfg.Pgmq.BatchSize,
		MaxConcurrentSteps:       cfg.Worker.MaxConcurrentSteps,
		StepClaimTimeout:         cfg.Worker.StepClaimTimeout(),
		CorrelationTimeout:       cfg.EventIntegration.CorrelationTimeout(),
		MaxReceiveCount:          cfg.Pgmq.MaxReceiveCount,
		MaxMessageBytes:          cfg.Worker.Limits.MaxMessageBytes,
		ShutdownTimeout:          cfg.Pgmq.ShutdownTimeout(),
		CommandBufferSize:        cfg.CommandProcessing.CommandBufferSize,
		MaxConcurrentCommands:    cfg.CommandProcessing.MaxConcurrentCommands,
		CommandTimeout:           cfg.CommandProcessing.CommandTimeout(),
	}, engine.Deps{Steps: steps, Queue: queue, Bus: bus, Notifier: svc.notifier, Handlers: handlers, Logger: log, Tasks: taskCreator{svc.orchAPI}})
	if err != nil {
		return nil, err
	}
	svc.worker = w

	if cfg.WorkerWeb.Enabled {
		wc := web.Config{WorkerID: cfg.Worker.WorkerID, Version: buildinfo.Get(), Environment: cfg.Environment,
			Namespaces: cfg.Worker.Namespaces, BindAddress: cfg.WorkerWeb.BindAddress, RequestTimeout: cfg.WorkerWeb.RequestTimeout(),
			AuthEnabled: cfg.WorkerWeb.AuthenticationEnabled, Tokens: cfg.WorkerWeb.Tokens, CORSEnabled: cfg.WorkerWeb.CORSEnabled,
			CORSAllowedOrigins: cfg.WorkerWeb.CORSAllowedOrigins, MaxInFlight: cfg.WorkerWeb.HTTP.MaxInFlightRequests,
			HTTP: webserver.Config{ReadHeaderTimeout: cfg.WorkerWeb.HTTP.ReadHeaderTimeout(), ReadTimeout: cfg.WorkerWeb.HTTP.ReadTimeout(),
				WriteTimeout: cfg.WorkerWeb.HTTP.WriteTimeout(), IdleTimeout: cfg.WorkerWeb.HTTP.IdleTimeout(),
				MaxHeaderBytes: cfg.WorkerWeb.HTTP.MaxHeaderBytes},
			MetricsEnabled: cfg.WorkerWeb.MetricsEnabled, HealthCheckInterval: cfg.WorkerWeb.HealthCheckInterval(),
			CommandBufferSize: w.Config().CommandBufferSize}
		policy := health.New(health.Config{PollInterval: cfg.Pgmq.PollInterval(), DispatcherStallAfter: health.ServiceDispatcherStallAfter})
		deps := web.Deps{Status: status, Health: policy, Templates: templates, Handlers: handlers, DB: db, Queues: queue, Logger: log,
			Breaker: svc.orchAPI}
		if metrics != nil {
			deps.Metrics = metrics.Handler()
			deps.ObserveRequest = metrics.HTTP().Observe
		}
		if cfg.WorkerWeb.AuthenticationEnabled && cfg.WorkerWeb.JWTPublicKey != "" {
			v, err := middleware.NewJWTVerifier([]byte(cfg.WorkerWeb.JWTPublicKey), cfg.WorkerWeb.JWTIssuer, cfg.WorkerWeb.JWTAudience)
			if err != nil {
				return nil, fmt.Errorf("worker_web.jwt_public_key: %w", err)
			}
			wc.Verifier = v
		}
		srv, err := web.New(wc, deps)
		if err != nil {
			return nil, fmt.Errorf("worker_web: %w", err)
		}
		svc.web = srv
	}
	ok = true
	return svc, nil
}

// Run serves until ctx ends and shuts down gracefully; it returns nil after
// a clean stop. The web API keeps answering during the grace period
// (readiness 503) and stops last. Run releases what New opened; call it
// once.
func (s *Worker) Run(ctx context.Context) error {
	defer s.close()
	webCtx, stopWeb := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWeb()
	var wg sync.WaitGroup
	webErr := make(chan error, 1)
	if s.web != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.web.Serve(webCtx, s.ln); err != nil {
				webErr <- err
			}
		}()
	}
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.checkOrchestration(workerCtx)
	}()
	var runErr error
	done := make(chan error, 1)
	go func() { done <- s.worker.Run(workerCtx) }()
	select {
	case runErr = <-done:
	case err := <-webErr:
		runErr = err
		stopWorker()
		<-done
	case <-ctx.Done():
		s.log.Info("stop signal received; shutting down")
		runErr = <-done
	}
	stopWorker()
	stopWeb()
	wg.Wait()
	return runErr
}

// taskCreator lets handlers create tasks through the orchestration client
// with the per-step idempotency key of StepContext.CreateTask.
type taskCreator struct{ *httpclient.Client }

// CreateTaskWithKey sends req with key as its Idempotency-Key.
func (t taskCreator) CreateTaskWithKey(ctx context.Context, req domain.TaskRequest, key string) (domain.TaskCreationResponse, error) {
	return t.CreateTask(httpclient.WithIdempotencyKey(ctx, key), req)
}

// validate is cfg.ValidateWorker, except that with a caller-owned pool
// database.url may be empty (it is then only needed for LISTEN).
func validate(cfg *config.Config, ownPool bool) error {
	check := *cfg
	if ownPool && strings.TrimSpace(check.Database.URL) == "" {
		check.Database.URL = "postgres://caller-owned-pool"
	}
	return check.ValidateWorker()
}

// Close releases what New opened (pool, listener, the web API's port), for
// a Worker that is never Run.
func (s *Worker) Close() { s.close() }

func (s *Worker) close() {
	s.closed.Do(s.release)
}

func (s *Worker) release() {
	if s.orchAPI != nil {
		s.orchAPI.CloseIdleConnections()
	}
	if s.notifier != nil {
		_ = s.notifier.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
	if s.ln != nil {
		_ = s.ln.Close() // already closed when Run served on it
	}
}

// orchestrationHealthTimeout bounds the start-up health check of the
// orchestration API, which runs beside the pipeline so a missing
// orchestration never delays step processing.
const orchestrationHealthTimeout = 10 * time.Second

// checkOrchestration logs whether the orchestration API answers. The worker
// does not need it to process steps, so the result is informational. When
// the worker stops before the answer (a signal right after start, or a
// start-up failure in Run) nothing is logged: "not reachable: context
// canceled" would blame the orchestration for our own stop.
func (s *Worker) checkOrchestration(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, orchestrationHealthTimeout)
	defer cancel()
	if err := s.orchAPI.Health(hctx); err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("orchestration API not reachable (steps are processed regardless)",
			zap.String("base_url", s.orchAPI.BaseURL()), zap.Error(err))
		return
	}
	s.log.Info("orchestration API reachable", zap.String("base_url", s.orchAPI.BaseURL()))
}
