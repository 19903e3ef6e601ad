package consume_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/consume"
	"github.com/tasker-systems/tasker-go/internal/memnotify"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run starts l and returns a stop that cancels it and waits for Run.
func run(l consume.Loop) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	return func() { cancel(); <-done }
}

func TestLoopReadsAgainAtOnceWhileFull(t *testing.T) {
	var steps atomic.Int32
	reads := make(chan int32, 10)
	stop := run(consume.Loop{Name: "q", PollInterval: time.Hour, Step: func(context.Context) bool {
		n := steps.Add(1)
		reads <- n
		return n < 3 // full twice, then drained
	}})
	defer stop()
	for want := int32(1); want <= 3; want++ {
		require.Equal(t, want, <-reads)
	}
	select {
	case n := <-reads:
		t.Fatalf("read %d without a wake-up or a poll", n)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestLoopPollsAndWakes(t *testing.T) {
	r := consume.NewRouter([]string{"q"})
	reads := make(chan struct{}, 10)
	var ticks atomic.Int32
	stop := run(consume.Loop{Name: "q", Wake: r.Wakeups("q"), PollInterval: 20 * time.Millisecond,
		Tick: func(name string) { require.Equal(t, "q", name); ticks.Add(1) },
		Step: func(context.Context) bool { reads <- struct{}{}; return false }})
	defer stop()
	<-reads // the first read is at once
	<-reads // the next one by the poll
	r.Wake("q")
	select {
	case <-reads: // woken
	case <-time.After(5 * time.Second):
		t.Fatal("no read after a wake-up")
	}
	require.GreaterOrEqual(t, ticks.Load(), int32(3), "every iteration ticks")
}

func TestLoopWithoutPollWaitsForAWakeUp(t *testing.T) {
	r := consume.NewRouter([]string{"q"})
	reads := make(chan struct{}, 10)
	stop := run(consume.Loop{Name: "q", Wake: r.Wakeups("q"),
		Step: func(context.Context) bool { reads <- struct{}{}; return false }})
	defer stop()
	select {
	case <-reads:
		t.Fatal("a loop without polling read before it was woken")
	case <-time.After(30 * time.Millisecond):
	}
	r.Wake("q")
	<-reads
}

func TestLoopStopsWhenItsContextEnds(t *testing.T) {
	stop := run(consume.Loop{Name: "q", PollInterval: time.Millisecond, Step: func(context.Context) bool { return true }})
	stop()                                                                            // returns: the loop saw the context end between full reads
	run(consume.Loop{Name: "q", Step: func(context.Context) bool { return false }})() // and while waiting
}

func TestRouterRoutesByQueueAndPollAll(t *testing.T) {
	r := consume.NewRouter([]string{"a_queue", "b_queue"})
	n := memnotify.New(10)
	var ticks atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Route(ctx, n, nil, func(string) { ticks.Add(1) }) })
	woken := func(q string) bool {
		select {
		case <-r.Wakeups(q):
			return true
		case <-time.After(30 * time.Millisecond):
			return false
		}
	}

	n.Notify(ports.MessageReady{Queue: "other_queue"})
	n.Notify(ports.MessageReady{Queue: "a_queue"})
	n.Notify(ports.MessageReady{Queue: "a_queue"}) // coalesces with the pending wake-up
	require.Eventually(t, func() bool { return ticks.Load() == 3 }, 5*time.Second, time.Millisecond)
	require.True(t, woken("a_queue"))
	require.False(t, woken("a_queue"), "one pending wake-up per queue")
	require.False(t, woken("b_queue"), "other queues are not woken")

	n.Notify(ports.MessageReady{PollAll: true})
	require.True(t, woken("a_queue"))
	require.True(t, woken("b_queue"))
	require.Equal(t, int32(4), ticks.Load())
	require.Nil(t, r.Wakeups("other_queue"), "a queue not served has no channel")
	r.Wake("other_queue") // ignored, no panic

	cancel()
	wg.Wait()

	// A closed stream ends routing; the loops go on polling.
	require.NoError(t, n.Close())
	r.Route(context.Background(), n, nil, nil)
}
