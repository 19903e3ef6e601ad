package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Complete persists a handler outcome published by the dispatcher. A
// completion whose event is unknown (already failed by the correlation
// timeout or at shutdown) is ignored: the step's outcome is already decided.
func (p *Pipeline) Complete(ctx context.Context, ev domain.StepCompletionEvent) error {
	p.mu.Lock()
	e, ok := p.byEvent[ev.EventID]
	p.mu.Unlock()
	if !ok || !p.take(e) {
		p.stats.lateCompletion()
		p.log.Info("ignoring completion of a step no longer in flight", zap.Stringer("event_id", ev.EventID), zap.Stringer("step_uuid", ev.Claim.StepUUID))
		return nil
	}
	// The handler is done: its intake slot is free now, not when the
	// outcome commits. Contract §9.3 step 1 stops reading while
	// max_concurrent_steps handlers run; holding the slot through the
	// outcome transaction too left the worker reading in ones and twos as
	// outcomes committed one batch after another. The outcome still holds
	// its heartbeat until it is persisted, and outcomes waiting to persist
	// are bounded by the command processor (max_concurrent_commands and its
	// bounded channel), which blocks intake's submissions when full.
	e.release()
	if tc := ev.Claim.TraceContext; len(tc) > 0 {
		// The completion message continues the handler's span, and the
		// outcome log lines carry its trace id.
		e.headers, _ = json.Marshal(tc)
		ctx = lifecycle.FromCarrier(ctx, tc)
	}
	return p.persist(ctx, e, ev.Result)
}

// persist writes the outcome of a taken in-flight step (§9.3 step 5),
// retrying a failing commit with exponential backoff for PersistRetryFor
// while the heartbeat keeps the message hidden, then untracks the step.
func (p *Pipeline) persist(ctx context.Context, e *inflight, res domain.StepExecutionResult) error {
	defer p.untrack(e)
	o := ports.StepOutcome{
		TaskUUID: e.claim.TaskUUID,
		StepUUID: e.claim.StepUUID,
		Result:   res,
		Queue:    e.claim.Queue,
		MsgID:    e.claim.MsgID,
		WorkerID: p.cfg.WorkerID,
		Headers:  e.headers,
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 50 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	deadline := p.clock.Now().Add(p.cfg.PersistRetryFor)
	for {
		applied, err := p.steps.PersistOutcome(ctx, o)
		if err == nil {
			if applied {
				p.stats.finished(e.claim.Namespace, e.callable, e.claim.StepName, res)
				p.logOutcome(ctx, e.claim, res)
			} else {
				p.stats.discarded()
				p.log.Info("outcome discarded: step no longer in_progress (cancelled or declared abandoned)",
					zap.Stringer("step_uuid", e.claim.StepUUID))
			}
			return nil
		}
		wait := bo.NextBackOff()
		if p.clock.Now().Add(wait).After(deadline) {
			return fmt.Errorf("persist outcome of step %s: giving up after %s: %w", e.claim.StepUUID, p.cfg.PersistRetryFor, err)
		}
		p.log.Warn("persist outcome failed, retrying", zap.Stringer("step_uuid", e.claim.StepUUID), zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("persist outcome of step %s: %w (last error: %v)", e.claim.StepUUID, ctx.Err(), err)
		case <-p.clock.After(wait):
		}
	}
}

// SweepCorrelations fails, as error_type "timeout", every in-flight step
// whose execution event got no completion within CorrelationTimeout (a
// lost or stuck handler must not hold the step forever). It returns how
// many it failed.
func (p *Pipeline) SweepCorrelations(ctx context.Context) int {
	now := p.clock.Now()
	var expired []*inflight
	p.mu.Lock()
	for _, e := range p.byEvent {
		if !e.taken && now.Sub(e.publishedAt) >= p.cfg.CorrelationTimeout {
			expired = append(expired, e)
		}
	}
	p.mu.Unlock()
	n := 0
	for _, e := range expired {
		if !p.take(e) {
			continue
		}
		res := p.results.WorkerFailure(e.claim.StepUUID, e.publishedAt, now, domain.ErrorTypeTimeout,
			fmt.Sprintf("no completion within the correlation timeout (%s)", p.cfg.CorrelationTimeout))
		if err := p.persist(ctx, e, res); err != nil {
			p.log.Error("persist correlation timeout", zap.Error(err))
		}
		n++
	}
	return n
}

// RunSweeper runs SweepCorrelations periodically until ctx ends.
func (p *Pipeline) RunSweeper(ctx context.Context) {
	interval := p.cfg.CorrelationTimeout / 10
	if interval > 5*time.Second {
		interval = 5 * time.Second
	}
	if interval < 10*time.Millisecond {
		interval = 10 * time.Millisecond
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.clock.After(interval):
		}
		p.stats.tick("correlation_sweeper")
		p.SweepCorrelations(ctx)
	}
}

// FailInFlight persists every step still in flight as a retryable failure
// of errorType (worker_shutdown at the end of the grace period, §9.3 step
// 6) and returns how many it failed. Completions arriving later are ignored.
func (p *Pipeline) FailInFlight(ctx context.Context, errorType, message string) int {
	p.mu.Lock()
	all := make([]*inflight, 0, len(p.byEvent))
	for _, e := range p.byEvent {
		all = append(all, e)
	}
	p.mu.Unlock()
	n := 0
	for _, e := range all {
		if !p.take(e) {
			continue
		}
		res := p.results.WorkerFailure(e.claim.StepUUID, e.publishedAt, p.clock.Now(), errorType, message)
		if err := p.persist(ctx, e, res); err != nil {
			p.log.Error("persist in-flight failure", zap.String("error_type", errorType), zap.Error(err))
		}
		n++
	}
	return n
}
