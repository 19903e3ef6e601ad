package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

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

func (c *cli) taskCreate(ctx context.Context, args []string) error {
	var f createFlags
	fs := c.newFlagSet("task create")
	fs.StringVar(&f.namespace, "namespace", "", "template namespace (required)")
	fs.StringVar(&f.name, "name", "", "template name (required)")
	fs.StringVar(&f.version, "version", "", "template version (required)")
	fs.StringVar(&f.context, "context", "", "task context: a JSON object, @FILE or @- for stdin")
	fs.StringVar(&f.initiator, "initiator", "", "who asked for the task")
	fs.StringVar(&f.source, "source-system", "", "the system submitting it")
	fs.StringVar(&f.reason, "reason", "", "why")
	fs.BoolVar(&f.wait, "wait", false, "wait for the task to finish, showing progress")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "overall limit of the command (create and --wait)")
	fs.DurationVar(&f.pollInterval, "poll-interval", c.pollInterval, "how often --wait polls the task")
	if _, err := c.parseCommand(fs, args, 0, 0, ""); err != nil {
		return err
	}
	for _, req := range []struct{ flag, value string }{{"--namespace", f.namespace}, {"--name", f.name}, {"--version", f.version}} {
		if req.value == "" {
			return usageErrorf("task create: %s is required", req.flag)
		}
	}
	if f.timeout <= 0 || f.pollInterval <= 0 {
		return usageErrorf("task create: --timeout and --poll-interval must be positive")
	}
	taskCtx, err := readContext(f.context, os.Stdin)
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

func (c *cli) taskGet(ctx context.Context, args []string) error {
	return c.onTask(ctx, "task get", args, func(client *httpclient.Client, id uuid.UUID) error {
		task, err := client.GetTask(ctx, id)
		if err != nil {
			return fmt.Errorf("get task %s: %w", id, err)
		}
		return c.printTask(task)
	})
}

// onTask is the shape of the commands that take one task UUID: parse the
// flags and the UUID (usage errors, exit 2), make a client, run.
func (c *cli) onTask(ctx context.Context, name string, args []string, run func(*httpclient.Client, uuid.UUID) error) error {
	fs := c.newFlagSet(name)
	pos, err := c.parseCommand(fs, args, 1, 1, "UUID")
	if err != nil {
		return err
	}
	id, err := parseTaskUUID(name, pos[0])
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

func (c *cli) taskList(ctx context.Context, args []string) error {
	var opts httpclient.ListTasksOptions
	fs := c.newFlagSet("task list")
	fs.StringVar(&opts.Namespace, "namespace", "", "only this namespace")
	fs.StringVar(&opts.Status, "status", "", "only tasks in this state")
	fs.IntVar(&opts.Page, "page", 1, "page number, from 1")
	fs.IntVar(&opts.PerPage, "per-page", 25, "tasks per page, 1..100")
	if _, err := c.parseCommand(fs, args, 0, 0, ""); err != nil {
		return err
	}
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

func (c *cli) taskCancel(ctx context.Context, args []string) error {
	return c.onTask(ctx, "task cancel", args, func(client *httpclient.Client, id uuid.UUID) error {
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
}

func (c *cli) taskSteps(ctx context.Context, args []string) error {
	return c.onTask(ctx, "task steps", args, func(client *httpclient.Client, id uuid.UUID) error {
		steps, err := client.ListSteps(ctx, id)
		if err != nil {
			return fmt.Errorf("list steps of task %s: %w", id, err)
		}
		return c.printSteps(steps)
	})
}

func (c *cli) health(ctx context.Context, args []string) error {
	fs := c.newFlagSet("health")
	if _, err := c.parseCommand(fs, args, 0, 0, ""); err != nil {
		return err
	}
	client, err := c.newClient()
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	start := time.Now()
	if err := client.Health(ctx); err != nil {
		return fmt.Errorf("orchestration at %s is not healthy: %w", client.BaseURL(), err)
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	if c.jsonOutput() {
		return c.printJSON(map[string]any{"status": "ok", "url": client.BaseURL(), "elapsed_ms": elapsed.Milliseconds()})
	}
	fmt.Fprintf(c.stdout, "orchestration at %s: ok (%s)\n", client.BaseURL(), elapsed)
	return nil
}
