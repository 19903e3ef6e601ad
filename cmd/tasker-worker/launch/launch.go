// Package launch is the tasker-worker composition root as a library: it
// loads the configuration, builds every adapter and runs the worker until
// SIGTERM/SIGINT. cmd/tasker-worker is a thin main around Main, and a team
// that compiles its own Go step handlers into a worker does the same:
//
//	func main() {
//		handler.MustRegister("Billing::ChargeCard", handler.HandlerFunc(chargeCard))
//		os.Exit(launch.Main(os.Args[1:]))
//	}
//
// Startup: config → logger → database pool → template registry → queues →
// orchestration API client → command processor, intake, dispatcher → web
// API → run. SIGTERM/SIGINT: readiness 503, stop intake, wait up to
// pgmq.shutdown_timeout_seconds for in-flight handlers, persist the rest as
// retryable worker_shutdown failures, exit 0. A startup failure prints one
// line "tasker-worker: <reason>" on standard error and exits 1.
package launch

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/app/lifecycle"
)

// stderr receives the one-line startup error (a variable so tests capture it).
var stderr io.Writer = os.Stderr

// Main runs a worker with the handlers registered in handler.Default (plus
// the example handlers) and returns the process exit code: 0 after a clean
// shutdown, 1 on a startup or run failure, 2 on bad flags.
func Main(args []string) int { return run(args) }

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
	tracing, shutdownTracing, err := telemetry.SetupTracing(ctx, "tasker-worker", nil)
	if err != nil {
		return fail(err)
	}
	lifecycle.EnableTracing(tracing)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdownTracing(sctx) // flush the last spans
	}()
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
