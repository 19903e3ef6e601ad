// Package servicecli is what the two service binaries (tasker-orchestration,
// tasker-worker) share on the command line: a cobra root with --version, the
// environment variables in --help, strict positional arguments, and one
// exit-code policy — 0 on success and on --help/--version, 2 for a wrong
// invocation, 1 with exactly one line on standard error for anything else
// (a start-up failure never prints a stack trace).
package servicecli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/internal/buildinfo"
)

// Exit codes of the service binaries.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
)

// EnvironmentHelp is the environment section appended to the services'
// --help: the variables a first deployment needs.
const EnvironmentHelp = `
Environment:
  DATABASE_URL               PostgreSQL URL (database.url); TASKER_DATABASE__URL wins if both are set
  TASKER_ENV                 environment: test, development or production
                             (RAILS_ENV, RACK_ENV, APP_ENV are read after it)
  TASKER_CONFIG_DIR          directory with base/ and environments/ TOML (default configs/tasker;
                             the embedded defaults apply when it does not exist)
  TASKER_<SECTION>__<KEY>    any configuration key, e.g. TASKER_PGMQ__BATCH_SIZE=50 or
                             TASKER_WORKER__SKIP_INVALID_TEMPLATES=false
`

// UsageError is a wrong invocation (unknown flag or argument): exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// NoArgs rejects positional arguments with a usage error, so a stray word
// (`tasker-worker bogus`) is exit 2 instead of being ignored.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasAvailableSubCommands() {
			return Usagef("unknown command %q", args[0])
		}
		return Usagef("unexpected argument %q", args[0])
	}
	return nil
}

// NewRoot returns a root command for binary with the shared settings:
// --version from internal/buildinfo, errors left to Execute, flag errors as
// usage errors, the environment section in --help.
func NewRoot(binary, short, long string) *cobra.Command {
	root := &cobra.Command{
		Use:           binary,
		Short:         short,
		Long:          long,
		Version:       buildinfo.Get(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          NoArgs,
	}
	root.SetVersionTemplate(buildinfo.String(binary) + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	root.SetUsageTemplate(root.UsageTemplate() + EnvironmentHelp)
	return root
}

// Execute runs root with args and returns the exit code. The error of a
// failed command is printed as one line "<command path>: <error>" on stderr
// (newlines folded), plus a hint for usage errors.
func Execute(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	name := root.Name()
	if cmd != nil {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %s\n", name, OneLine(err.Error()))
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", name)
		return ExitUsage
	}
	return ExitFailed
}

// OneLine folds a multi-line message onto one line.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
