// Package eventbustest is the contract-test suite of the EventBus port
// (ports.EventBus). Every implementation runs it, the channel bus and the
// wrappers around it alike, so none can drift from what the port promises:
//
//	func TestEventBusContract(t *testing.T) {
//		eventbustest.Run(t, func(t *testing.T, buffer int) ports.EventBus {
//			return eventbus.New(eventbus.Config{PublisherBufferSize: buffer, SubscriberBufferSize: buffer})
//		})
//	}
//
// It pins only what the port documents: each subscription is one channel;
// every published event is received exactly once, from its own subscription,
// also under concurrent publishers; a publish blocks while its buffer is full
// until a subscriber takes an event or the publisher's context is done, and a
// publish that fails published nothing. Delivery order is not part of the port.
//
// Subtests run in parallel, each on a bus of its own, and leave no goroutine
// behind (the implementations' packages check with goleak).
package eventbustest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Factory returns a new, empty bus whose execution and completion buffers
// each hold buffer events (buffer ≥ 1).
type Factory func(t *testing.T, buffer int) ports.EventBus

// wait bounds every wait for something that must happen; quiet is how long
// the suite watches for something that must not.
const (
	wait  = 5 * time.Second
	quiet = 20 * time.Millisecond
)

// Run runs the whole suite against the buses f returns.
func Run(t *testing.T, f Factory) {
	t.Run("SubscriptionsAreOneChannelEach", func(t *testing.T) { testOneChannel(t, f) })
	t.Run("EachEventReachesOnlyItsOwnSubscription", func(t *testing.T) { testOwnSubscription(t, f) })
	t.Run("EveryEventIsReceivedOnce", func(t *testing.T) { testReceivedOnce(t, f) })
	t.Run("FullBufferBlocksPublishUntilContextDone", func(t *testing.T) { testBlocksUntilContextDone(t, f) })
	t.Run("FullBufferUnblocksWhenASubscriberTakes", func(t *testing.T) { testUnblocksWhenTaken(t, f) })
	t.Run("ConcurrentPublishersLoseNothing", func(t *testing.T) { testConcurrentPublishers(t, f) })
}

// kind is one direction of the bus, so every test covers both the same way.
type kind struct {
	name    string
	publish func(ctx context.Context, b ports.EventBus, id uuid.UUID) error
	receive func(t *testing.T, b ports.EventBus) uuid.UUID
	idle    func(t *testing.T, b ports.EventBus) // fails if an event arrives within quiet
}

var kinds = []kind{
	{
		name: "execution",
		publish: func(ctx context.Context, b ports.EventBus, id uuid.UUID) error {
			return b.PublishExecution(ctx, domain.StepExecutionEvent{EventID: id})
		},
		receive: func(t *testing.T, b ports.EventBus) uuid.UUID {
			t.Helper()
			select {
			case ev := <-b.Executions():
				return ev.EventID
			case <-time.After(wait):
				t.Fatal("no execution event")
				return uuid.Nil
			}
		},
		idle: func(t *testing.T, b ports.EventBus) {
			t.Helper()
			select {
			case ev := <-b.Executions():
				t.Fatalf("unexpected execution event %s", ev.EventID)
			case <-time.After(quiet):
			}
		},
	},
	{
		name: "completion",
		publish: func(ctx context.Context, b ports.EventBus, id uuid.UUID) error {
			return b.PublishCompletion(ctx, domain.StepCompletionEvent{EventID: id})
		},
		receive: func(t *testing.T, b ports.EventBus) uuid.UUID {
			t.Helper()
			select {
			case ev := <-b.Completions():
				return ev.EventID
			case <-time.After(wait):
				t.Fatal("no completion event")
				return uuid.Nil
			}
		},
		idle: func(t *testing.T, b ports.EventBus) {
			t.Helper()
			select {
			case ev := <-b.Completions():
				t.Fatalf("unexpected completion event %s", ev.EventID)
			case <-time.After(quiet):
			}
		},
	},
}

// eachKind runs body as a parallel subtest per direction, each on a new bus.
func eachKind(t *testing.T, f Factory, buffer int, body func(t *testing.T, b ports.EventBus, k kind)) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			body(t, f(t, buffer), k)
		})
	}
}

func testOneChannel(t *testing.T, f Factory) {
	t.Parallel()
	b := f(t, 1)
	require.Equal(t, b.Executions(), b.Executions(), "Executions returns one channel")
	require.Equal(t, b.Completions(), b.Completions(), "Completions returns one channel")
}

func testOwnSubscription(t *testing.T, f Factory) {
	t.Parallel()
	b := f(t, 1)
	ctx := context.Background()
	exec, done := uuid.New(), uuid.New()
	require.NoError(t, kinds[0].publish(ctx, b, exec))
	kinds[1].idle(t, b)
	require.Equal(t, exec, kinds[0].receive(t, b))
	require.NoError(t, kinds[1].publish(ctx, b, done))
	kinds[0].idle(t, b)
	require.Equal(t, done, kinds[1].receive(t, b))
}

func testReceivedOnce(t *testing.T, f Factory) {
	const n = 4
	eachKind(t, f, n, func(t *testing.T, b ports.EventBus, k kind) {
		ctx := context.Background()
		var sent, got []uuid.UUID
		for range n {
			id := uuid.New()
			sent = append(sent, id)
			require.NoError(t, k.publish(ctx, b, id), "the buffer holds %d events", n)
		}
		for range n {
			got = append(got, k.receive(t, b))
		}
		require.ElementsMatch(t, sent, got)
		k.idle(t, b)
	})
}

func testBlocksUntilContextDone(t *testing.T, f Factory) {
	eachKind(t, f, 1, func(t *testing.T, b ports.EventBus, k kind) {
		first := uuid.New()
		require.NoError(t, k.publish(context.Background(), b, first))

		// A deadline ends the wait.
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		defer cancel()
		require.ErrorIs(t, k.publish(ctx, b, uuid.New()), context.DeadlineExceeded)

		// So does a cancellation while the publisher is blocked.
		ctx, cancel = context.WithCancel(context.Background())
		published := make(chan error, 1)
		go func() { published <- k.publish(ctx, b, uuid.New()) }()
		select {
		case err := <-published:
			t.Fatalf("publish into a full buffer returned %v before its context was done", err)
		case <-time.After(quiet):
		}
		cancel()
		select {
		case err := <-published:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(wait):
			t.Fatal("a blocked publish did not return when its context was cancelled")
		}

		require.Equal(t, first, k.receive(t, b))
		k.idle(t, b) // neither failed publish published its event
	})
}

func testUnblocksWhenTaken(t *testing.T, f Factory) {
	eachKind(t, f, 1, func(t *testing.T, b ports.EventBus, k kind) {
		first, second := uuid.New(), uuid.New()
		require.NoError(t, k.publish(context.Background(), b, first))
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		published := make(chan error, 1)
		go func() { published <- k.publish(ctx, b, second) }()
		select {
		case err := <-published:
			t.Fatalf("publish into a full buffer returned %v before a subscriber took an event", err)
		case <-time.After(quiet):
		}
		require.Equal(t, first, k.receive(t, b))
		require.NoError(t, <-published, "the blocked publish goes through once there is room")
		require.Equal(t, second, k.receive(t, b))
		k.idle(t, b)
	})
}

func testConcurrentPublishers(t *testing.T, f Factory) {
	const publishers, per = 4, 200
	eachKind(t, f, 4, func(t *testing.T, b ports.EventBus, k kind) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*wait)
		defer cancel()
		sent := make([][]uuid.UUID, publishers)
		errs := make(chan error, publishers*per)
		var wg sync.WaitGroup
		for p := range publishers {
			ids := make([]uuid.UUID, per)
			for i := range ids {
				ids[i] = uuid.New()
			}
			sent[p] = ids
			wg.Go(func() {
				for _, id := range ids {
					if err := k.publish(ctx, b, id); err != nil {
						errs <- err
					}
				}
			})
		}
		seen := make(map[uuid.UUID]int, publishers*per)
		for range publishers * per {
			seen[k.receive(t, b)]++
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for _, ids := range sent {
			for _, id := range ids {
				require.Equal(t, 1, seen[id], "event %s received once", id)
			}
		}
		k.idle(t, b)
	})
}
