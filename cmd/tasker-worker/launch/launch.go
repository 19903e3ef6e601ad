// Package launch is the tasker-worker command line: a thin wrapper over the
// embeddable worker (package sdk/worker) that reads the configuration from
// files and the environment, builds a logger, serves the handlers
// registered in handler.Default plus the example handlers, and maps the
// outcome to an exit code. A team compiling its own handlers into a worker
// binary can keep using it:
//
//	func main() {
//		handler.MustRegister("Billing::ChargeCard", handler.Typed(chargeCard))
//		os.Exit(launch.Main(os.Args[1:]))
//	}
//
// or embed sdk/worker directly to own the context, pool, logger and
// registry (see examples/embedded-worker).
//
// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT) and for --help and
// --version; 1 on a start-up or run failure, printed as one line
// "tasker-worker: <reason>" on standard error (no stack trace); 2 for an
// unknown flag or a stray argument.
package launch

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/internal/servicecli"
	"github.com/tasker-systems/tasker-go/sdk/worker"
)

// TestHandlersEnv enables the test-only handlers (see testhandlers.go).
const TestHandlersEnv = "TASKER_WORKER_TEST_HANDLERS"

// stdout and stderr receive help and the one-line error (variables so
// tests capture them).
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// Main runs a worker with the handlers registered in handler.Default (plus
// the example handlers) and returns the process exit code.
func Main(args []string) int { return run(args) }

func run(args []string) int {
	return servicecli.Execute(rootCommand(), args, stdout, stderr)
}

func rootCommand() *cobra.Command {
	var configDir, environment string
	root := servicecli.NewRoot("tasker-worker", "A Tasker worker: runs Go step handlers for its namespaces",
		`tasker-worker registers the task templates under worker.template_dir, serves
the step queues of worker.namespaces with the Go handlers compiled into it,
and exposes the worker HTTP API (health, status, metrics, templates).

On SIGTERM/SIGINT readiness turns 503, intake stops, in-flight handlers get
pgmq.shutdown_timeout_seconds to finish, the rest are recorded as
retryable worker_shutdown failures, and the process exits 0. A start-up
failure (bad configuration, database unreachable, port in use, an invalid
template with worker.skip_invalid_templates = false) prints one line and
exits 1.`)
	root.Example = `  DATABASE_URL=postgres://postgres@localhost:5432/tasker TASKER_WORKER__NAMESPACES=examples tasker-worker
  tasker-worker --config-dir ./configs/tasker --environment production`
	root.Flags().StringVar(&configDir, "config-dir", "", "directory with base/ and environments/ (default $TASKER_CONFIG_DIR or configs/tasker)")
	root.Flags().StringVar(&environment, "environment", "", "environment (default from TASKER_ENV, RAILS_ENV, RACK_ENV, APP_ENV)")
	root.RunE = func(*cobra.Command, []string) error { return serve(configDir, environment) }
	return root
}

// serve loads the configuration and runs the worker until SIGTERM/SIGINT.
func serve(configDir, environment string) error {
	cfg, err := config.Load(config.LoadOptions{ConfigDir: configDir, Environment: environment})
	if err == nil {
		err = cfg.ValidateWorker()
	}
	if err != nil {
		return err
	}
	log, err := telemetry.NewLogger(telemetry.LoggerOptions{Level: cfg.Logging.Level, Format: cfg.Logging.Format})
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	handlers, err := defaultHandlers(log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stopProfile, err := servicecli.StartCPUProfile(os.Getenv)
	if err != nil {
		return err
	}
	defer stopProfile()
	tracing, stopTracing, err := telemetry.StartTracing(ctx, "tasker-worker", nil)
	if err != nil {
		return err
	}
	defer stopTracing()
	lifecycle.EnableTracing(tracing)
	w, err := worker.New(ctx, cfg, worker.WithLogger(log), worker.WithHandlers(handlers))
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// defaultHandlers is handler.Default with the example handlers (and the
// test-only ones when TestHandlersEnv=1) added once.
func defaultHandlers(log *zap.Logger) (*handler.Registry, error) {
	handlers := handler.Default
	if _, done := handlers.Lookup(examples.SquareCallable); !done {
		if err := examples.Register(handlers); err != nil {
			return nil, err
		}
	}
	if _, done := handlers.Lookup(TestSleepCallable); !done && os.Getenv(TestHandlersEnv) == "1" {
		if err := registerTestHandlers(handlers); err != nil {
			return nil, err
		}
		log.Warn("test-only handlers registered", zap.String("env", TestHandlersEnv))
	}
	return handlers, nil
}
