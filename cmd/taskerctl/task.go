package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

// newClient builds the API client from the global flags. The breaker is off:
// a one-shot command gains nothing from failing fast on later calls.
func (c *cli) newClient() (*httpclient.Client, error) {
	cfg := httpclient.DefaultConfig()
	cfg.BaseURL = c.global.url
	cfg.AuthToken = c.global.token
	cfg.Breaker.Enabled = false
	client, err := httpclient.New(cfg)
	if err != nil {
		return nil, inputErrorf("--url: %v", err)
	}
	return client, nil
}

// createFlags are the flags of `task create`.
type createFlags struct {
	namespace, name, version string
	context                  string
	initiator, source        string
	reason                   string
	wait                     bool
	timeout                  time.Duration
	pollInterval             time.Duration
}

func init() { registerGroup(taskCommand) }

// taskCommand is `taskerctl task …`.
func taskCommand(c *cli) *cobra.Command {
	cmd := groupCommand("task", "Create, inspect, wait for and cancel tasks")
	cmd.AddCommand(c.taskCreateCommand(), c.taskGetCommand(), c.taskListCommand(), c.taskCancelCommand(), c.taskStepsCommand())
	return cmd
}

func (c *cli) taskCreateCommand() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create --namespace NS --name NAME --version V [--context JSON|@FILE|@-] [--wait]",
		Short: "Create a task from a registered template (optionally wait for it)",
		Long: `Create a task from a registered template. The context must be a JSON object
and is checked against the template's input_schema by the orchestration.
With --wait the command polls the task until it finishes, printing progress
on standard error, and exits 0 only if the task completed.`,
		Example: `  taskerctl task create --namespace examples --name diamond_workflow --version 1.0.0 --context '{"even_number": 2}' --wait
  taskerctl task create --namespace examples --name diamond_workflow --version 1.0.0 --context @ctx.json -o json`,
		Args: c.noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.taskCreate(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.namespace, "namespace", "", "template namespace (required)")
	fl.StringVar(&f.name, "name", "", "template name (required)")
	fl.StringVar(&f.version, "version", "", "template version (required)")
	fl.StringVar(&f.context, "context", "", "task context: a JSON object, @FILE or @- for stdin")
	fl.StringVar(&f.initiator, "initiator", "", "who asked for the task")
	fl.StringVar(&f.source, "source-system", "", "the system submitting it")
	fl.StringVar(&f.reason, "reason", "", "why")
	fl.BoolVar(&f.wait, "wait", false, "wait for the task to finish, showing progress")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "overall limit of the command (create and --wait)")
	fl.DurationVar(&f.pollInterval, "poll-interval", c.pollInterval, "how often --wait polls the task")
	return cmd
}

func (c *cli) taskCreate(ctx context.Context, f createFlags) error {
	for _, req := range []struct{ flag, value string }{{"--namespace", f.namespace}, {"--name", f.name}, {"--version", f.version}} {
		if req.value == "" {
			return usageErrorf("task create: %s is required", req.flag)
		}
	}
	if f.timeout <= 0 || f.pollInterval <= 0 {
		return usageErrorf("task create: --timeout and --poll-interval must be positive")
	}
	taskCtx, err := readContext(f.context, c.stdin)
	if err != nil {
		return err
	}
	req := domain.TaskRequest{Namespace: f.namespace, Name: f.name, Version: f.version, Context: taskCtx,
		Initiator: f.initiator, SourceSystem: f.source, Reason: f.reason}
	if err := req.Validate(); err != nil {
		return inputErrorf("task create: %v", err)
	}
	client, err := c.newClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	created, err := client.CreateTask(ctx, req)
	if err != nil {
		return fmt.Errorf("create task %s/%s/%s: %w", f.namespace, f.name, f.version, err)
	}
	if !f.wait {
		return c.printCreated(created)
	}
	if !c.jsonOutput() {
		fmt.Fprintf(c.stderr, "created task %s (%s/%s/%s, %d steps); waiting up to %s\n",
			created.TaskUUID, f.namespace, f.name, f.version, created.StepCount, f.timeout)
	}
	return c.wait(ctx, client, created.TaskUUID, f.pollInterval, f.timeout, start)
}

func (c *cli) taskGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get TASK_UUID",
		Short: "Show one task with its step readiness",
		Args:  c.exactArgs("UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.onTask("task get", args[0], func(client *httpclient.Client, id uuid.UUID) error {
				task, err := client.GetTask(ctx, id)
				if err != nil {
					return fmt.Errorf("get task %s: %w", id, err)
				}
				return c.printTask(task)
			})
		},
	}
}

// onTask is the shape of the commands that take one task UUID: parse the
// UUID (an input error, exit 2), make a client, run.
func (c *cli) onTask(name, arg string, run func(*httpclient.Client, uuid.UUID) error) error {
	id, err := parseTaskUUID(name, arg)
	if err != nil {
		return err
	}
	client, err := c.newClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	return run(client, id)
}

func (c *cli) taskListCommand() *cobra.Command {
	var opts httpclient.ListTasksOptions
	cmd := &cobra.Command{
		Use:     "list [--namespace NS] [--status STATE] [--page N] [--per-page N]",
		Short:   "List tasks, newest first",
		Example: "  taskerctl task list --status error\n  taskerctl task list --namespace examples -o json",
		Args:    c.noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return c.taskList(cmd.Context(), opts) },
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Namespace, "namespace", "", "only this namespace")
	fl.StringVar(&opts.Status, "status", "", "only tasks in this state")
	fl.IntVar(&opts.Page, "page", 1, "page number, from 1")
	fl.IntVar(&opts.PerPage, "per-page", 25, "tasks per page, 1..100")
	states := make([]string, 0, len(domain.AllTaskStates))
	for _, s := range domain.AllTaskStates {
		states = append(states, string(s))
	}
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(states, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (c *cli) taskList(ctx context.Context, opts httpclient.ListTasksOptions) error {
	if opts.Status != "" && !domain.TaskState(opts.Status).Valid() {
		return usageErrorf("task list: --status %q is not a task state %v", opts.Status, domain.AllTaskStates)
	}
	if opts.Page < 1 || opts.PerPage < 1 || opts.PerPage > 100 {
		return usageErrorf("task list: --page must be ≥ 1 and --per-page in 1..100")
	}
	client, err := c.newClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	list, err := client.ListTasks(ctx, opts)
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	return c.printTaskList(list)
}

func (c *cli) taskCancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel TASK_UUID",
		Short: "Cancel a task (its unfinished steps are cancelled)",
		Args:  c.exactArgs("UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.onTask("task cancel", args[0], func(client *httpclient.Client, id uuid.UUID) error {
				task, err := client.CancelTask(ctx, id)
				if err != nil {
					return fmt.Errorf("cancel task %s: %w", id, err)
				}
				if c.jsonOutput() {
					return c.printJSON(task)
				}
				fmt.Fprintf(c.stdout, "task %s is %s\n", task.TaskUUID, task.Status)
				return nil
			})
		},
	}
}

func (c *cli) taskStepsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "steps TASK_UUID",
		Short: "List the task's workflow steps with their results",
		Args:  c.exactArgs("UUID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return c.onTask("task steps", args[0], func(client *httpclient.Client, id uuid.UUID) error {
				steps, err := client.ListSteps(ctx, id)
				if err != nil {
					return fmt.Errorf("list steps of task %s: %w", id, err)
				}
				return c.printSteps(steps)
			})
		},
	}
}
