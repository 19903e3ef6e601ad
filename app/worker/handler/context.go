package handler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/domain"
)

// ErrMissing is wrapped by accessors when the requested key or dependency is
// absent, so handlers can tell "not there" (errors.Is) from "wrong shape".
var ErrMissing = errors.New("missing value")

// StepContext is everything a handler may read about its step (contract
// §9.1). Accessors decode JSON into the caller's type; numbers decode with
// UseNumber semantics when the target is `any`, so large integers survive.
type StepContext struct {
	task        domain.TaskInfo
	step        domain.StepInfo
	definition  domain.StepDefinition
	deps        map[string]json.RawMessage
	attempts    int
	retryLimit  int
	deadline    time.Time
	contextKeys map[string]json.RawMessage
	log         *zap.Logger
	tasks       TaskCreator
}

// TaskCreator creates tasks through the orchestration API (contract §1.7.3:
// a worker initializes tasks through its orchestration client). The SDK's
// worker wires its HTTP client; ports.OrchestrationAPI satisfies it.
type TaskCreator interface {
	CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error)
}

// IdempotentTaskCreator is a TaskCreator that takes an idempotency key: the
// orchestration creates one task per key and answers a repeat with the
// first task. StepContext.CreateTask uses it when available so that a step
// retried after a crash or a lost response does not create its child twice.
type IdempotentTaskCreator interface {
	TaskCreator
	CreateTaskWithKey(ctx context.Context, req domain.TaskRequest, key string) (domain.TaskCreationResponse, error)
}

// ErrNoTaskCreator is returned by StepContext.CreateTask when the worker was
// built without an orchestration client.
var ErrNoTaskCreator = errors.New("this worker has no orchestration client to create tasks (orchestration_api.base_url)")

// ContextOption adds a service to a StepContext.
type ContextOption func(*StepContext)

// WithLogger gives the handler a logger; NewStepContext adds the task, step
// and namespace ids to it.
func WithLogger(l *zap.Logger) ContextOption { return func(c *StepContext) { c.log = l } }

// WithTaskCreator lets the handler create tasks (StepContext.CreateTask).
func WithTaskCreator(t TaskCreator) ContextOption { return func(c *StepContext) { c.tasks = t } }

// NewStepContext builds the handler's view of an execution event. It fails
// when the task context is present but not a JSON object, which the
// orchestration's validation should have made impossible.
func NewStepContext(ev domain.StepExecutionEvent, opts ...ContextOption) (*StepContext, error) {
	sc := &StepContext{
		task:       ev.Task,
		step:       ev.Step,
		definition: ev.StepDefinition,
		deps:       ev.DependencyResults,
		attempts:   ev.Claim.Attempts,
		retryLimit: ev.Claim.RetryLimit,
		deadline:   ev.Deadline,
	}
	if sc.deps == nil {
		sc.deps = map[string]json.RawMessage{}
	}
	if raw := bytes.TrimSpace(ev.Task.Context); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &sc.contextKeys); err != nil {
			return nil, fmt.Errorf("task %s context is not a JSON object: %w", ev.Task.TaskUUID, err)
		}
	}
	for _, o := range opts {
		o(sc)
	}
	if sc.log == nil {
		sc.log = zap.NewNop()
	}
	sc.log = sc.log.With(zap.Stringer("task_uuid", ev.Task.TaskUUID), zap.Stringer("step_uuid", ev.Step.WorkflowStepUUID),
		zap.String("namespace", ev.Task.NamespaceName), zap.String("task_name", ev.Task.TaskName), zap.String("step_name", ev.Step.Name),
		zap.Int("attempt", ev.Claim.Attempts))
	return sc, nil
}

// ChildTaskKey is the idempotency key StepContext.CreateTask sends: the
// step's UUID and a SHA-256 of the request's template and context, so it is
// stable across runs of the step and distinct per request.
func ChildTaskKey(step uuid.UUID, req domain.TaskRequest) string {
	h := sha256.New()
	for _, part := range []string{req.Namespace, req.Name, req.Version} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(bytes.TrimSpace(req.Context))
	return "step-" + step.String() + "-" + hex.EncodeToString(h.Sum(nil))[:32]
}

// Logger is the worker's logger with this step's ids (task_uuid, step_uuid,
// namespace, task_name, step_name, attempt), so handler logs can be joined
// with the worker's own lines and the API's views.
func (c *StepContext) Logger() *zap.Logger { return c.log }

// CreateTask creates a task through the worker's orchestration client —
// typically a child workflow. Fill in Initiator/SourceSystem/Reason to make
// the lineage visible; the parent's ids are a good Reason. It fails with
// ErrNoTaskCreator when the worker has no client.
//
// The request is idempotent per step: its key is derived from this step's
// UUID and the request (ChildTaskKey), so when the step runs again — a
// retry, or a redelivery after a worker crash — the same request returns
// the child created the first time instead of a second one, while
// different requests from one step create different tasks.
func (c *StepContext) CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error) {
	if c.tasks == nil {
		return domain.TaskCreationResponse{}, ErrNoTaskCreator
	}
	var resp domain.TaskCreationResponse
	var err error
	if ic, ok := c.tasks.(IdempotentTaskCreator); ok {
		resp, err = ic.CreateTaskWithKey(ctx, req, ChildTaskKey(c.step.WorkflowStepUUID, req))
	} else {
		resp, err = c.tasks.CreateTask(ctx, req)
	}
	if err != nil {
		return resp, fmt.Errorf("create task %s/%s/%s: %w", req.Namespace, req.Name, req.Version, err)
	}
	return resp, nil
}

// Task returns the task the step belongs to.
func (c *StepContext) Task() domain.TaskInfo { return c.task }

// TaskUUID is a shortcut for Task().TaskUUID.
func (c *StepContext) TaskUUID() uuid.UUID { return c.task.TaskUUID }

// Step returns the workflow step row as handlers see it.
func (c *StepContext) Step() domain.StepInfo { return c.step }

// StepUUID is a shortcut for Step().WorkflowStepUUID.
func (c *StepContext) StepUUID() uuid.UUID { return c.step.WorkflowStepUUID }

// StepName is the template step name.
func (c *StepContext) StepName() string { return c.step.Name }

// Definition is the template step definition resolved for the worker's
// environment (D-q): handler initialization, dependencies, retry, timeout.
func (c *StepContext) Definition() domain.StepDefinition { return c.definition }

// HandlerConfig is the step's handler.initialization (environment-resolved).
func (c *StepContext) HandlerConfig() map[string]any { return c.definition.Handler.Initialization }

// Attempts counts this run: 1 on the first execution (D-s).
func (c *StepContext) Attempts() int { return c.attempts }

// RetryLimit is the maximum number of attempts of this step.
func (c *StepContext) RetryLimit() int { return c.retryLimit }

// IsLastAttempt reports whether a retryable failure would still not be retried.
func (c *StepContext) IsLastAttempt() bool { return c.attempts >= c.retryLimit }

// Deadline returns the time by which the handler must finish (timeout_seconds),
// and false when the step has no timeout.
func (c *StepContext) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

// ContextRaw returns the raw JSON of one top-level task context field.
func (c *StepContext) ContextRaw(key string) (json.RawMessage, bool) {
	v, ok := c.contextKeys[key]
	return v, ok
}

// ContextValue decodes the task context field key into dst.
func (c *StepContext) ContextValue(key string, dst any) error {
	return decodeEntry(c.contextKeys, key, fmt.Sprintf("task context field %q", key), dst)
}

// Inputs decodes the step's stored inputs (template handler.initialization
// at task creation) into dst; ErrMissing when the step has none.
func (c *StepContext) Inputs(dst any) error {
	raw := bytes.TrimSpace(c.step.Inputs)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return fmt.Errorf("step inputs: %w", ErrMissing)
	}
	if err := decode(raw, dst); err != nil {
		return fmt.Errorf("step inputs: %w", err)
	}
	return nil
}

// DependencyNames lists the steps (all processed transitive ancestors) whose
// results are available, sorted.
func (c *StepContext) DependencyNames() []string {
	out := make([]string, 0, len(c.deps))
	for k := range c.deps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DependencyRaw returns the raw result of the named ancestor step.
func (c *StepContext) DependencyRaw(step string) (json.RawMessage, bool) {
	v, ok := c.deps[step]
	return v, ok
}

// DependencyResult decodes the named ancestor's result (its handler's
// `result`, unwrapped per D-r) into dst.
func (c *StepContext) DependencyResult(step string, dst any) error {
	return decodeEntry(c.deps, step, fmt.Sprintf("dependency result %q", step), dst)
}

// decodeEntry decodes m[key] into dst, with ErrMissing when m has no key;
// label names the value in the error, so a handler's log says which of
// the task context or the dependency results lacked it.
func decodeEntry(m map[string]json.RawMessage, key, label string, dst any) error {
	raw, ok := m[key]
	if !ok {
		return fmt.Errorf("%s: %w", label, ErrMissing)
	}
	if err := decode(raw, dst); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

func decode(raw json.RawMessage, dst any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(dst)
}

// ContextAs is ContextValue returning the decoded value, for one-line reads:
//
//	n, err := handler.ContextAs[int64](sc, "even_number")
func ContextAs[T any](sc *StepContext, key string) (T, error) {
	var v T
	err := sc.ContextValue(key, &v)
	return v, err
}

// DependencyAs is DependencyResult returning the decoded value.
func DependencyAs[T any](sc *StepContext, step string) (T, error) {
	var v T
	err := sc.DependencyResult(step, &v)
	return v, err
}

// InputsAs is Inputs returning the decoded value.
func InputsAs[T any](sc *StepContext) (T, error) {
	var v T
	err := sc.Inputs(&v)
	return v, err
}
