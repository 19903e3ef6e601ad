// Command taskerctl is the Tasker command line: it creates, inspects, waits
// for and cancels tasks through the orchestration HTTP API (contract §7) and
// validates task templates offline.
//
// Exit codes: 0 success (for --wait: the task completed); 1 the task ended in
// error, was cancelled or resolved manually, the wait timed out, or the
// orchestration failed or was unreachable; 2 the invocation was wrong — bad
// flags or input (nothing is sent), or the server rejected the request as
// invalid (any 4xx except 408/429: an unknown template, task or UUID, a bad
// context, missing credentials). The split is "1: the system or the task
// failed, running again later may help" versus "2: fix the command".
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit codes (see the package comment).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// Environment variables supplying flag defaults; the names are those of the
// orchestration_api.* configuration keys so one environment serves both.
const (
	envBaseURL   = "TASKER_ORCHESTRATION_API__BASE_URL"
	envAuthToken = "TASKER_ORCHESTRATION_API__AUTH_TOKEN"
	defaultURL   = "http://localhost:8080"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli is one invocation: its streams, environment and tunables, so tests can
// run it in-process.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// pollInterval is the default of --poll-interval.
	pollInterval time.Duration

	global globalFlags
}

// globalFlags are accepted before or after the subcommand.
type globalFlags struct {
	url    string
	token  string
	output string
}

// run executes taskerctl with args (without the program name) and returns
// the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv, pollInterval: 500 * time.Millisecond}
	return c.run(ctx, args)
}

func (c *cli) run(ctx context.Context, args []string) int {
	err := c.dispatch(ctx, args)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(c.stderr, "taskerctl: %v\n", err)
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.usage {
		fmt.Fprintln(c.stderr, "run 'taskerctl help' for usage")
	}
	return code
}

const usageText = `usage: taskerctl [--url URL] [--token TOKEN] [--output human|json] COMMAND

commands:
  task create --namespace NS --name NAME --version V [--context JSON|@FILE]
              [--initiator S] [--source-system S] [--reason S]
              [--wait] [--timeout 5m] [--poll-interval 500ms]
  task get UUID              one task with its step readiness
  task list [--namespace NS] [--status STATE] [--page N] [--per-page N]
  task cancel UUID
  task steps UUID            the task's workflow steps with their results
  template validate FILE...  offline: the worker's template validation
  health                     GET /health of the orchestration

global flags (also accepted after the command):
  --url     orchestration base URL (default $` + envBaseURL + ` or ` + defaultURL + `)
  --token   bearer token (default $` + envAuthToken + `)
  --output  human (default) or json

exit codes: 0 ok / task complete; 1 task failed, cancelled or timed out, or the
orchestration failed; 2 bad invocation or input, or the server rejected it (4xx)
`

func (c *cli) dispatch(ctx context.Context, args []string) error {
	fs := c.newFlagSet("taskerctl")
	rest, err := parseInterleaved(fs, args, true)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usageErrorf("missing command")
	}
	if err := c.checkGlobal(); err != nil {
		return err
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(c.stdout, usageText)
		return nil
	case "health":
		return c.health(ctx, rest)
	case "task":
		return c.task(ctx, rest)
	case "template":
		return c.template(rest)
	default:
		return usageErrorf("unknown command %q", cmd)
	}
}

func (c *cli) task(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("task: missing subcommand (create, get, list, cancel, steps)")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return c.taskCreate(ctx, rest)
	case "get":
		return c.taskGet(ctx, rest)
	case "list":
		return c.taskList(ctx, rest)
	case "cancel":
		return c.taskCancel(ctx, rest)
	case "steps":
		return c.taskSteps(ctx, rest)
	default:
		return usageErrorf("task: unknown subcommand %q (create, get, list, cancel, steps)", sub)
	}
}

func (c *cli) template(args []string) error {
	if len(args) == 0 || args[0] != "validate" {
		return usageErrorf("template: the only subcommand is validate FILE...")
	}
	return c.templateValidate(args[1:])
}

func (c *cli) checkGlobal() error {
	switch strings.ToLower(c.global.output) {
	case "human", "json":
		c.global.output = strings.ToLower(c.global.output)
		return nil
	default:
		return usageErrorf("--output must be human or json, got %q", c.global.output)
	}
}

func (c *cli) jsonOutput() bool { return c.global.output == "json" }
