package lifecycle_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
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
