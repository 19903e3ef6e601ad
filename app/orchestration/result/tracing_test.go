package result_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/spanrecorder"
	"github.com/tasker-systems/tasker-go/ports"
)

// A completion message's headers continue the worker's trace: a step.result
// span, child of the carried span, which the task then remembers so what the
// batch enqueues joins the same trace. A message without headers makes no span.
func TestStepResultContinuesTheCarriedTrace(t *testing.T) {
	rec := spanrecorder.Record(t)
	task, step, bare := uuid.New(), uuid.New(), uuid.New()
	f := setup(t, result.Config{PollInterval: time.Hour, BatchSize: 10}, creator{},
		ports.StepResultView{TaskUUID: task, StepUUID: step, State: domain.StepComplete},
		ports.StepResultView{TaskUUID: task, StepUUID: bare, State: domain.StepComplete})
	_, err := f.q.SendWithHeaders(context.Background(), domain.QueueStepResults, message(task, step),
		json.RawMessage(`{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`), 0)
	require.NoError(t, err)
	f.q.add(domain.QueueStepResults, string(message(task, bare)))
	stop := runProcessor(t, f.p, nil)
	require.Eventually(t, func() bool { return len(spanrecorder.Named(rec, "step.result")) == 1 }, 5*time.Second, time.Millisecond)
	stop()
	s := spanrecorder.Named(rec, "step.result")[0]
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String())
	require.Equal(t, "00f067aa0ba902b7", s.Parent().SpanID().String())
	remembered := trace.SpanContextFromContext(lifecycle.TaskContext(context.Background(), task))
	require.Equal(t, s.SpanContext().SpanID(), remembered.SpanID(), "the task's next work is parented on it")
	lifecycle.ForgetTask(task)
}
