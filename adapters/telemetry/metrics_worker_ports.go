package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Event kinds of the event-bus families.
const (
	EventExecution  = "execution"
	EventCompletion = "completion"
)

// Claim results of tasker_worker_claim_duration_seconds.
const (
	ClaimResultClaimed      = "claimed"
	ClaimResultNotClaimable = "not_claimable"
	ClaimResultError        = "error"
)

// InstrumentEventBus wraps bus so that every published execution counts as a
// claimed step (by namespace and handler), every published completion feeds
// the step duration histogram, and failed publishes count as dropped. The
// composition root hands the wrapped bus to both the pipeline and the
// dispatcher, so the worker's application code stays free of metrics.
func (m *WorkerMetrics) InstrumentEventBus(bus ports.EventBus) ports.EventBus {
	return &instrumentedBus{EventBus: bus, m: m}
}

type instrumentedBus struct {
	ports.EventBus
	m *WorkerMetrics
}

// PublishExecution implements ports.EventBus.
func (b *instrumentedBus) PublishExecution(ctx context.Context, ev domain.StepExecutionEvent) error {
	if err := b.EventBus.PublishExecution(ctx, ev); err != nil {
		b.m.dropped.WithLabelValues(EventExecution).Inc()
		return err
	}
	b.m.published.WithLabelValues(EventExecution).Inc()
	b.m.claimed.WithLabelValues(ev.Claim.Namespace, ev.StepDefinition.Handler.Callable).Inc()
	if ev.Claim.Attempts > 1 { // Attempts counts this claim: 2 is the first retry
		b.m.retries.WithLabelValues(ev.Claim.Namespace, ev.Claim.StepName).Inc()
	}
	return nil
}

// PublishCompletion implements ports.EventBus.
func (b *instrumentedBus) PublishCompletion(ctx context.Context, ev domain.StepCompletionEvent) error {
	if err := b.EventBus.PublishCompletion(ctx, ev); err != nil {
		b.m.dropped.WithLabelValues(EventCompletion).Inc()
		return err
	}
	b.m.published.WithLabelValues(EventCompletion).Inc()
	outcome := OutcomeSuccess
	if !ev.Result.Success {
		outcome = OutcomeFailure
	}
	d := time.Duration(ev.Result.Metadata.ExecutionTimeMs) * time.Millisecond
	b.m.stepDuration.WithLabelValues(ev.Claim.Namespace, ev.Claim.TaskName, outcome).Observe(d.Seconds())
	return nil
}

// InstrumentStepStore wraps store so that every claim attempt, ClaimStep or
// LoadAndClaim (the pipeline's usual path), feeds the claim duration
// histogram, labelled by its result. It forwards exactly the port's
// methods, so any store capability the pipeline uses must be on
// ports.StepStore: an optional method found by type assertion would be
// hidden by this wrapper.
func (m *WorkerMetrics) InstrumentStepStore(store ports.StepStore) ports.StepStore {
	return &instrumentedSteps{StepStore: store, m: m}
}

type instrumentedSteps struct {
	ports.StepStore
	m *WorkerMetrics
}

// ClaimStep implements ports.StepStore.
func (s *instrumentedSteps) ClaimStep(ctx context.Context, stepUUID uuid.UUID, workerID string) (ports.StepSnapshot, error) {
	start := s.m.now()
	snap, err := s.StepStore.ClaimStep(ctx, stepUUID, workerID)
	result := ClaimResultClaimed
	if err != nil {
		result = ClaimResultError
		var nc *domain.NotClaimableError
		if errors.As(err, &nc) {
			result = ClaimResultNotClaimable
		}
	}
	s.m.ObserveClaim(result, s.m.now().Sub(start))
	return snap, err
}

// LoadAndClaim implements ports.StepStore. A call that claims counts as
// claimed; one that finds the step not claimable for this message (another
// state, task or namespace) as not_claimable; a failure as error.
func (s *instrumentedSteps) LoadAndClaim(ctx context.Context, stepUUID, taskUUID uuid.UUID, namespace, workerID string) (ports.StepSnapshot, bool, error) {
	start := s.m.now()
	snap, claimed, err := s.StepStore.LoadAndClaim(ctx, stepUUID, taskUUID, namespace, workerID)
	result := ClaimResultNotClaimable
	switch {
	case err != nil:
		result = ClaimResultError
	case claimed:
		result = ClaimResultClaimed
	}
	s.m.ObserveClaim(result, s.m.now().Sub(start))
	return snap, claimed, err
}
