// Command tasker-worker runs a Tasker worker: it registers the task
// templates it finds, serves the step queues of its namespaces with the Go
// handlers compiled into it (the examples and any registered with
// handler.Register), and exposes the worker HTTP API.
//
// Startup: config → logger → database pool → template registry → queues →
// orchestration API client → command processor, intake, dispatcher → web
// API → run. SIGTERM/SIGINT: readiness 503, stop intake, wait up to
// pgmq.shutdown_timeout_seconds for in-flight handlers, persist the rest as
// retryable worker_shutdown failures, exit 0. A startup failure prints one
// line "tasker-worker: <reason>" on standard error and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// stderr receives the one-line startup error (a variable so tests capture it).
var stderr io.Writer = os.Stderr

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("tasker-worker", flag.ContinueOnError)
	configDir := fs.String("config-dir", "", "directory with base/ and environments/ (default $TASKER_CONFIG_DIR or configs/tasker)")
	env := fs.String("environment", "", "environment (default from TASKER_ENV, RAILS_ENV, RACK_ENV, APP_ENV)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(config.LoadOptions{ConfigDir: *configDir, Environment: *env})
	if err == nil {
		err = cfg.ValidateWorker()
	}
	if err == nil {
		_, err = cfg.Worker.EnsureID()
	}
	if err != nil {
		return fail(err)
	}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Level: cfg.Logging.Level, Format: cfg.Logging.Format})
	if err != nil {
		return fail(err)
	}
	defer func() { _ = log.Sync() }()
	log = log.With(zap.String("worker_id", cfg.Worker.WorkerID))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	svc, err := bootstrap(ctx, cfg, log)
	if err != nil {
		return fail(err)
	}
	if err := svc.run(ctx); err != nil {
		log.Error("worker stopped with an error", zap.Error(err))
		return 1
	}
	return 0
}

// fail prints the one-line startup error and returns the exit code.
func fail(err error) int {
	fmt.Fprintf(stderr, "tasker-worker: %s\n", oneLine(err.Error()))
	return 1
}

func oneLine(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
