// Command taskerctl is the Tasker command line: it creates, inspects, waits
// for and cancels tasks, lists templates and resolves steps through the
// orchestration HTTP API (contract §7), and validates task templates offline.
//
// Exit codes: 0 success (for --wait: the task completed; --help and
// --version too); 1 the task ended in error, was cancelled or resolved
// manually, the wait timed out, or the orchestration failed or was
// unreachable; 2 the invocation was wrong — unknown command, flag or
// argument, bad input (nothing is sent), or the server rejected the request
// as invalid (any 4xx except 408/429: an unknown template, task or UUID, a
// bad context, missing credentials). The split is "1: the system or the task
// failed, running again later may help" versus "2: fix the command".
//
// # Adding a command group
//
// The command tree is built with cobra, one file per command group
// (task.go, template.go, step.go, health.go, version.go). A new group — say
// `taskerctl dlq …` — is a new file dlq.go that registers itself and
// touches nothing else:
//
//	func init() { registerGroup(dlqCommand) }
//
//	func dlqCommand(c *cli) *cobra.Command {
//		cmd := groupCommand("dlq", "Inspect and requeue dead-lettered steps")
//		cmd.AddCommand(&cobra.Command{
//			Use:   "list",
//			Short: "List DLQ entries",
//			Args:  c.noArgs,
//			RunE: func(cmd *cobra.Command, _ []string) error {
//				client, err := c.newClient()
//				…
//				return c.print(entries, func() error { /* table */ })
//			},
//		})
//		return cmd
//	}
//
// Conventions: the global flags (--url, --token, --output) are persistent
// and checked once before any RunE; positional arguments are checked with
// c.noArgs / c.exactArgs so a stray argument is exit 2; errors made with
// usageErrorf / inputErrorf are exit 2, API 4xx answers are exit 2, anything
// else is exit 1; output goes through c.print (table or JSON).
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

	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/internal/buildinfo"
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

// Output formats of --output. "human" is accepted as an alias of table,
// the name earlier releases used.
const (
	outputTable = "table"
	outputJSON  = "json"
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
	stdin          io.Reader
	getenv         func(string) string
	// pollInterval is the default of --poll-interval.
	pollInterval time.Duration

	global globalFlags
}

// globalFlags are the root's persistent flags, accepted before or after the
// subcommand.
type globalFlags struct {
	url    string
	token  string
	output string
}

// commandGroups are the top-level commands, registered by each group's file
// in its init (see "Adding a command group" in the package comment).
var commandGroups []func(*cli) *cobra.Command

// registerGroup adds a top-level command group to every taskerctl tree.
func registerGroup(build func(*cli) *cobra.Command) { commandGroups = append(commandGroups, build) }

// run executes taskerctl with args (without the program name) and returns
// the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, stdin: os.Stdin, getenv: os.Getenv, pollInterval: 500 * time.Millisecond}
	return c.run(ctx, args)
}

func (c *cli) run(ctx context.Context, args []string) int {
	root := c.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(c.stderr, "taskerctl: %v\n", err)
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.usage {
		fmt.Fprintln(c.stderr, "run 'taskerctl --help' for usage")
	}
	return code
}

// rootCommand builds the whole command tree for this invocation.
func (c *cli) rootCommand() *cobra.Command {
	if c.stdin == nil {
		c.stdin = strings.NewReader("")
	}
	url := c.getenv(envBaseURL)
	if url == "" {
		url = defaultURL
	}
	root := &cobra.Command{
		Use:   "taskerctl",
		Short: "Command line for the Tasker orchestration API",
		Long: `taskerctl creates, inspects, waits for and cancels Tasker tasks, lists the
registered templates and resolves steps through the orchestration HTTP API,
and validates task template files offline.`,
		Example: `  taskerctl task create --namespace examples --name diamond_workflow --version 1.0.0 \
    --context '{"even_number": 2}' --wait
  taskerctl task list --status error --output json
  taskerctl template validate templates/*.yaml
  source <(taskerctl completion bash)`,
		Version:       buildinfo.Get(),
		SilenceErrors: true, // run prints the one error line and picks the exit code
		SilenceUsage:  true,
		Args:          c.groupArgs,
		RunE:          func(*cobra.Command, []string) error { return usageErrorf("missing command") },
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return c.checkGlobal()
		},
	}
	root.SetVersionTemplate(buildinfo.String("taskerctl") + "\n")
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetIn(c.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&c.global.url, "url", url, "orchestration base URL (env "+envBaseURL+")")
	pf.StringVar(&c.global.token, "token", c.getenv(envAuthToken), "bearer token (env "+envAuthToken+")")
	pf.StringVarP(&c.global.output, "output", "o", outputTable, "output format: table or json")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{outputTable, outputJSON}, cobra.ShellCompDirectiveNoFileComp))
	root.AddGroup(&cobra.Group{ID: "api", Title: "Orchestration API commands:"})
	for _, build := range commandGroups {
		cmd := build(c)
		if cmd.GroupID == "" && cmd.Name() != "version" {
			cmd.GroupID = "api"
		}
		root.AddCommand(cmd)
	}
	return root
}

// groupCommand is a command that only holds subcommands: run bare, or with
// an unknown subcommand, it is a usage error (exit 2) instead of cobra's
// silent help.
func groupCommand(use, short string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		names := make([]string, 0, len(cmd.Commands()))
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		list := strings.Join(names, ", ")
		if len(args) == 0 {
			return usageErrorf("%s: missing subcommand (%s)", use, list)
		}
		return usageErrorf("%s: unknown subcommand %q (%s)", use, args[0], list)
	}
	return cmd
}

// groupArgs rejects an unknown top-level command.
func (c *cli) groupArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q", args[0])
	}
	return nil
}

// noArgs rejects any positional argument.
func (c *cli) noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s: unexpected argument %q", strings.TrimPrefix(cmd.CommandPath(), "taskerctl "), args[0])
	}
	return nil
}

// exactArgs wants exactly the named positional arguments.
func (c *cli) exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		name := strings.TrimPrefix(cmd.CommandPath(), "taskerctl ")
		if len(args) < len(names) {
			return usageErrorf("%s: missing %s", name, strings.Join(names[len(args):], " "))
		}
		if len(args) > len(names) {
			return usageErrorf("%s: unexpected argument %q", name, args[len(names)])
		}
		return nil
	}
}

// minArgs wants at least one argument named name (e.g. "FILE...").
func (c *cli) minArgs(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("%s: missing %s", strings.TrimPrefix(cmd.CommandPath(), "taskerctl "), name)
		}
		return nil
	}
}

func (c *cli) checkGlobal() error {
	switch strings.ToLower(c.global.output) {
	case outputTable, "human":
		c.global.output = outputTable
		return nil
	case outputJSON:
		c.global.output = outputJSON
		return nil
	default:
		return usageErrorf("--output must be table or json, got %q", c.global.output)
	}
}

func (c *cli) jsonOutput() bool { return c.global.output == outputJSON }
