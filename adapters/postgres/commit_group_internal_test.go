package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLoneGroupRequestKeepsItsCancellation: a request alone in its batch is
// cancelled with its caller. Before, every batch ran detached for up to
// groupBatchTimeout, so a POST /v1/tasks on a locked table answered after
// 30 s instead of at its request timeout.
func TestLoneGroupRequestKeepsItsCancellation(t *testing.T) {
	t.Parallel()
	var g commitGroup[int]
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	var runErr error
	require.NoError(t, g.submit(ctx, 1, func(bctx context.Context, _ []int) {
		<-bctx.Done()
		runErr = bctx.Err()
	}))
	require.ErrorIs(t, runErr, context.Canceled)
	require.Less(t, time.Since(start), groupBatchTimeout/2)
}

// TestSharedBatchOutlivesOneCaller: a batch carrying two callers' requests
// keeps running when one of them gives up and is cancelled once both have.
func TestSharedBatchOutlivesOneCaller(t *testing.T) {
	t.Parallel()
	var g commitGroup[int]
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the first call holds the group busy so that the next two share a batch
		defer wg.Done()
		_ = g.submit(context.Background(), 0, func(context.Context, []int) {
			close(started)
			<-release
		})
	}()
	<-started

	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	ran := make(chan []int, 2)
	cancelledAfterA := make(chan bool, 1)
	run := func(bctx context.Context, reqs []int) {
		ran <- reqs
		cancelA()
		select {
		case <-bctx.Done():
			cancelledAfterA <- true
			return
		case <-time.After(100 * time.Millisecond):
			cancelledAfterA <- false
		}
		cancelB()
		<-bctx.Done()
	}
	for i, c := range []context.Context{ctxA, ctxB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = g.submit(c, i+1, run)
		}()
	}
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.pending) == 2
	}, 5*time.Second, time.Millisecond)
	close(release)
	require.ElementsMatch(t, []int{1, 2}, <-ran)
	require.False(t, <-cancelledAfterA, "one caller giving up cancelled the shared batch")
	wg.Wait()
}

// TestGroupLingersOnlyAfterCompany: a caller alone (one task at a time) never
// lingers, because its previous batch was alone too; a batch that had calls
// queued behind it makes the next idle call linger to gather the wave.
func TestGroupLingersOnlyAfterCompany(t *testing.T) {
	t.Parallel()
	var g commitGroup[int]
	noop := func(context.Context, []int) {}
	for i := range 3 {
		require.NoError(t, g.submit(context.Background(), i, noop))
		g.mu.Lock()
		require.False(t, g.busyLately(time.Now()), "after lone batch %d", i)
		g.mu.Unlock()
	}

	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = g.submit(context.Background(), 10, func(context.Context, []int) {
			close(started)
			<-release
		})
	})
	<-started
	wg.Go(func() { _ = g.submit(context.Background(), 11, noop) }) // queues behind the running batch
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.pending) == 1
	}, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	require.True(t, g.busyLately(now), "a batch with a call queued behind it just ended")
	require.False(t, g.busyLately(now.Add(groupLingerWindow)), "the window has passed")
}
