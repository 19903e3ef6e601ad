package enqueue_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/spanrecorder"
	"github.com/tasker-systems/tasker-go/ports"
)

// With tracing on, the batch asks for the step messages' headers: each
// task gets a step.enqueue span parented on the task's remembered span, its
// traceparent goes into the headers, and a finalization is a task.finalize
// span in the same trace (after which the task is forgotten).
func TestBatchTraceHeadersAndFinalizeSpan(t *testing.T) {
	rec := spanrecorder.Record(t)
	f := setup(t, enqueue.Config{})
	task := uuid.New()
	ctx, root := otel.Tracer("test").Start(context.Background(), "task.create")
	lifecycle.RememberTask(task, ctx)
	root.End()
	retried := uuid.New()
	_, failed := otel.Tracer("test").Start(ctx, "step.handler")
	failed.End()
	lifecycle.RememberAttempt(retried, trace.ContextWithSpan(ctx, failed))

	var headers json.RawMessage
	f.batches.EXPECT().ProcessTasks(mock.Anything, mock.Anything).RunAndReturn(
		func(_ context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error) {
			require.NotNil(t, b.TraceHeaders)
			headers = b.TraceHeaders(task)
			headers = b.TraceHeaders(task) // a retried batch asks again: one span survives
			return ports.TaskBatchReport{
				Enqueued: []ports.EnqueueReport{{TaskUUID: task, Namespace: "ns", StepsEnqueued: 1, StepsRetried: 1,
					Steps: []ports.EnqueuedStep{{StepUUID: retried, Name: "s", Attempts: 1, Retry: true}}}},
				Finalized: []ports.FinalizationReport{{TaskUUID: task, From: domain.TaskInProgress, To: domain.TaskComplete,
					Namespace: "ns", TaskName: "t", CreatedAt: time.Now().Add(-time.Second)}},
			}, nil
		}).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 1).Once()
	f.metrics.EXPECT().StepRetried("ns", "s").Once()
	f.metrics.EXPECT().TaskFinalized(domain.TaskComplete).Once()
	f.metrics.EXPECT().TaskDuration("ns", "t", domain.TaskComplete, mock.Anything).Once()
	_, err := f.svc.EnqueueTask(context.Background(), task)
	require.NoError(t, err)

	var h map[string]string
	require.NoError(t, json.Unmarshal(headers, &h))
	tid := root.SpanContext().TraceID().String()
	require.Contains(t, h["traceparent"], tid)
	enq := spanrecorder.Named(rec, "step.enqueue")
	require.Len(t, enq, 2, "the first span of the retried batch is ended too")
	fin := spanrecorder.Named(rec, "task.finalize")
	require.Len(t, fin, 1)
	require.Equal(t, tid, fin[0].SpanContext().TraceID().String())
	require.Equal(t, root.SpanContext().SpanID(), enq[1].Parent().SpanID())
	require.Len(t, enq[1].Links(), 1, "the retry links to the failed attempt")
	require.Equal(t, failed.SpanContext().SpanID(), enq[1].Links()[0].SpanContext.SpanID())
	require.False(t, lifecycle.TaskContext(context.Background(), task) != context.Background(), "forgotten once complete")
}
