package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/spanrecorder"
)

// The handler runs inside a step.handler span continuing the claim's trace
// context; its own spans are children; the completion carries the handler
// span's context; a failure marks the span as an error.
func TestHandlerSpanContinuesTheClaimAndReachesTheCompletion(t *testing.T) {
	rec := spanrecorder.Record(t)
	f := setup(t, 2)
	var inHandler trace.SpanContext
	require.NoError(t, f.reg.Register("ok", handler.HandlerFunc(func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
		inHandler = trace.SpanContextFromContext(ctx)
		_, child := otel.Tracer("user").Start(ctx, "user.work")
		child.End()
		return handler.Success{Result: 1}, nil
	})))
	require.NoError(t, f.reg.Register("bad", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Success{}, errors.New("boom")
	})))
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, callable := range []string{"ok", "bad"} {
		ev := event(callable, time.Time{})
		ev.Claim.TraceContext = map[string]string{"traceparent": parent}
		f.bus.exec <- ev
		var c domain.StepCompletionEvent
		select {
		case c = <-f.bus.comp:
		case <-time.After(5 * time.Second):
			t.Fatal("no completion")
		}
		require.Contains(t, c.Claim.TraceContext["traceparent"], "0af7651916cd43dd8448eb211c80319c", "same trace")
		require.NotEqual(t, parent, c.Claim.TraceContext["traceparent"], "the handler span, not the claim's")
	}
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", inHandler.TraceID().String())
	spans := spanrecorder.Named(rec, "step.handler")
	require.Len(t, spans, 2)
	for _, s := range spans {
		require.Equal(t, "b7ad6b7169203331", s.Parent().SpanID().String())
	}
	children := spanrecorder.Named(rec, "user.work")
	require.Len(t, children, 1)
	require.Equal(t, inHandler.SpanID(), children[0].Parent().SpanID())
	var failed int
	for _, s := range spans {
		if s.Status().Code == codes.Error {
			failed++
			require.Equal(t, "boom", s.Status().Description)
		}
	}
	require.Equal(t, 1, failed)
	require.True(t, lifecycle.TracingEnabled())
}
