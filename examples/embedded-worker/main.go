// Command embedded-worker is a complete program that embeds the Tasker
// worker (package sdk/worker) instead of running the tasker-worker binary:
// it owns its context and signals, its database pool, its zap logger and
// its handler registry, and registers typed handlers. One handler creates a
// child task through the orchestration client the worker gives every
// handler (StepContext.CreateTask).
//
// Run it next to a tasker-orchestration (see README "Embedding the worker"):
//
//	DATABASE_URL=postgres://postgres@localhost:5432/tasker \
//	TASKER_ORCHESTRATION_API__BASE_URL=http://localhost:8080 \
//	go run ./examples/embedded-worker --templates examples/embedded-worker/templates
//
// then create a parent task:
//
//	taskerctl task create --namespace embedded --name order_fulfillment --version 1.0 \
//	  --context '{"order_id": 7, "items": ["book", "pen"]}' --wait
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/sdk/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "embedded-worker: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	templates := flag.String("templates", "examples/embedded-worker/templates", "task template directory")
	bind := flag.String("bind", "127.0.0.1:8091", "worker HTTP API address")
	flag.Parse()

	// Our own context: the worker stops gracefully when it ends.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Our own logger.
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	// The configuration: defaults plus the environment (DATABASE_URL,
	// TASKER_ORCHESTRATION_API__BASE_URL, any TASKER_* key), then our choices.
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		return err
	}
	cfg.Worker.Namespaces = []string{"embedded"}
	cfg.Worker.TemplateDir = *templates
	cfg.WorkerWeb.BindAddress = *bind
	if cfg.Database.URL == "" {
		return errors.New("set DATABASE_URL")
	}

	// Our own pool, shared with the rest of the program; the worker does
	// not close it.
	db, err := postgres.Open(ctx, cfg.Database.URL, postgres.PoolConfig{MaxOpenConns: 10})
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()

	// Our own registry: nothing global.
	reg := handler.NewRegistry()
	for callable, h := range map[string]handler.Handler{
		"embedded.validate_order": handler.Typed(validateOrder),
		"embedded.start_shipping": handler.Typed(startShipping),
		"embedded.ship":           handler.Typed(ship),
	} {
		if err := reg.Register(callable, h); err != nil {
			return err
		}
	}

	w, err := worker.New(ctx, cfg, worker.WithDB(db), worker.WithLogger(log), worker.WithHandlers(reg))
	if err != nil {
		return err
	}
	log.Info("embedded worker running", zap.String("api", "http://"+*bind))
	return w.Run(ctx)
}
