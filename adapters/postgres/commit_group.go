package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Group-commit tunables.
const (
	// maxGroupBatch caps the requests sharing one transaction, which bounds
	// how long its step row locks are held.
	maxGroupBatch = 64
	// groupBatchTimeout bounds a batch transaction. A batch carries several
	// callers' requests, so one caller giving up does not cancel it; it is
	// cancelled when every caller in it has given up (a lone request keeps
	// its own cancellation and deadline), or after groupBatchTimeout.
	groupBatchTimeout = 30 * time.Second
	// groupLingerWindow and groupLinger: a call that finds the group idle
	// but a batch that had company (more than one request, or calls queued
	// behind it) ended less than groupLingerWindow ago (so more calls are
	// likely on their way) waits groupLinger before running, and takes the
	// calls that queued meanwhile into its batch. Without it, under load
	// every batch began with a leader alone (the first of a wave of
	// outcomes) and the wave was split into transactions of one and the
	// rest. An idle group never waits, and neither does a lone caller whose
	// previous batch was alone too (one task at a time: its claim and then
	// its outcome, each a batch of one, would otherwise pay the linger on
	// every hop for nothing to gather).
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
	// lastEnd is when the last batch that had company ended (zero: never);
	// a batch of one with nothing queued behind it leaves it unchanged.
	lastEnd time.Time
}

// groupWaiter is one queued call. done receives nil when its request was
// run by another call's batch, or the batch it must now run.
type groupWaiter[R any] struct {
	ctx  context.Context
	req  R
	done chan []*groupWaiter[R]
}

// submit runs req through run, alone or in a batch with concurrent calls;
// run stores each request's result in the request. It returns ctx.Err()
// when ctx ends while req is still queued (req was not run); once req is
// part of a running batch it waits for that batch and returns nil.
func (g *commitGroup[R]) submit(ctx context.Context, req R, run func(context.Context, []R)) error {
	w := &groupWaiter[R]{ctx: ctx, req: req, done: make(chan []*groupWaiter[R], 1)}
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		recent := g.busyLately(time.Now())
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
		g.lead(batch, run)
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
		g.lead(batch, run)
	}
	return nil
}

// busyLately reports whether a batch that had company ended less than
// groupLingerWindow before now, i.e. whether an idle group's next call
// should linger to gather the calls likely on their way. g.mu is held.
func (g *commitGroup[R]) busyLately(now time.Time) bool {
	return !g.lastEnd.IsZero() && now.Sub(g.lastEnd) < groupLingerWindow
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
func (g *commitGroup[R]) lead(batch []*groupWaiter[R], run func(context.Context, []R)) {
	reqs := make([]R, len(batch))
	for i, b := range batch {
		reqs[i] = b.req
	}
	bctx, cancel := batchContext(batch)
	run(bctx, reqs)
	cancel()

	g.mu.Lock()
	if len(batch) > 1 || len(g.pending) > 0 {
		g.lastEnd = time.Now()
	}
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

// batchContext is the context a batch runs in: it keeps the values of its
// first member's context, ends after groupBatchTimeout, and is cancelled
// once every member's context has ended. Without the last rule a lone
// request whose caller gave up (an HTTP request timeout on a locked table)
// would hold its connection and its caller for groupBatchTimeout.
func batchContext[R any](batch []*groupWaiter[R]) (context.Context, context.CancelFunc) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), groupBatchTimeout)
	var live atomic.Int64
	live.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, b := range batch {
		stops[i] = context.AfterFunc(b.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return bctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
