// Package handler is the public SDK for writing Go step handlers.
//
// A handler is registered under the step's `handler.callable` string from
// the task template (contract §9.1). The worker claims the step, builds a
// StepContext (task, context, inputs, environment-resolved step definition,
// dependency results) and calls Handle. Returning a Success completes the
// step; returning an error fails it. Errors built with Permanent/Retryable
// (or any error wrapping an *Error) control retryable, error_type,
// error_code, context and retry delays; any other error is a retryable
// failure with error_type "handler_error" (contract §9.2 defaults retryable
// to true so transient bugs do not kill a task).
//
// Handlers must honour ctx: it is cancelled at the step's timeout_seconds
// and at worker shutdown, and the outcome is then recorded as a timeout or
// worker_shutdown failure regardless of what the handler returns.
package handler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Handler runs one step.
type Handler interface {
	// Handle executes the step described by sc. It must return promptly when
	// ctx is done.
	Handle(ctx context.Context, sc *StepContext) (Success, error)
}

// HandlerFunc adapts a plain function to Handler.
type HandlerFunc func(ctx context.Context, sc *StepContext) (Success, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, sc *StepContext) (Success, error) { return f(ctx, sc) }

// Success is a successful outcome: Result is stored as the step's `result`
// (any JSON-marshalable value, or a json.RawMessage used verbatim) and
// Metadata lands in `metadata.custom` of the StepExecutionResult.
type Success struct {
	// Result becomes the StepExecutionResult's result.
	Result any
	// Metadata becomes metadata.custom.
	Metadata map[string]any
}

// Succeed returns a Success carrying result and no metadata.
func Succeed(result any) Success { return Success{Result: result} }

// WithMetadata returns a copy of s with key set in its custom metadata.
func (s Success) WithMetadata(key string, value any) Success {
	m := make(map[string]any, len(s.Metadata)+1)
	for k, v := range s.Metadata {
		m[k] = v
	}
	m[key] = value
	s.Metadata = m
	return s
}

// ErrInvalidRegistration is wrapped by Register errors (empty callable, nil
// handler, duplicate callable) so callers can tell misuse from other failures.
var ErrInvalidRegistration = errors.New("invalid handler registration")

// Registry maps callables to handlers. The zero value is not usable; use
// NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	handlers map[string]Handler
}

// NewRegistry returns an empty registry. Tests and embedders that want
// isolation from the process-wide Default use their own.
func NewRegistry() *Registry { return &Registry{handlers: map[string]Handler{}} }

// Register adds h under callable. Registering the same callable twice is an
// error rather than a silent replacement, because two packages claiming one
// callable is always a wiring mistake.
func (r *Registry) Register(callable string, h Handler) error {
	if callable == "" {
		return fmt.Errorf("register handler: %w: empty callable", ErrInvalidRegistration)
	}
	if h == nil {
		return fmt.Errorf("register handler %q: %w: nil handler", callable, ErrInvalidRegistration)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[callable]; dup {
		return fmt.Errorf("register handler %q: %w: callable already registered", callable, ErrInvalidRegistration)
	}
	r.handlers[callable] = h
	return nil
}

// Lookup returns the handler registered under callable.
func (r *Registry) Lookup(callable string) (Handler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.handlers[callable]
	return h, ok
}

// Callables lists the registered callables in sorted order.
func (r *Registry) Callables() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.handlers))
	for c := range r.handlers {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Default is the process-wide registry the worker binary serves from.
var Default = NewRegistry()

// Register adds h to Default under callable.
func Register(callable string, h Handler) error { return Default.Register(callable, h) }

// MustRegister is Register for package init functions: a registration
// mistake there is a programming error, so it panics.
func MustRegister(callable string, h Handler) {
	if err := Register(callable, h); err != nil {
		panic(err)
	}
}
