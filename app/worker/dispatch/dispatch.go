// Package dispatch runs Go step handlers for execution events taken from
// the event bus, in a bounded pool, and publishes each outcome back as a
// completion event correlated by the execution's event id (contract §9.2,
// §9.3 step 4). It enforces timeout_seconds, recovers panics and maps
// unknown callables and missing step definitions to retryable failures, so
// every claimed step gets exactly one outcome.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/outcome"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults of the dispatcher.
const (
	// DefaultMaxConcurrent mirrors worker.max_concurrent_steps.
	DefaultMaxConcurrent = 10
	// DefaultHandlerExitWait is how long Run waits, after its context ends,
	// for cancelled handlers to return. A handler that ignores its context
	// is abandoned after that, so shutdown cannot hang on it.
	DefaultHandlerExitWait = 5 * time.Second
	// idleTick is how often an idle dispatcher still reports liveness.
	idleTick = time.Second
)

// Handlers finds the Go handler of a callable; *handler.Registry satisfies it.
type Handlers interface {
	Lookup(callable string) (handler.Handler, bool)
}

// Config tunes the dispatcher.
type Config struct {
	// MaxConcurrent bounds handlers running at once (worker.max_concurrent_steps).
	// A running handler holds its slot until it returns, even past its
	// deadline, so the bound holds for real goroutines.
	MaxConcurrent int
	// HandlerExitWait bounds waiting for cancelled handlers at shutdown.
	HandlerExitWait time.Duration
}

// Deps are the dispatcher's collaborators.
type Deps struct {
	// Bus supplies execution events and takes completion events.
	Bus ports.EventBus
	// Handlers finds the Go handler of a callable.
	Handlers Handlers
	// Results builds the StepExecutionResults (the pipeline's builder).
	Results outcome.Builder
	// Clock stamps start and completion times; nil means the system clock.
	Clock ports.Clock
	// Logger records panics and undeliverable completions; nil discards.
	Logger *zap.Logger
	// Tick reports loop liveness (domain.LoopDispatcher); optional.
	Tick func(string)
	// Tasks lets handlers create tasks (StepContext.CreateTask); nil means
	// they cannot.
	Tasks handler.TaskCreator
}

// Dispatcher consumes execution events and runs handlers.
type Dispatcher struct {
	cfg   Config
	d     Deps
	slots chan struct{}
	wg    sync.WaitGroup
}

// New builds a dispatcher; Bus and Handlers are required.
func New(cfg Config, d Deps) (*Dispatcher, error) {
	if d.Bus == nil || d.Handlers == nil {
		return nil, errors.New("dispatch: Bus and Handlers are required")
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.HandlerExitWait <= 0 {
		cfg.HandlerExitWait = DefaultHandlerExitWait
	}
	if d.Clock == nil {
		d.Clock = ports.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Tick == nil {
		d.Tick = func(string) {}
	}
	return &Dispatcher{cfg: cfg, d: d, slots: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Running is the number of handlers currently running.
func (x *Dispatcher) Running() int { return len(x.slots) }

// Run takes execution events until ctx ends. Ending ctx cancels the
// contexts of running handlers (shutdown); Run then waits up to
// HandlerExitWait for them and returns.
func (x *Dispatcher) Run(ctx context.Context) {
	defer x.waitHandlers()
	for {
		x.d.Tick(domain.LoopDispatcher)
		select {
		case <-ctx.Done():
			return
		case <-x.d.Clock.After(idleTick):
			continue
		case ev := <-x.d.Bus.Executions():
			select {
			case x.slots <- struct{}{}:
			case <-ctx.Done():
				// The pipeline fails steps still in flight at shutdown.
				return
			}
			x.wg.Add(1)
			go x.execute(ctx, ev)
		}
	}
}

func (x *Dispatcher) waitHandlers() {
	done := make(chan struct{})
	go func() { x.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(x.cfg.HandlerExitWait):
		x.d.Logger.Error("handlers did not return after cancellation; abandoning them", zap.Int("running", x.Running()))
	}
}

type handlerResult struct {
	success  handler.Success
	err      error
	panicked any
	stack    []byte
}

// execute runs one event and publishes its completion. The slot taken by
// Run is released when the handler goroutine returns (or at once when no
// handler runs).
func (x *Dispatcher) execute(ctx context.Context, ev domain.StepExecutionEvent) {
	defer x.wg.Done()
	started := x.d.Clock.Now()
	claim := ev.Claim
	hctx := ctx
	var span trace.Span
	if lifecycle.TracingEnabled() {
		// The handler runs inside this span, so user code can add child
		// spans with the handler's context; the completion continues it.
		hctx, span = lifecycle.Tracer(lifecycle.WorkerTracer).Start(lifecycle.FromCarrier(ctx, ev.Claim.TraceContext), "step.handler",
			trace.WithAttributes(attribute.String("tasker.task_uuid", ev.Claim.TaskUUID.String()),
				attribute.String("tasker.step_uuid", ev.Claim.StepUUID.String()), attribute.String("tasker.step", ev.Claim.StepName),
				attribute.String("tasker.handler", ev.StepDefinition.Handler.Callable), attribute.Int("tasker.attempt", ev.Claim.Attempts)))
	}
	res, handed := x.run(hctx, ev, started)
	if !handed {
		<-x.slots
	}
	if span != nil {
		if !res.Success {
			msg := "step failed"
			if res.Error != nil {
				msg = res.Error.Message
			}
			span.SetStatus(codes.Error, msg)
		}
		claim.TraceContext = lifecycle.Carrier(hctx)
		span.End()
	}
	if err := x.d.Bus.PublishCompletion(ctx, domain.StepCompletionEvent{EventID: ev.EventID, Claim: claim, Result: res}); err != nil {
		x.d.Logger.Warn("completion not published; the pipeline fails the step at shutdown or correlation timeout",
			zap.Stringer("step_uuid", ev.Claim.StepUUID), zap.Error(err))
	}
}

// run produces the step's result. handed reports whether a handler
// goroutine took over the slot.
func (x *Dispatcher) run(ctx context.Context, ev domain.StepExecutionEvent, started time.Time) (domain.StepExecutionResult, bool) {
	stepID := ev.Claim.StepUUID
	fail := func(errorType, format string, args ...any) domain.StepExecutionResult {
		return x.d.Results.WorkerFailure(stepID, started, x.d.Clock.Now(), errorType, fmt.Sprintf(format, args...))
	}
	if ev.StepDefinition.Name == "" {
		return fail(domain.ErrorTypeConfigurationError, "no step definition for step %q in template %s/%s/%s",
			ev.Step.Name, ev.Task.NamespaceName, ev.Task.TaskName, ev.Task.TaskVersion), false
	}
	callable := ev.StepDefinition.Handler.Callable
	h, ok := x.d.Handlers.Lookup(callable)
	if !ok {
		return fail(domain.ErrorTypeHandlerNotFound, "no handler registered for callable %q", callable), false
	}
	sc, err := handler.NewStepContext(ev, handler.WithLogger(x.d.Logger.With(lifecycle.TraceID(ctx))), handler.WithTaskCreator(x.d.Tasks))
	if err != nil {
		return fail(domain.ErrorTypeConfigurationError, "build step context: %v", err), false
	}

	hctx, cancel := ctx, context.CancelFunc(func() {})
	if !ev.Deadline.IsZero() {
		hctx, cancel = context.WithDeadline(ctx, ev.Deadline)
	}
	defer cancel()
	done := make(chan handlerResult, 1)
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer func() { <-x.slots }()
		defer func() {
			if r := recover(); r != nil {
				done <- handlerResult{panicked: r, stack: debug.Stack()}
			}
		}()
		s, err := h.Handle(hctx, sc)
		done <- handlerResult{success: s, err: err}
	}()

	select {
	case r := <-done:
		completed := x.d.Clock.Now()
		switch {
		case r.panicked != nil:
			he := &handler.Error{Message: fmt.Sprintf("handler panicked: %v", r.panicked), Type: domain.ErrorTypeHandlerPanic,
				Retryable: true, Backtrace: stackLines(r.stack)}
			x.d.Logger.Error("step handler panicked", zap.Stringer("step_uuid", stepID), zap.String("callable", callable), zap.Any("panic", r.panicked))
			return x.d.Results.Failure(stepID, started, completed, he), true
		case r.err != nil && errors.Is(hctx.Err(), context.DeadlineExceeded):
			return x.timeout(ev, started), true
		case r.err != nil && ctx.Err() != nil:
			return x.d.Results.WorkerFailure(stepID, started, completed, domain.ErrorTypeWorkerShutdown, "handler cancelled by worker shutdown"), true
		case r.err != nil:
			return x.d.Results.Failure(stepID, started, completed, handler.AsError(r.err)), true
		default:
			return x.d.Results.Success(stepID, started, completed, r.success), true
		}
	case <-hctx.Done():
		// The handler overran its deadline or the worker is stopping: the
		// outcome is decided now; the handler goroutine keeps its slot
		// until it actually returns.
		if errors.Is(hctx.Err(), context.DeadlineExceeded) {
			return x.timeout(ev, started), true
		}
		return x.d.Results.WorkerFailure(stepID, started, x.d.Clock.Now(), domain.ErrorTypeWorkerShutdown, "handler cancelled by worker shutdown"), true
	}
}

func (x *Dispatcher) timeout(ev domain.StepExecutionEvent, started time.Time) domain.StepExecutionResult {
	limit := "its deadline"
	if ev.StepDefinition.TimeoutSeconds != nil {
		limit = fmt.Sprintf("timeout_seconds=%d", *ev.StepDefinition.TimeoutSeconds)
	}
	return x.d.Results.WorkerFailure(ev.Claim.StepUUID, started, x.d.Clock.Now(), domain.ErrorTypeTimeout,
		"handler exceeded "+limit)
}

// stackLines keeps the stack readable in error.backtrace (at most 40 frames' lines).
func stackLines(stack []byte) []string {
	lines := strings.Split(strings.TrimSpace(string(stack)), "\n")
	if len(lines) > 80 {
		lines = lines[:80]
	}
	return lines
}
