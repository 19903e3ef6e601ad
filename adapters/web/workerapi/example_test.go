package workerapi_test

import (
	"context"

	"github.com/jmoiron/sqlx"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/adapters/web/workerapi"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/health"
)

// Example_wiring shows how cmd/tasker-worker composes the worker API: the
// metrics registry first (its decorators wrap the event bus and step store
// handed to the pipeline and dispatcher), then the server over the same
// database, queue client, template store and handler registry. status
// converts the worker's own status into a domain.WorkerStatus.
func Example_wiring() {
	var (
		cfg    config.Config // loaded with config.Load
		db     *sqlx.DB      // postgres.Open(ctx, cfg.Database.URL, …)
		log    = zap.NewNop()
		status workerapi.StatusProvider // e.g. workerapi.StatusFunc(w.Status) for an app/workerapi.Worker w
	)
	if db == nil {
		return // documentation only: compiled, not run
	}
	q := pgmq.New(db)
	wc := cfg.WorkerWeb
	webCfg := workerapi.Config{
		WorkerID: cfg.Worker.WorkerID, Version: "1.0.0", Environment: cfg.Environment, Namespaces: cfg.Worker.Namespaces,
		BindAddress: wc.BindAddress, RequestTimeout: wc.RequestTimeout(), AuthEnabled: wc.AuthenticationEnabled, Tokens: wc.Tokens,
		CORSEnabled: wc.CORSEnabled, MetricsEnabled: wc.MetricsEnabled, HealthCheckInterval: wc.HealthCheckInterval(),
		CommandBufferSize: cfg.CommandProcessing.CommandBufferSize,
	}
	metrics, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: webCfg.Version, WorkerID: webCfg.WorkerID, WorkerType: workerapi.WorkerType},
		telemetry.WorkerSources{DBStats: db.Stats, QueueMetrics: telemetry.ServedQueueMetrics(q, webCfg.Namespaces), Runtime: status.Snapshot})
	if err != nil {
		log.Fatal("metrics", zap.Error(err))
	}
	bus := metrics.InstrumentEventBus(eventbus.New(eventbus.Config{})) // give this bus to the pipeline and dispatcher
	steps := metrics.InstrumentStepStore(postgres.NewStepStore(db))    // and this step store to the pipeline
	_, _ = bus, steps

	policy := health.New(health.Config{PollInterval: cfg.Pgmq.PollInterval()}) // judges status for the probes
	srv, err := workerapi.New(webCfg, workerapi.Deps{Status: status, Health: policy, Templates: postgres.NewTemplateStore(db), Handlers: handler.Default,
		DB: db, Queues: q, Metrics: metrics.Handler(), Logger: log})
	if err != nil {
		log.Fatal("worker web", zap.Error(err))
	}
	ctx, stop := context.WithCancel(context.Background()) // the signal context in main
	defer stop()
	if wc.Enabled {
		go func() { _ = srv.ListenAndServe(ctx) }() // returns after ctx is done and requests drained
	}
}
