package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/outcome"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newBus is the real event bus (it passes the EventBus contract suite,
// adapters/eventbus/eventbustest), 16 events deep each way.
func newBus() *eventbus.Bus {
	return eventbus.New(eventbus.Config{PublisherBufferSize: 16, SubscriberBufferSize: 16})
}

// publish hands ev to the dispatcher as the pipeline does.
func publish(t *testing.T, b ports.EventBus, ev domain.StepExecutionEvent) {
	t.Helper()
	require.NoError(t, b.PublishExecution(context.Background(), ev))
}

type fixture struct {
	bus    *eventbus.Bus
	reg    *handler.Registry
	d      *Dispatcher
	cancel context.CancelFunc
	done   chan struct{}
}

func setup(t *testing.T, maxConcurrent int) *fixture {
	t.Helper()
	f := &fixture{bus: newBus(), reg: handler.NewRegistry(), done: make(chan struct{})}
	d, err := New(Config{MaxConcurrent: maxConcurrent, HandlerExitWait: 2 * time.Second},
		Deps{Bus: f.bus, Handlers: f.reg, Results: outcome.Builder{WorkerID: "w"}})
	require.NoError(t, err)
	f.d = d
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { d.Run(ctx); close(f.done) }()
	t.Cleanup(f.stop)
	return f
}

func (f *fixture) stop() {
	f.cancel()
	<-f.done
}

func event(callable string, deadline time.Time) domain.StepExecutionEvent {
	return domain.StepExecutionEvent{
		EventID:        uuid.New(),
		Claim:          domain.StepClaim{StepUUID: uuid.New(), Attempts: 1, RetryLimit: 3},
		Task:           domain.TaskInfo{Context: json.RawMessage(`{"n":3}`)},
		Step:           domain.StepInfo{Name: "s"},
		StepDefinition: domain.StepDefinition{Name: "s", Handler: domain.HandlerDefinition{Callable: callable}},
		Deadline:       deadline,
	}
}

func (f *fixture) run(t *testing.T, ev domain.StepExecutionEvent) domain.StepCompletionEvent {
	t.Helper()
	publish(t, f.bus, ev)
	select {
	case c := <-f.bus.Completions():
		require.Equal(t, ev.EventID, c.EventID, "completion correlated by event id")
		require.Equal(t, ev.Claim, c.Claim)
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no completion")
		return domain.StepCompletionEvent{}
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		h             handler.HandlerFunc
		register      bool
		deadline      time.Duration
		noDefinition  bool
		wantSuccess   bool
		wantRetryable bool
		wantType      string
	}{
		{name: "success", register: true, wantSuccess: true, h: func(_ context.Context, sc *handler.StepContext) (handler.Success, error) {
			var n int
			if err := sc.ContextValue("n", &n); err != nil {
				return handler.Success{}, err
			}
			return handler.Succeed(n * n), nil
		}},
		{name: "retryable error", register: true, wantRetryable: true, wantType: "rate_limited",
			h: func(context.Context, *handler.StepContext) (handler.Success, error) {
				return handler.Success{}, handler.Retryable("rate_limited", "busy").RetryAfter(5)
			}},
		{name: "permanent error", register: true, wantRetryable: false, wantType: "validation",
			h: func(context.Context, *handler.StepContext) (handler.Success, error) {
				return handler.Success{}, handler.Permanent("validation", "odd")
			}},
		{name: "plain error is retryable", register: true, wantRetryable: true, wantType: handler.ErrorTypeHandler,
			h: func(context.Context, *handler.StepContext) (handler.Success, error) {
				return handler.Success{}, errors.New("io")
			}},
		{name: "panic", register: true, wantRetryable: true, wantType: domain.ErrorTypeHandlerPanic,
			h: func(context.Context, *handler.StepContext) (handler.Success, error) { panic("boom") }},
		{name: "timeout honoured by the handler", register: true, deadline: 30 * time.Millisecond, wantRetryable: true, wantType: domain.ErrorTypeTimeout,
			h: func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
				<-ctx.Done()
				return handler.Success{}, ctx.Err()
			}},
		{name: "timeout ignored by the handler is still enforced", register: true, deadline: 30 * time.Millisecond, wantRetryable: true, wantType: domain.ErrorTypeTimeout,
			h: func(context.Context, *handler.StepContext) (handler.Success, error) {
				time.Sleep(300 * time.Millisecond) // deliberately ignores ctx
				return handler.Succeed(1), nil
			}},
		{name: "unknown callable", register: false, wantRetryable: true, wantType: domain.ErrorTypeHandlerNotFound},
		{name: "missing step definition", register: true, noDefinition: true, wantRetryable: true, wantType: domain.ErrorTypeConfigurationError,
			h: func(context.Context, *handler.StepContext) (handler.Success, error) { return handler.Succeed(1), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, 2)
			if tt.register {
				require.NoError(t, f.reg.Register("c", tt.h))
			}
			var deadline time.Time
			if tt.deadline > 0 {
				deadline = time.Now().Add(tt.deadline)
			}
			ev := event("c", deadline)
			if tt.noDefinition {
				ev.StepDefinition = domain.StepDefinition{}
			}
			start := time.Now()
			c := f.run(t, ev)
			res := c.Result
			require.Equal(t, ev.Claim.StepUUID, res.StepUUID)
			require.Equal(t, tt.wantSuccess, res.Success)
			if tt.wantSuccess {
				require.JSONEq(t, "9", string(res.Result))
				return
			}
			require.Equal(t, tt.wantRetryable, res.Error.Retryable)
			require.Equal(t, tt.wantRetryable, res.Metadata.Retryable)
			require.Equal(t, tt.wantType, *res.Error.ErrorType)
			if tt.deadline > 0 {
				require.Less(t, time.Since(start), 250*time.Millisecond, "the timeout outcome does not wait for the handler")
			}
			if tt.wantType == domain.ErrorTypeHandlerPanic {
				require.NotEmpty(t, res.Error.Backtrace)
				require.Contains(t, res.Error.Message, "boom")
			}
		})
	}
}

func TestShutdownCancelsRunningHandlers(t *testing.T) {
	t.Parallel()
	f := setup(t, 2)
	started := make(chan struct{})
	var sawCancel atomic.Bool
	require.NoError(t, f.reg.Register("slow", handler.HandlerFunc(func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
		close(started)
		<-ctx.Done()
		sawCancel.Store(true)
		return handler.Success{}, ctx.Err()
	})))
	publish(t, f.bus, event("slow", time.Time{}))
	<-started
	f.stop()
	require.True(t, sawCancel.Load(), "handler context cancelled and Run waited for it")
}

func TestPoolIsBounded(t *testing.T) {
	t.Parallel()
	f := setup(t, 2)
	release := make(chan struct{})
	var running, peak atomic.Int32
	require.NoError(t, f.reg.Register("block", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return handler.Succeed(1), nil
	})))
	for i := 0; i < 5; i++ {
		publish(t, f.bus, event("block", time.Time{}))
	}
	require.Eventually(t, func() bool { return running.Load() == 2 }, 2*time.Second, time.Millisecond)
	require.Equal(t, 2, f.d.Running())
	// Run holds at most one event while it waits for a slot, so the bus
	// settles at 5 - 2 running - 1 held; right after the second handler
	// starts, Run may not have taken the third yet (3 left).
	require.Eventually(t, func() bool { return len(f.bus.Executions()) == 2 }, 2*time.Second, time.Millisecond,
		"the rest wait on the bus: not dropped, not started")
	require.Equal(t, 2, f.d.Running())
	close(release)
	for i := 0; i < 5; i++ {
		<-f.bus.Completions()
	}
	require.Equal(t, int32(2), peak.Load())
}
