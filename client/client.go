// Package client is the Go client other services use to drive Tasker
// through the orchestration HTTP API: create a task, read it, wait for it
// to finish, list and cancel tasks, resolve a step. It is the same client
// the worker hands its handlers (StepContext.CreateTask) and taskerctl
// uses, with retries, a circuit breaker and request ids, plus
// WaitForCompletion.
//
//	c, err := client.New(client.Config{BaseURL: "http://orchestration:8080"})
//	created, err := c.CreateTask(ctx, client.TaskRequest{Namespace: "billing",
//		Name: "charge_order", Version: "1.0.0", Context: json.RawMessage(`{"order_id": 42}`)})
//	task, err := c.WaitForCompletion(ctx, created.TaskUUID, client.WaitOptions{})
package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

// Types of the API, re-exported so callers import one package.
type (
	// Config configures the client (base URL, token, timeouts, retries,
	// breaker); start from DefaultConfig or set BaseURL only.
	Config = httpclient.Config
	// TaskRequest is the body of CreateTask (contract §7.2).
	TaskRequest = domain.TaskRequest
	// TaskCreated is CreateTask's answer: the task's UUID and its steps.
	TaskCreated = domain.TaskCreationResponse
	// Task is one task with its step counts and readiness.
	Task = httpclient.TaskResponse
	// TaskList is one page of ListTasks.
	TaskList = httpclient.TaskList
	// ListTasksOptions filters and pages ListTasks.
	ListTasksOptions = httpclient.ListTasksOptions
	// Step is one workflow step with its result.
	Step = httpclient.StepResponse
	// StepResolution is the body of ResolveStep.
	StepResolution = httpclient.StepResolution
	// APIError is a non-2xx answer (errors.As it for the status and code).
	APIError = httpclient.APIError
)

// WithIdempotencyKey returns a context whose CreateTask sends key as the
// Idempotency-Key: the orchestration creates one task per key and answers a
// repeat with the first task, so a create can be retried across process
// restarts. Without it, CreateTask still sends one generated key for all
// the HTTP retries of a single call.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return httpclient.WithIdempotencyKey(ctx, key)
}

// DefaultConfig returns the defaults (30 s per attempt, 3 retries, breaker
// on); set BaseURL.
func DefaultConfig() Config { return httpclient.DefaultConfig() }

// Defaults of WaitOptions.
const (
	// DefaultWaitInitialInterval is the first poll delay: short, since many
	// workflows finish within a second.
	DefaultWaitInitialInterval = 100 * time.Millisecond
	// DefaultWaitMaxInterval caps the poll delay so a long task is still
	// noticed within seconds of finishing.
	DefaultWaitMaxInterval = 5 * time.Second
)

// Client talks to one orchestration. It is safe for concurrent use; every
// method of the underlying HTTP client (CreateTask, GetTask, ListTasks,
// CancelTask, ListSteps, GetStep, ResolveStep, ListTemplates, Health) is
// available on it.
type Client struct {
	*httpclient.Client
}

// New builds a client; cfg.BaseURL is required, zero fields take the
// defaults.
func New(cfg Config) (*Client, error) {
	c, err := httpclient.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Client: c}, nil
}

// WaitOptions tunes WaitForCompletion. Bound the total wait with ctx.
type WaitOptions struct {
	// InitialInterval is the first delay between polls (default
	// DefaultWaitInitialInterval); delays grow exponentially with jitter.
	InitialInterval time.Duration
	// MaxInterval caps the delay (default DefaultWaitMaxInterval).
	MaxInterval time.Duration
}

// TaskNotCompleteError is returned by WaitForCompletion when the task
// finished without completing: error (a step failed for good — an operator
// may still reset or resolve it), cancelled or resolved_manually.
type TaskNotCompleteError struct {
	// Task is the task as last read.
	Task Task
}

// Error names the task and its state.
func (e *TaskNotCompleteError) Error() string {
	return fmt.Sprintf("task %s ended %s (%d/%d steps complete, %d failed)", e.Task.TaskUUID, e.Task.Status,
		e.Task.CompletedSteps, e.Task.TotalSteps, e.Task.FailedSteps)
}

// errStillRunning makes backoff poll again.
var errStillRunning = errors.New("task still running")

// WaitForCompletion polls the task, with exponential backoff, until it is
// complete (returned with a nil error), ends otherwise (returned with a
// *TaskNotCompleteError), or ctx ends (ctx's error, wrapped, with the task
// as last seen). API errors other than those the HTTP client already
// retried end the wait at once.
func (c *Client) WaitForCompletion(ctx context.Context, taskUUID uuid.UUID, opts WaitOptions) (Task, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = opts.InitialInterval
	if b.InitialInterval <= 0 {
		b.InitialInterval = DefaultWaitInitialInterval
	}
	b.MaxInterval = opts.MaxInterval
	if b.MaxInterval <= 0 {
		b.MaxInterval = DefaultWaitMaxInterval
	}
	var last Task
	task, err := backoff.Retry(ctx, func() (Task, error) {
		t, err := c.GetTask(ctx, taskUUID)
		if err != nil {
			if ctx.Err() != nil {
				return t, backoff.Permanent(ctx.Err())
			}
			return t, backoff.Permanent(err)
		}
		last = t
		switch domain.TaskState(t.Status) {
		case domain.TaskComplete:
			return t, nil
		case domain.TaskError, domain.TaskCancelled, domain.TaskResolvedManually:
			return t, backoff.Permanent(&TaskNotCompleteError{Task: t})
		}
		return t, errStillRunning
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0))
	if err != nil {
		if errors.Is(err, errStillRunning) && ctx.Err() != nil {
			err = ctx.Err()
		}
		var nc *TaskNotCompleteError
		if errors.As(err, &nc) {
			return nc.Task, err
		}
		return last, fmt.Errorf("wait for task %s (last seen %s): %w", taskUUID, statusOf(last), err)
	}
	return task, nil
}

func statusOf(t Task) string {
	if t.Status == "" {
		return "never"
	}
	return t.Status
}
