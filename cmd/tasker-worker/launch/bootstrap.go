package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	web "github.com/tasker-systems/tasker-go/adapters/web/worker"
	"github.com/tasker-systems/tasker-go/app/worker"
	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/registry"
	"github.com/tasker-systems/tasker-go/internal/buildinfo"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestHandlersEnv enables the test-only handlers (see testhandlers.go).
const TestHandlersEnv = "TASKER_WORKER_TEST_HANDLERS"

// service is the assembled worker process.
type service struct {
	log      *zap.Logger
	db       interface{ Close() error }
	worker   *worker.Worker
	web      *web.Server
	notifier ports.MessageNotifier
	orchAPI  *httpclient.Client
}

// bootstrap builds every adapter and the worker; any error is a startup failure.
func bootstrap(ctx context.Context, cfg *config.Config, log *zap.Logger) (*service, error) {
	connectCtx, cancel := context.WithTimeout(ctx, cfg.Database.Pool.ConnectTimeout()+5*time.Second)
	defer cancel()
	db, err := postgres.Open(connectCtx, cfg.Database.URL, postgres.PoolConfig{
		MaxOpenConns: cfg.Database.Pool.MaxOpenConns, MaxIdleConns: cfg.Database.Pool.MaxIdleConns,
		ConnMaxLifetime: cfg.Database.Pool.ConnMaxLifetime()})
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	svc := &service{log: log, db: db}
	ok := false
	defer func() {
		if !ok {
			svc.close()
		}
	}()
	// The worker talks to the orchestration only through this client (task
	// creation from handlers, health); its breaker state shows in /status.
	if svc.orchAPI, err = httpclient.New(httpclient.FromSettings(cfg.OrchestrationAPI)); err != nil {
		return nil, fmt.Errorf("orchestration_api: %w", err)
	}

	// Handlers registered with handler.Register (e.g. in init functions of
	// linked packages) are served along with the example handlers.
	handlers := handler.Default
	if _, done := handlers.Lookup(examples.SquareCallable); !done {
		if err := examples.Register(handlers); err != nil {
			return nil, fmt.Errorf("register example handlers: %w", err)
		}
	}
	if _, done := handlers.Lookup(TestSleepCallable); !done && os.Getenv(TestHandlersEnv) == "1" {
		if err := registerTestHandlers(handlers); err != nil {
			return nil, err
		}
		log.Warn("test-only handlers registered", zap.String("env", TestHandlersEnv))
	}

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

	if cfg.Pgmq.ListenEnabled {
		channels := make([]string, len(cfg.Worker.Namespaces))
		for i, ns := range cfg.Worker.Namespaces {
			channels[i] = pgmq.NamespaceReadyChannel(ns)
		}
		l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: cfg.Database.URL, Channels: channels, ReconnectQueues: reg.Queues()}, log)
		if err != nil {
			return nil, fmt.Errorf("LISTEN: %w", err)
		}
		svc.notifier = l
	}

	hostname, _ := os.Hostname()
	var status web.StatusProvider = web.StatusFunc(func() web.Snapshot {
		if svc.worker == nil {
			return web.Snapshot{}
		}
		return SnapshotFromWorker(svc.worker.Status())
	})
	var steps ports.StepStore = postgres.NewStepStore(db)
	var bus ports.EventBus = eventbus.New(eventbus.Config{PublisherBufferSize: cfg.EventIntegration.PublisherBufferSize,
		SubscriberBufferSize: cfg.EventIntegration.SubscriberBufferSize})
	var metrics *telemetry.WorkerMetrics
	if cfg.WorkerWeb.Enabled && cfg.WorkerWeb.MetricsEnabled {
		metrics, err = telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: buildinfo.Get(), WorkerID: cfg.Worker.WorkerID, WorkerType: web.WorkerType},
			web.MetricsSources(db, queue, status, cfg.Worker.Namespaces))
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		steps = metrics.InstrumentStepStore(steps)
		bus = metrics.InstrumentEventBus(bus)
	}

	w, err := worker.New(worker.Config{
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
		ShutdownTimeout:          cfg.Pgmq.ShutdownTimeout(),
		CommandBufferSize:        cfg.CommandProcessing.CommandBufferSize,
		MaxConcurrentCommands:    cfg.CommandProcessing.MaxConcurrentCommands,
		CommandTimeout:           cfg.CommandProcessing.CommandTimeout(),
	}, worker.Deps{Steps: steps, Queue: queue, Bus: bus, Notifier: svc.notifier, Handlers: handlers, Logger: log})
	if err != nil {
		return nil, err
	}
	svc.worker = w

	if cfg.WorkerWeb.Enabled {
		wc := web.Config{WorkerID: cfg.Worker.WorkerID, Version: buildinfo.Get(), Environment: cfg.Environment,
			Namespaces: cfg.Worker.Namespaces, BindAddress: cfg.WorkerWeb.BindAddress, RequestTimeout: cfg.WorkerWeb.RequestTimeout(),
			AuthEnabled: cfg.WorkerWeb.AuthenticationEnabled, Tokens: cfg.WorkerWeb.Tokens, CORSEnabled: cfg.WorkerWeb.CORSEnabled,
			MetricsEnabled: cfg.WorkerWeb.MetricsEnabled, HealthCheckInterval: cfg.WorkerWeb.HealthCheckInterval(),
			PollInterval: cfg.Pgmq.PollInterval(), CommandBufferSize: w.Config().CommandBufferSize,
			DispatcherStallAfter: dispatcherStallAfter}
		deps := web.Deps{Status: status, Templates: templates, Handlers: handlers, DB: db, Queues: queue, Logger: log,
			Breaker: svc.orchAPI}
		if metrics != nil {
			deps.Metrics = metrics.Handler()
			deps.ObserveRequest = metrics.HTTP().Observe
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

// run serves until ctx ends and shuts down gracefully. The web API keeps
// answering during the grace period (readiness 503) and stops last.
func (s *service) run(ctx context.Context) error {
	defer s.close()
	webCtx, stopWeb := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWeb()
	var wg sync.WaitGroup
	webErr := make(chan error, 1)
	if s.web != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.web.ListenAndServe(webCtx); err != nil {
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

func (s *service) close() {
	if s.orchAPI != nil {
		s.orchAPI.CloseIdleConnections()
	}
	if s.notifier != nil {
		_ = s.notifier.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
}

// dispatcherStallAfter is how long the dispatcher loop may stay silent before
// readiness reports it wedged; it ticks every second while idle.
const dispatcherStallAfter = 3 * time.Second

// orchestrationHealthTimeout bounds the start-up health check of the
// orchestration API, which runs beside the pipeline so a missing
// orchestration never delays step processing.
const orchestrationHealthTimeout = 10 * time.Second

// checkOrchestration logs whether the orchestration API answers. The worker
// does not need it to process steps, so the result is informational.
func (s *service) checkOrchestration(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, orchestrationHealthTimeout)
	defer cancel()
	if err := s.orchAPI.Health(ctx); err != nil {
		s.log.Warn("orchestration API not reachable (steps are processed regardless)",
			zap.String("base_url", s.orchAPI.BaseURL()), zap.Error(err))
		return
	}
	s.log.Info("orchestration API reachable", zap.String("base_url", s.orchAPI.BaseURL()))
}
