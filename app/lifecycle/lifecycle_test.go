package lifecycle_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
)

func TestStepFieldsCarryTheTraceIDOnlyWithASpan(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	task, step := uuid.New(), uuid.New()

	log.Info(lifecycle.StepClaimed, lifecycle.Step(context.Background(), task, step, "examples", "fetch", 2)...)
	tid := trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	log.Info(lifecycle.TaskCreated, lifecycle.Task(ctx, task, "examples")...)

	es := logs.All()
	require.Len(t, es, 2)
	first := es[0].ContextMap()
	require.Equal(t, task.String(), first[lifecycle.FieldTaskUUID])
	require.Equal(t, step.String(), first[lifecycle.FieldStepUUID])
	require.Equal(t, "examples", first[lifecycle.FieldNamespace])
	require.Equal(t, "fetch", first[lifecycle.FieldStep])
	require.EqualValues(t, 2, first[lifecycle.FieldAttempt])
	require.NotContains(t, first, lifecycle.FieldTraceID, "no span, no trace_id")
	require.Equal(t, tid.String(), es[1].ContextMap()[lifecycle.FieldTraceID])
}

// With tracing off nothing is carried (pgmq headers stay NULL); with it on
// the W3C traceparent of the span round-trips through the headers.
func TestHeadersRoundTripOnlyWhenEnabled(t *testing.T) {
	tid := trace.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled}))
	lifecycle.EnableTracing(false)
	require.Nil(t, lifecycle.Headers(ctx))
	require.Nil(t, lifecycle.Carrier(ctx))

	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	lifecycle.EnableTracing(true)
	t.Cleanup(func() { lifecycle.EnableTracing(false); otel.SetTextMapPropagator(prev) })
	h := lifecycle.Headers(ctx)
	require.JSONEq(t, `{"traceparent":"00-09090909090909090909090909090909-0700000000000000-01"}`, string(h))
	got := trace.SpanContextFromContext(lifecycle.FromHeaders(context.Background(), h))
	require.Equal(t, tid, got.TraceID())
	require.True(t, got.IsRemote())
	require.Nil(t, lifecycle.Headers(context.Background()), "no span, nothing to carry")
	require.Equal(t, context.Background(), lifecycle.FromHeaders(context.Background(), []byte(`not json`)))

	task := uuid.New()
	lifecycle.RememberTask(task, ctx)
	require.Equal(t, tid, trace.SpanContextFromContext(lifecycle.TaskContext(context.Background(), task)).TraceID())
	lifecycle.ForgetTask(task)
	require.False(t, trace.SpanContextFromContext(lifecycle.TaskContext(context.Background(), task)).IsValid())
}

// Off, nothing is extracted or remembered; an invalid span is never remembered.
func TestTracingOffIsInert(t *testing.T) {
	lifecycle.EnableTracing(false)
	require.False(t, lifecycle.TracingEnabled())
	require.NotNil(t, lifecycle.Tracer(lifecycle.WorkerTracer))
	bg := context.Background()
	require.Equal(t, bg, lifecycle.FromCarrier(bg, map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}))
	require.Equal(t, bg, lifecycle.FromHeaders(bg, []byte(`{"traceparent":"x"}`)))
	task := uuid.New()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	lifecycle.RememberTask(task, trace.ContextWithSpanContext(bg, sc))
	require.Equal(t, bg, lifecycle.TaskContext(bg, task))

	lifecycle.EnableTracing(true)
	t.Cleanup(func() { lifecycle.EnableTracing(false) })
	lifecycle.RememberTask(task, bg) // no span: nothing remembered
	require.Equal(t, bg, lifecycle.TaskContext(bg, task))
}

// A step's attempt is linked once, by its retry; off or without a span nothing is kept.
func TestAttemptLinks(t *testing.T) {
	step := uuid.New()
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	lifecycle.EnableTracing(false)
	lifecycle.RememberAttempt(step, ctx)
	_, ok := lifecycle.AttemptLink(step)
	require.False(t, ok, "off: nothing kept")

	lifecycle.EnableTracing(true)
	t.Cleanup(func() { lifecycle.EnableTracing(false) })
	lifecycle.RememberAttempt(step, context.Background())
	_, ok = lifecycle.AttemptLink(step)
	require.False(t, ok, "no span: nothing kept")
	lifecycle.RememberAttempt(step, ctx)
	link, ok := lifecycle.AttemptLink(step)
	require.True(t, ok)
	require.Equal(t, sc.SpanID(), link.SpanContext.SpanID())
	_, ok = lifecycle.AttemptLink(step)
	require.False(t, ok, "linked once")
}
