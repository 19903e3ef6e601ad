// Command tasker-orchestration runs the Tasker orchestration service
// (subcommand serve, the default) or applies the database migrations
// (subcommand migrate). See `tasker-orchestration --help`.
package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/internal/servicecli"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int { return runWith(args, os.Stdout, os.Stderr, os.Getenv) }

// runWith executes the command line with its streams and environment
// injected, so tests run it in-process.
func runWith(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return servicecli.Execute(rootCommand(getenv), args, stdout, stderr)
}

// serveFlags are the flags of serve (also accepted by the bare command,
// which serves).
type serveFlags struct {
	configDir, environment, bind string
}

func (f *serveFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configDir, "config-dir", "", "directory with base/ and environments/ (default $TASKER_CONFIG_DIR or configs/tasker)")
	fl.StringVar(&f.environment, "environment", "", "environment (default from TASKER_ENV, RAILS_ENV, RACK_ENV, APP_ENV)")
	fl.StringVar(&f.bind, "bind", "", "override orchestration.bind_address, e.g. 0.0.0.0:8080")
}

func rootCommand(getenv func(string) string) *cobra.Command {
	var rootFlags, serveOnly serveFlags
	root := servicecli.NewRoot("tasker-orchestration", "The Tasker orchestration service",
		`tasker-orchestration serves the orchestration HTTP API (tasks, steps,
templates, health, metrics) and runs the loops that enqueue ready steps and
process step results. Without a subcommand it serves.

Apply the database migrations first (once per release):
  DATABASE_URL=postgres://… tasker-orchestration migrate`)
	root.Example = `  DATABASE_URL=postgres://postgres@localhost:5432/tasker tasker-orchestration migrate
  DATABASE_URL=postgres://postgres@localhost:5432/tasker TASKER_ENV=development tasker-orchestration serve --bind 127.0.0.1:8080`
	rootFlags.register(root)
	root.RunE = func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), rootFlags, getenv) }

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve the orchestration API and run its loops until SIGTERM/SIGINT (the default)",
		Long: `Serve the orchestration HTTP API and run the enqueue and result loops. On
SIGTERM/SIGINT readiness turns 503, in-flight requests and transactions
finish, and the process exits 0. A start-up failure (bad configuration,
database unreachable, port in use) prints one line and exits 1.`,
		Args: servicecli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd.Context(), serveOnly, getenv) },
	}
	serveOnly.register(serve)

	var dbURL string
	migrate := &cobra.Command{
		Use:   "migrate [--database-url URL]",
		Short: "Apply the embedded database migrations and exit",
		Long: `Apply the embedded migrations (tables tasker_*, the pgmq schema when the
extension is absent) to DATABASE_URL or --database-url, print each one
applied, and exit 0. Safe to run again: an up-to-date database is a no-op.`,
		Args: servicecli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return migrateDatabase(dbURL, cmd.OutOrStdout(), getenv)
		},
	}
	migrate.Flags().StringVar(&dbURL, "database-url", "", "PostgreSQL URL (default: $DATABASE_URL)")
	root.AddCommand(serve, migrate)
	return root
}
