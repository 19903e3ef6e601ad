package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/outcome"
	"github.com/tasker-systems/tasker-go/domain"
)

// fakeClock hands out scripted Now values and an After channel the test fires.
type fakeClock struct {
	mu    sync.Mutex
	nows  []time.Time
	after chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nows[0]
	if len(c.nows) > 1 {
		c.nows = c.nows[1:]
	}
	return n
}

func (c *fakeClock) After(time.Duration) <-chan time.Time { return c.after }

// failingBus refuses every completion.
type failingBus struct{ *eventbus.Bus }

func (failingBus) PublishCompletion(context.Context, domain.StepCompletionEvent) error {
	return errors.New("bus closed")
}

// stubbornBus accepts completions even after ctx ended, so the result
// decided at shutdown can be observed.
type stubbornBus struct{ *eventbus.Bus }

func (b stubbornBus) PublishCompletion(_ context.Context, ev domain.StepCompletionEvent) error {
	return b.Bus.PublishCompletion(context.Background(), ev)
}

type runner struct {
	d      *Dispatcher
	logs   *observer.ObservedLogs
	cancel context.CancelFunc
	done   chan struct{}
}

// runWith starts a dispatcher over deps (Results and Logger filled in).
func runWith(t *testing.T, cfg Config, deps Deps) *runner {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	deps.Logger = zap.New(core)
	deps.Results = outcome.Builder{WorkerID: "w"}
	d, err := New(cfg, deps)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{d: d, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() { d.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func TestNewRequiresBusAndHandlers(t *testing.T) {
	t.Parallel()
	for name, deps := range map[string]Deps{
		"no bus":      {Handlers: handler.NewRegistry()},
		"no handlers": {Bus: newBus()},
	} {
		_, err := New(Config{}, deps)
		require.Error(t, err, name)
		require.Contains(t, err.Error(), "Bus and Handlers are required", name)
	}
	d, err := New(Config{}, Deps{Bus: newBus(), Handlers: handler.NewRegistry()})
	require.NoError(t, err)
	require.Equal(t, DefaultMaxConcurrent, cap(d.slots))
	require.Equal(t, DefaultHandlerExitWait, d.cfg.HandlerExitWait)
}

// TestIdleDispatcherReportsLiveness: with no events, every idle tick of the
// clock reports "dispatcher" again, so the stall check sees an idle worker
// as alive.
func TestIdleDispatcherReportsLiveness(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{nows: []time.Time{time.Now()}, after: make(chan time.Time)}
	ticks := make(chan string, 8)
	runWith(t, Config{}, Deps{Bus: newBus(), Handlers: handler.NewRegistry(), Clock: clock,
		Tick: func(s string) { ticks <- s }})
	require.Equal(t, "dispatcher", <-ticks)
	for i := 0; i < 3; i++ {
		clock.after <- time.Now() // received only by an idle Run loop
		require.Equal(t, "dispatcher", <-ticks)
	}
}

// TestResultsAreStampedByTheClock: start and completion times come from the
// Clock port, not the wall clock.
func TestResultsAreStampedByTheClock(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := &fakeClock{nows: []time.Time{t0, t0.Add(1500 * time.Millisecond)}, after: make(chan time.Time)}
	bus, reg := newBus(), handler.NewRegistry()
	require.NoError(t, reg.Register("c", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Succeed(1), nil
	})))
	runWith(t, Config{}, Deps{Bus: bus, Handlers: reg, Clock: clock})
	publish(t, bus, event("c", time.Time{}))
	res := (<-bus.Completions()).Result
	require.True(t, res.Success)
	require.Equal(t, t0, *res.Metadata.StartedAt)
	require.Equal(t, t0.Add(1500*time.Millisecond), res.Metadata.CompletedAt)
	require.Equal(t, int64(1500), res.Metadata.ExecutionTimeMs)
}

// TestBadTaskContextIsAConfigurationFailure: a task context that is not a
// JSON object never reaches the handler and fails retryably.
func TestBadTaskContextIsAConfigurationFailure(t *testing.T) {
	t.Parallel()
	f := setup(t, 1)
	var called atomic.Bool
	require.NoError(t, f.reg.Register("c", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		called.Store(true)
		return handler.Succeed(1), nil
	})))
	ev := event("c", time.Time{})
	ev.Task.Context = json.RawMessage(`[1,2]`)
	res := f.run(t, ev).Result
	require.False(t, res.Success)
	require.Equal(t, domain.ErrorTypeConfigurationError, *res.Error.ErrorType)
	require.True(t, res.Error.Retryable)
	require.Contains(t, res.Error.Message, "build step context")
	require.False(t, called.Load())
	require.Zero(t, f.d.Running(), "the slot is given back at once")
}

// TestTimeoutNamesTheConfiguredLimit: the failure says which timeout fired.
func TestTimeoutNamesTheConfiguredLimit(t *testing.T) {
	t.Parallel()
	f := setup(t, 1)
	require.NoError(t, f.reg.Register("c", handler.HandlerFunc(func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
		<-ctx.Done()
		return handler.Success{}, ctx.Err()
	})))
	ev := event("c", time.Now().Add(10*time.Millisecond))
	secs := uint32(7)
	ev.StepDefinition.TimeoutSeconds = &secs
	res := f.run(t, ev).Result
	require.Equal(t, domain.ErrorTypeTimeout, *res.Error.ErrorType)
	require.Equal(t, "handler exceeded timeout_seconds=7", res.Error.Message)
}

// TestShutdownFailsRunningStepAsWorkerShutdown: a handler that returns its
// context error at shutdown yields a retryable worker_shutdown failure.
func TestShutdownFailsRunningStepAsWorkerShutdown(t *testing.T) {
	t.Parallel()
	bus, reg := newBus(), handler.NewRegistry()
	started := make(chan struct{})
	require.NoError(t, reg.Register("c", handler.HandlerFunc(func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
		close(started)
		<-ctx.Done()
		return handler.Success{}, ctx.Err()
	})))
	r := runWith(t, Config{MaxConcurrent: 1}, Deps{Bus: stubbornBus{bus}, Handlers: reg})
	ev := event("c", time.Time{})
	publish(t, bus, ev)
	<-started
	r.cancel()
	<-r.done
	c := <-bus.Completions()
	require.Equal(t, ev.EventID, c.EventID)
	require.Equal(t, domain.ErrorTypeWorkerShutdown, *c.Result.Error.ErrorType)
	require.True(t, c.Result.Error.Retryable)
}

// TestShutdownWhileWaitingForASlot: an event taken from the bus while every
// slot is busy is not started once the dispatcher stops. The running handler
// ignores cancellation, so its slot stays taken and the waiting event can
// only see the shutdown.
func TestShutdownWhileWaitingForASlot(t *testing.T) {
	t.Parallel()
	bus, reg := newBus(), handler.NewRegistry()
	var calls atomic.Int32
	started, release, returned := make(chan struct{}, 2), make(chan struct{}), make(chan struct{}, 2)
	require.NoError(t, reg.Register("c", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		defer func() { returned <- struct{}{} }()
		calls.Add(1)
		started <- struct{}{}
		<-release
		return handler.Succeed(1), nil
	})))
	r := runWith(t, Config{MaxConcurrent: 1, HandlerExitWait: 20 * time.Millisecond}, Deps{Bus: stubbornBus{bus}, Handlers: reg})
	publish(t, bus, event("c", time.Time{}))
	<-started
	publish(t, bus, event("c", time.Time{}))
	require.Eventually(t, func() bool { return len(bus.Executions()) == 0 }, 5*time.Second, time.Millisecond,
		"the second event is taken and waits for the slot")
	r.cancel()
	<-r.done
	close(release)
	<-returned
	require.Eventually(t, func() bool { return r.d.Running() == 0 }, 5*time.Second, time.Millisecond)
	require.Equal(t, int32(1), calls.Load(), "the waiting event never started")
	c := <-bus.Completions()
	require.Equal(t, domain.ErrorTypeWorkerShutdown, *c.Result.Error.ErrorType)
	require.Empty(t, bus.Completions(), "only the running step has an outcome; the pipeline fails the other")
}

// TestHandlerIgnoringCancellationIsAbandoned: shutdown waits at most
// HandlerExitWait for a handler that ignores its context, then logs and
// returns; the handler keeps its slot until it really returns.
func TestHandlerIgnoringCancellationIsAbandoned(t *testing.T) {
	t.Parallel()
	bus, reg := newBus(), handler.NewRegistry()
	started, release, returned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	require.NoError(t, reg.Register("c", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		defer close(returned)
		close(started)
		<-release // deliberately ignores its context
		return handler.Succeed(1), nil
	})))
	r := runWith(t, Config{MaxConcurrent: 1, HandlerExitWait: 20 * time.Millisecond}, Deps{Bus: stubbornBus{bus}, Handlers: reg})
	publish(t, bus, event("c", time.Time{}))
	<-started
	r.cancel()
	<-r.done // returns although the handler still runs
	require.Equal(t, 1, r.d.Running(), "the abandoned handler still holds its slot")
	logged := r.logs.FilterMessage("handlers did not return after cancellation; abandoning them").All()
	require.Len(t, logged, 1)
	require.EqualValues(t, 1, logged[0].ContextMap()["running"])
	c := <-bus.Completions()
	require.Equal(t, domain.ErrorTypeWorkerShutdown, *c.Result.Error.ErrorType, "decided at shutdown, not by the late return")
	close(release)
	<-returned
	require.Eventually(t, func() bool { return r.d.Running() == 0 }, 5*time.Second, time.Millisecond)
}

// TestUndeliverableCompletionIsLogged: when the bus refuses a completion the
// dispatcher logs it with the step and carries on with the next event.
func TestUndeliverableCompletionIsLogged(t *testing.T) {
	t.Parallel()
	bus, reg := newBus(), handler.NewRegistry()
	var calls atomic.Int32
	require.NoError(t, reg.Register("c", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		calls.Add(1)
		return handler.Succeed(1), nil
	})))
	r := runWith(t, Config{MaxConcurrent: 1}, Deps{Bus: failingBus{bus}, Handlers: reg})
	ev := event("c", time.Time{})
	publish(t, bus, ev)
	publish(t, bus, event("c", time.Time{}))
	require.Eventually(t, func() bool { return r.logs.Len() == 2 }, 5*time.Second, time.Millisecond)
	require.Equal(t, int32(2), calls.Load(), "the dispatcher keeps going")
	e := r.logs.All()[0]
	require.True(t, strings.HasPrefix(e.Message, "completion not published"))
	require.Equal(t, "bus closed", e.ContextMap()["error"])
	require.NotEmpty(t, e.ContextMap()["step_uuid"])
}

// TestPanicBacktraceIsBounded: a panic deep in recursion keeps at most 80
// backtrace lines (40 frames) in the result.
func TestPanicBacktraceIsBounded(t *testing.T) {
	t.Parallel()
	f := setup(t, 1)
	var deep func(n int)
	deep = func(n int) {
		if n == 0 {
			panic("deep")
		}
		deep(n - 1)
	}
	require.NoError(t, f.reg.Register("c", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		deep(200)
		return handler.Succeed(1), nil
	})))
	res := f.run(t, event("c", time.Time{})).Result
	require.Equal(t, domain.ErrorTypeHandlerPanic, *res.Error.ErrorType)
	require.Len(t, res.Error.Backtrace, 80)
	require.Contains(t, res.Error.Backtrace[0], "goroutine")
}
