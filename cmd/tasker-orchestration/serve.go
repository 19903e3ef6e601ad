package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/adapters/web/dashboard"
	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/adapters/web/webserver"
	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/app/orchestration/staleness"
	"github.com/tasker-systems/tasker-go/internal/buildinfo"
	"github.com/tasker-systems/tasker-go/internal/servicecli"
)

// runServe starts the orchestration service: HTTP API, enqueue loop and
// queue consumers. On SIGTERM/SIGINT it stops intake (readiness 503, no new
// connections), lets in-flight requests and transactions finish and returns
// nil. A start-up failure is returned as one error (printed on one line,
// exit 1, by servicecli.Execute); it is not logged, so no stack trace.
func runServe(ctx context.Context, f serveFlags, getenv func(string) string) error {
	cfg, err := config.Load(config.LoadOptions{ConfigDir: f.configDir, Environment: f.environment})
	if err == nil {
		err = cfg.ValidateOrchestration()
	}
	if err != nil {
		return err
	}
	if f.bind != "" {
		cfg.Orchestration.BindAddress = f.bind
	}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Level: cfg.Logging.Level, Format: cfg.Logging.Format})
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stopProfile, err := servicecli.StartCPUProfile(getenv)
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := serve(ctx, cfg, log); err != nil {
		return err
	}
	log.Info("orchestration stopped")
	return nil
}

// serve runs until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg *config.Config, log *zap.Logger) error {
	oc := cfg.Orchestration
	tracing, stopTracing, err := telemetry.StartTracing(ctx, "tasker-orchestration", nil)
	if err != nil {
		return err
	}
	defer stopTracing()
	lifecycle.EnableTracing(tracing)
	var tracer trace.Tracer
	if tracing {
		tracer = lifecycle.Tracer(lifecycle.OrchestrationTracer)
	}
	pool := cfg.Database.Pool
	db, err := postgres.Open(ctx, withBinaryParameters(cfg.Database.URL), postgres.PoolConfig{
		// max_idle_conns defaults to max_open_conns (0 also means that): the
		// loops are bursty and a fresh PostgreSQL backend costs milliseconds
		// and cold caches.
		MaxOpenConns: pool.MaxOpenConns, MaxIdleConns: pool.MaxIdleConns,
		ConnMaxLifetime: pool.ConnMaxLifetime()})
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()

	orch := postgres.NewOrchestrationStore(db)
	query := postgres.NewTaskQuery(db)
	templates := postgres.NewTemplateStore(db)
	metrics := telemetry.NewOrchestrationMetrics(query.QueueDepths, func() []string { return nil }, log) // nil: every queue
	tasks := postgres.NewTaskStore(db)
	dlq := postgres.NewDLQStore(db)
	goTables, err := postgres.ProbeGoTables(ctx, db)
	if err != nil {
		return err
	}
	if !goTables.Idempotency || !goTables.DLQ {
		log.Warn("tables of migration 00008 are missing (a database migrated by tasker-core only?): Idempotency-Key is not enforced , /v1/dlq answers 503 and the staleness detector is off; run `tasker-orchestration migrate` to add them",
			zap.Bool("idempotency_keys", goTables.Idempotency), zap.Bool("dlq_entries", goTables.DLQ))
	}
	deps := service.Deps{Templates: templates, Creator: tasks, Enqueuer: orch, Batches: orch,
		Canceller: orch, Queue: pgmq.New(db), Metrics: metrics, Keys: tasks, DeadLetters: dlq, DLQ: dlq, Log: log}
	if st := oc.Staleness; st.Enabled && goTables.DLQ { // without the table the WARN above says it is off
		detector := staleness.New(staleness.Config{EnqueuedTimeout: st.EnqueuedTimeout(), TaskTimeout: st.TaskTimeout(),
			CheckInterval: st.CheckInterval(), Action: staleness.Action(st.Action)}, dlq, metrics, log.Named("staleness"), nil)
		deps.Background = append(deps.Background, detector.Run)
	}
	// The leader election holds its advisory lock on a connection of its own,
	// from a pool of one outside the service's pool, so it never takes a
	// connection the loops or the API need: each orchestration opens one
	// connection more than database.pool.max_open_conns (+1 for LISTEN).
	electorDB, err := postgres.Open(ctx, cfg.Database.URL, postgres.PoolConfig{MaxOpenConns: 1})
	if err != nil {
		log.Warn("leader election unavailable; this instance consumes the orchestration queues whatever the others do", zap.Error(err))
	} else {
		defer func() { _ = electorDB.Close() }()
		deps.Leadership = postgres.NewElector(electorDB, postgres.OrchestrationLeaderLock)
	}
	if cfg.Pgmq.ListenEnabled {
		// The global channel, filtered by queue name in the consumers (D-h).
		listener, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: cfg.Database.URL,
			Channels: []string{pgmq.GlobalReadyChannel}}, log)
		if err != nil {
			log.Warn("LISTEN unavailable; consuming by polling only", zap.Error(err))
		} else {
			defer func() { _ = listener.Close() }()
			deps.Notifier = listener
		}
	}
	svc := service.New(service.Config{
		Environment: cfg.Environment,
		Enqueue:     enqueue.Config{CycleInterval: oc.CycleInterval(), SweepInterval: oc.SweepInterval(), TasksPerCycle: oc.TasksPerCycle},
		Results: result.Config{PollInterval: cfg.Pgmq.PollInterval(), BatchSize: cfg.Pgmq.BatchSize,
			VisibilityTimeoutSeconds: cfg.Pgmq.VisibilityTimeoutSeconds,
			MaxBackoffSeconds:        oc.Backoff.MaxBackoffSeconds, Jitter: oc.Backoff.JitterEnabled,
			MaxReceiveCount: cfg.Pgmq.MaxReceiveCount},
		ShutdownGrace:        oc.ShutdownTimeout(),
		IdempotencyRetention: oc.Idempotency.Retention(),
	}, deps)

	verifier, err := authVerifier(oc.Auth)
	if err != nil {
		return err
	}
	dbBreaker := web.NewBreakerPinger(query, 0, 0)
	var ui web.RouteRegistrar
	if oc.UI.Enabled {
		refresh := oc.UI.RefreshSeconds
		if refresh == 0 {
			refresh = -1 // dashboard.Config: negative turns refresh off
		}
		d, err := dashboard.New(dashboard.Config{BasePath: web.UIPath, RefreshSeconds: refresh},
			dashboard.Deps{Tasks: query, History: postgres.NewTaskHistory(db), Templates: templates, Queues: pgmq.New(db), Log: log})
		if err != nil {
			return err
		}
		ui = d
	}
	api := web.New(web.Config{RequestTimeout: oc.RequestTimeout(), MaxBodyBytes: int64(oc.MaxBodyBytes),
		Verifier: verifier, ProtectedRoutes: oc.Auth.ProtectedRoutes, CORSAllowedOrigins: oc.CORSAllowedOrigins,
		MaxInFlight: oc.HTTP.MaxInFlightRequests,
		HTTP: webserver.Config{ReadHeaderTimeout: oc.HTTP.ReadHeaderTimeout(), ReadTimeout: oc.HTTP.ReadTimeout(),
			WriteTimeout: oc.HTTP.WriteTimeout(), IdleTimeout: oc.HTTP.IdleTimeout(), MaxHeaderBytes: oc.HTTP.MaxHeaderBytes}, Version: buildinfo.Get(),
		Environment: cfg.Environment, DBPoolSize: cfg.Database.Pool.MaxOpenConns, Tracer: tracer},
		web.Deps{Tasks: svc, DLQ: svc, Leader: svc, Query: query, Templates: templates, DB: dbBreaker, Breaker: dbBreaker, UI: ui,
			Metrics: metrics.Handler(), ObserveRequest: metrics.HTTP().Observe, Log: log})

	ln, err := net.Listen("tcp", oc.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", oc.BindAddress, err)
	}
	httpSrv := api.HTTPServer()
	httpErr := make(chan error, 1)
	go func() { httpErr <- httpSrv.Serve(ln) }()
	log.Info("orchestration API listening", zap.String("address", ln.Addr().String()),
		zap.String("environment", cfg.Environment), zap.String("config", cfg.Source))

	loopCtx, stopLoops := context.WithCancel(context.Background())
	loopErr := make(chan error, 1)
	go func() { loopErr <- svc.Run(loopCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-loopErr:
		runErr = err
		loopErr <- nil
	}
	log.Info("shutting down")
	stopLoops() // readiness goes 503 at once; loops finish their current transaction
	shutdownCtx, cancel := context.WithTimeout(context.Background(), oc.ShutdownTimeout())
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-loopErr; err != nil && runErr == nil {
		runErr = err
	}
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// authVerifier builds the bearer verifier from config; nil when auth is off.
func authVerifier(a config.OrchestrationAuthConfig) (middleware.TokenVerifier, error) {
	if !a.Enabled {
		return nil, nil
	}
	var any middleware.AnyVerifier
	if len(a.Tokens) > 0 {
		any = append(any, middleware.StaticTokens(a.Tokens))
	}
	if a.JWTPublicKey != "" {
		v, err := middleware.NewJWTVerifier([]byte(a.JWTPublicKey), a.JWTIssuer, a.JWTAudience)
		if err != nil {
			return nil, fmt.Errorf("orchestration.auth.jwt_public_key: %w", err)
		}
		any = append(any, v)
	}
	if len(any) == 0 {
		return nil, fmt.Errorf("orchestration.auth: %w", middleware.ErrNoVerifier)
	}
	return any, nil
}

// withBinaryParameters adds lib/pq's binary_parameters=yes unless the URL
// sets it: lib/pq then sends a parameterised query in one round trip
// (Parse/Bind/Execute) instead of two (Parse/Describe, then Bind/Execute),
// which halves the round trips of every transaction on the hot paths. The
// orchestration passes JSON and UUIDs as text, never as []byte, so the
// binary encoding of []byte parameters does not affect it.
func withBinaryParameters(url string) string {
	if strings.Contains(url, "binary_parameters") {
		return url
	}
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		if strings.Contains(url, "?") {
			return url + "&binary_parameters=yes"
		}
		return url + "?binary_parameters=yes"
	}
	return strings.TrimSpace(url) + " binary_parameters=yes"
}
