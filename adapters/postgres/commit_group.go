package postgres

import (
	"context"
	"sync"
	"time"
)

// Group-commit tunables.
const (
	// maxGroupBatch caps the requests sharing one transaction, which bounds
	// how long its step row locks are held.
	maxGroupBatch = 64
	// groupBatchTimeout bounds a batch transaction. Batches run detached
	// from the caller's cancellation because they carry other callers'
	// requests too.
	groupBatchTimeout = 30 * time.Second
	// groupLingerWindow and groupLinger: a call that finds the group idle
	// but a batch ended less than groupLingerWindow ago (so more calls are
	// likely on their way) waits groupLinger before running, and takes the
	// calls that queued meanwhile into its batch. Without it, under load
	// every batch began with a leader alone (the first of a wave of
	// outcomes) and the wave was split into transactions of one and the
	// rest. An idle group (a lone task) never waits.
	groupLingerWindow = 5 * time.Millisecond
	groupLinger       = 500 * time.Microsecond
)

// commitGroup coalesces concurrent calls (e.g. PersistOutcome) into shared
// transactions (group commit) without a background goroutine. A call that
// finds no batch running runs its own outcome at once, so a lone outcome
// waits for nothing. Calls arriving while a batch runs queue up; when the
// batch ends, its runner hands the queued calls (up to maxOutcomeBatch) to
// the first of them, which runs them as the next batch, and so on.
//
// The reason is PostgreSQL's NOTIFY lock: the completion send fires the
// message-ready trigger (contract §4.6), and commits of transactions that
// issued NOTIFY are serialised, WAL flush included. One outcome per
// transaction therefore caps throughput at one outcome per flush; a batch
// pays that price once for all its outcomes. Each outcome keeps its own
// compare-and-set, transition, send and delete inside the shared
// transaction, so the §9.3 atomicity (outcome, completion message and
// message delete commit together) is unchanged.
type commitGroup[R any] struct {
	mu      sync.Mutex
	busy    bool
	pending []*groupWaiter[R]
	// lastEnd is when the last batch ended (zero: never).
	lastEnd time.Time
}

// groupWaiter is one queued call. done receives nil when its request was
// run by another call's batch, or the batch it must now run.
type groupWaiter[R any] struct {
	req  R
	done chan []*groupWaiter[R]
}

// submit runs req through run, alone or in a batch with concurrent calls;
// run stores each request's result in the request. It returns ctx.Err()
// when ctx ends while req is still queued (req was not run); once req is
// part of a running batch it waits for that batch and returns nil.
func (g *commitGroup[R]) submit(ctx context.Context, req R, run func(context.Context, []R)) error {
	w := &groupWaiter[R]{req: req, done: make(chan []*groupWaiter[R], 1)}
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		recent := !g.lastEnd.IsZero() && time.Since(g.lastEnd) < groupLingerWindow
		g.mu.Unlock()
		batch := []*groupWaiter[R]{w}
		if recent {
			time.Sleep(groupLinger)
			g.mu.Lock()
			n := min(len(g.pending), maxGroupBatch-1)
			batch = append(batch, g.pending[:n]...)
			g.pending = append(g.pending[:0], g.pending[n:]...)
			g.mu.Unlock()
		}
		g.lead(ctx, batch, run)
		return nil
	}
	g.pending = append(g.pending, w)
	g.mu.Unlock()

	var batch []*groupWaiter[R]
	select {
	case batch = <-w.done:
	case <-ctx.Done():
		if g.dequeue(w) {
			return ctx.Err()
		}
		batch = <-w.done // already handed to a batch: wait for it
	}
	if batch != nil {
		g.lead(ctx, batch, run)
	}
	return nil
}

// dequeue removes w from the queue; false when a batch already took it.
func (g *commitGroup[R]) dequeue(w *groupWaiter[R]) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, p := range g.pending {
		if p == w {
			g.pending = append(g.pending[:i], g.pending[i+1:]...)
			return true
		}
	}
	return false
}

// lead runs batch, wakes its other members, then hands the next queued
// calls to the first of them (or marks the group idle).
func (g *commitGroup[R]) lead(ctx context.Context, batch []*groupWaiter[R], run func(context.Context, []R)) {
	reqs := make([]R, len(batch))
	for i, b := range batch {
		reqs[i] = b.req
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupBatchTimeout)
	run(bctx, reqs)
	cancel()

	g.mu.Lock()
	g.lastEnd = time.Now()
	n := len(g.pending)
	if n > maxGroupBatch {
		n = maxGroupBatch
	}
	next := append([]*groupWaiter[R](nil), g.pending[:n]...)
	g.pending = append(g.pending[:0], g.pending[n:]...)
	if len(next) == 0 {
		g.busy = false
	}
	g.mu.Unlock()

	for _, b := range batch[1:] {
		b.done <- nil
	}
	if len(next) > 0 {
		next[0].done <- next
	}
}
