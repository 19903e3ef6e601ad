package pipeline

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/spanrecorder"
	"github.com/tasker-systems/tasker-go/ports"
)

// The step message's headers continue the orchestration's trace in a
// step.claim span, whose context the claim carries to the handler; the
// completion's trace context (the handler span) becomes the completion
// message's pgmq headers.
func TestClaimAndCompletionCarryTheTrace(t *testing.T) {
	rec := spanrecorder.Record(t)
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepInProgress, func(s *ports.StepSnapshot) {
		s.Step.Attempts = 1
	}), true, nil).Once()
	var ev domain.StepExecutionEvent
	f.bus.EXPECT().PublishExecution(anyCtx, mock.Anything).Run(func(_ context.Context, e domain.StepExecutionEvent) { ev = e }).Return(nil).Once()
	msg := message(taskID, stepID)
	msg.Headers = json.RawMessage(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`)
	var rel releaseCounter
	d, err := f.p.Process(context.Background(), testQueue, msg, rel.fn())
	require.NoError(t, err)
	require.Equal(t, DecisionClaimed, d)
	claims := spanrecorder.Named(rec, "step.claim")
	require.Len(t, claims, 1)
	require.Equal(t, "00f067aa0ba902b7", claims[0].Parent().SpanID().String())
	require.Contains(t, ev.Claim.TraceContext["traceparent"], claims[0].SpanContext().SpanID().String())

	handlerTP := "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
		return string(o.Headers) == `{"traceparent":"`+handlerTP+`"}`
	})).Return(true, nil).Once()
	claim := ev.Claim
	claim.TraceContext = map[string]string{"traceparent": handlerTP}
	require.NoError(t, f.p.Complete(context.Background(), domain.StepCompletionEvent{EventID: ev.EventID, Claim: claim,
		Result: domain.StepExecutionResult{StepUUID: stepID, Success: true, Status: "completed"}}))
	require.Equal(t, 1, rel.count())
}
