package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
)

// installRecorder makes an SDK provider with an in-memory recorder the
// global one and turns propagation on, until the test ends.
func installRecorder(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	telemetry.InstallTracerProvider(tp)
	lifecycle.EnableTracing(true)
	t.Cleanup(func() {
		lifecycle.EnableTracing(false)
		otel.SetTracerProvider(prev)
		_ = tp.Shutdown(context.Background())
	})
	return rec, tp
}

// childSpanHandlers are the example handlers, each adding a child span of
// its own in the handler's context (what user code does).
func childSpanHandlers(t *testing.T) *handler.Registry {
	t.Helper()
	reg := handler.NewRegistry()
	wrap := func(inner handler.HandlerFunc) handler.HandlerFunc {
		return func(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
			ctx, span := otel.Tracer("example-handlers").Start(ctx, "user.compute",
				trace.WithAttributes(attribute.String("step", sc.StepName())))
			defer span.End()
			return inner(ctx, sc)
		}
	}
	require.NoError(t, reg.Register(examples.SquareCallable, wrap(examples.Square)))
	require.NoError(t, reg.Register(examples.MultiplyCallable, wrap(examples.Multiply)))
	return reg
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// A diamond task is one trace across both services: POST /v1/tasks →
// task.create → step.enqueue (trace context in the pgmq headers) →
// step.claim (worker) → step.handler → the handler's own child span →
// step.result (orchestration, from the completion message's headers) →
// step.enqueue of the next steps … → task.finalize.
func TestDiamondTaskIsOneTraceAcrossServices(t *testing.T) {
	rec, tp := installRecorder(t)
	st := startObservedStack(t, childSpanHandlers(t))
	task := apiTask(t, st.api.URL, "diamond_workflow", 2)
	require.Equal(t, "complete", apiWait(t, st.api.URL, task.TaskUUID, 30*time.Second))
	var spans []sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		require.NoError(t, tp.ForceFlush(context.Background()))
		spans = rec.Ended()
		for _, s := range spans {
			if s.Name() == "task.finalize" && attr(s, "tasker.task_uuid") == task.TaskUUID.String() {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "task.finalize span")

	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "POST /v1/tasks" {
			root = s
		}
	}
	require.NotNil(t, root, "the API request span")
	tid := root.SpanContext().TraceID()
	var mine []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == tid {
			mine = append(mine, s)
		}
		if a := attr(s, "tasker.task_uuid"); a == task.TaskUUID.String() {
			require.Equal(t, tid, s.SpanContext().TraceID(), "span %s of the task is in the task's trace", s.Name())
		}
	}
	count := map[string]int{}
	scopes := map[string]bool{}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range mine {
		count[s.Name()]++
		scopes[s.InstrumentationScope().Name] = true
		byID[s.SpanContext().SpanID()] = s
	}
	require.Equal(t, 1, count["task.create"])
	require.Equal(t, 4, count["step.handler"], "one per step")
	require.Equal(t, 4, count["user.compute"], "the handlers' own child spans")
	require.GreaterOrEqual(t, count["step.claim"], 4)
	require.Equal(t, 4, count["step.result"])
	require.Equal(t, 3, count["step.enqueue"], "start; both branches; end")
	require.Equal(t, 1, count["task.finalize"])
	require.True(t, scopes[lifecycle.OrchestrationTracer] && scopes[lifecycle.WorkerTracer], "both services")
	for _, s := range mine {
		p := byID[s.Parent().SpanID()]
		switch s.Name() {
		case "user.compute":
			require.Equal(t, "step.handler", p.Name())
		case "step.handler":
			require.Equal(t, "step.claim", p.Name())
		case "step.claim":
			require.Equal(t, "step.enqueue", p.Name(), "continued from the step message's headers")
		case "step.result":
			require.Equal(t, "step.handler", p.Name(), "continued from the completion message's headers")
		case "task.create":
			require.Equal(t, "POST /v1/tasks", p.Name())
		}
	}

	// Every lifecycle line of the task, in both services, carries the trace id.
	for svc, sink := range map[string]*logSink{"orchestration": st.orchLogs, "worker": st.workerLogs} {
		es := sink.entries(t, task.TaskUUID)
		require.NotEmpty(t, es, svc)
		for _, e := range es {
			require.Equal(t, tid.String(), e[lifecycle.FieldTraceID], "%s line %v", svc, e)
		}
		t.Logf("%s: %d lifecycle lines of the task, all with trace_id %s", svc, len(es), tid)
	}

	// Print the tree for the record.
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, s := range mine {
		children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
	}
	for _, cs := range children {
		sort.Slice(cs, func(i, j int) bool { return cs[i].StartTime().Before(cs[j].StartTime()) })
	}
	var b strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		scope := strings.TrimPrefix(s.InstrumentationScope().Name, "github.com/tasker-systems/tasker-go/")
		label := attr(s, "tasker.step")
		if label == "" {
			label = attr(s, "step")
		}
		fmt.Fprintf(&b, "%s%s [%s] span=%s parent=%s %s\n", strings.Repeat("  ", depth), s.Name(), scope,
			s.SpanContext().SpanID(), s.Parent().SpanID(), label)
		for _, c := range children[s.SpanContext().SpanID()] {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	t.Logf("trace %s of task %s (%d spans):\n%s", tid, task.TaskUUID, len(mine), b.String())
	require.Equal(t, len(mine), strings.Count(b.String(), "\n"), "every span of the trace hangs off the request span")
}

// A retried step stays in its task's trace: its second attempt's handler span
// is a descendant of the first, and the enqueue that retries it carries a
// span link to the failed attempt's handler span.
func TestRetryIsALinkedSpanInTheTasksTrace(t *testing.T) {
	rec, tp := installRecorder(t)
	st := startObservedStack(t, failOnce(t, "diamond_branch_b"))
	task := apiTask(t, st.api.URL, "diamond_workflow", 2)
	require.Equal(t, "complete", apiWait(t, st.api.URL, task.TaskUUID, 30*time.Second))
	var handlers []sdktrace.ReadOnlySpan
	var retryEnqueue sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		require.NoError(t, tp.ForceFlush(context.Background()))
		handlers, retryEnqueue = nil, nil
		for _, s := range rec.Ended() {
			if s.Name() == "step.handler" && attr(s, "tasker.step") == "diamond_branch_b" {
				handlers = append(handlers, s)
			}
			if s.Name() == "step.enqueue" && attr(s, "tasker.steps_retried") == "1" {
				retryEnqueue = s
			}
		}
		return len(handlers) == 2 && retryEnqueue != nil
	}, 10*time.Second, 20*time.Millisecond)
	sort.Slice(handlers, func(i, j int) bool { return handlers[i].StartTime().Before(handlers[j].StartTime()) })
	failed, second := handlers[0], handlers[1]
	require.Equal(t, "1", attr(failed, "tasker.attempt"))
	require.Equal(t, "2", attr(second, "tasker.attempt"))
	require.Equal(t, failed.SpanContext().TraceID(), second.SpanContext().TraceID(), "one trace")
	require.Equal(t, failed.SpanContext().TraceID(), retryEnqueue.SpanContext().TraceID())
	require.Len(t, retryEnqueue.Links(), 1)
	link := retryEnqueue.Links()[0]
	require.Equal(t, failed.SpanContext().SpanID(), link.SpanContext.SpanID(), "the retry links to the failed attempt")
	t.Logf("retry: step.enqueue %s links to failed step.handler %s (attempt 1); attempt 2 handler %s; trace %s",
		retryEnqueue.SpanContext().SpanID(), failed.SpanContext().SpanID(), second.SpanContext().SpanID(), failed.SpanContext().TraceID())
}
