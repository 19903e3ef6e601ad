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
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/outcome"
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
		publish(t, f.bus, ev)
		var c domain.StepCompletionEvent
		select {
		case c = <-f.bus.Completions():
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

// The handler's logger carries the step's ids, its attempt and the trace id
// of the handler span, so a handler's own lines join the lifecycle lines and
// the trace.
func TestHandlerLoggerCarriesAttemptAndTraceID(t *testing.T) {
	spanrecorder.Record(t)
	core, logs := observer.New(zapcore.InfoLevel)
	bus, reg := newBus(), handler.NewRegistry()
	require.NoError(t, reg.Register("c", handler.HandlerFunc(func(_ context.Context, sc *handler.StepContext) (handler.Success, error) {
		sc.Logger().Info("from the handler")
		return handler.Succeed(1), nil
	})))
	d, err := New(Config{}, Deps{Bus: bus, Handlers: reg, Logger: zap.New(core), Results: outcome.Builder{WorkerID: "w"}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ev := event("c", time.Time{})
	ev.Claim.Attempts = 3
	ev.Claim.TraceContext = map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	publish(t, bus, ev)
	select {
	case <-bus.Completions():
	case <-time.After(5 * time.Second):
		t.Fatal("no completion")
	}
	lines := logs.FilterMessage("from the handler").All()
	require.Len(t, lines, 1)
	f := lines[0].ContextMap()
	require.EqualValues(t, 3, f["attempt"])
	require.Equal(t, "0af7651916cd43dd8448eb211c80319c", f["trace_id"])
	require.Equal(t, ev.Step.WorkflowStepUUID.String(), f["step_uuid"])
	require.Equal(t, ev.Task.TaskUUID.String(), f["task_uuid"])
}
