package postgres

import (
	"context"
	"sync"
	"time"
)

// Group-commit tunables for outcome persistence.
const (
	// maxOutcomeBatch caps the outcomes sharing one transaction, which bounds
	// how long its step row locks are held.
	maxOutcomeBatch = 64
	// outcomeBatchTimeout bounds a batch transaction. Batches run detached
	// from the caller's cancellation because they carry other callers'
	// outcomes too.
	outcomeBatchTimeout = 30 * time.Second
)

// outcomeGroup coalesces concurrent PersistOutcome calls into shared
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
type outcomeGroup struct {
	mu      sync.Mutex
	busy    bool
	pending []*groupWaiter
}

// groupWaiter is one queued call. done receives nil when its outcome was
// persisted by another call's batch, or the batch it must now run.
type groupWaiter struct {
	req  *outcomeReq
	done chan []*groupWaiter
}

// submit persists req through run, alone or in a batch with concurrent
// calls, and returns its result. A caller whose ctx ends while it is still
// queued leaves without its outcome persisted; once its outcome is part of
// a running batch it waits for that batch.
func (g *outcomeGroup) submit(ctx context.Context, req *outcomeReq, run func(context.Context, []*outcomeReq)) (bool, error) {
	w := &groupWaiter{req: req, done: make(chan []*groupWaiter, 1)}
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		g.lead(ctx, []*groupWaiter{w}, run)
		return req.persisted, req.err
	}
	g.pending = append(g.pending, w)
	g.mu.Unlock()

	var batch []*groupWaiter
	select {
	case batch = <-w.done:
	case <-ctx.Done():
		if g.dequeue(w) {
			return false, ctx.Err()
		}
		batch = <-w.done // already handed to a batch: wait for it
	}
	if batch != nil {
		g.lead(ctx, batch, run)
	}
	return req.persisted, req.err
}

// dequeue removes w from the queue; false when a batch already took it.
func (g *outcomeGroup) dequeue(w *groupWaiter) bool {
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
func (g *outcomeGroup) lead(ctx context.Context, batch []*groupWaiter, run func(context.Context, []*outcomeReq)) {
	reqs := make([]*outcomeReq, len(batch))
	for i, b := range batch {
		reqs[i] = b.req
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeBatchTimeout)
	run(bctx, reqs)
	cancel()

	g.mu.Lock()
	n := len(g.pending)
	if n > maxOutcomeBatch {
		n = maxOutcomeBatch
	}
	next := append([]*groupWaiter(nil), g.pending[:n]...)
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
