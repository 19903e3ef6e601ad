package lifecycle

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracer names: the instrumentation scope of each service's spans.
const (
	OrchestrationTracer = "github.com/tasker-systems/tasker-go/orchestration"
	WorkerTracer        = "github.com/tasker-systems/tasker-go/worker"
)

// enabled is set by the composition root when an exporter is installed.
// While it is false the services skip building trace headers, so messages
// keep headers NULL (contract §4.3) and tracing costs nothing.
var enabled atomic.Bool

// EnableTracing turns trace propagation on (or off); the composition root
// calls it after installing a tracer provider with an exporter.
func EnableTracing(on bool) { enabled.Store(on) }

// TracingEnabled reports whether trace propagation is on.
func TracingEnabled() bool { return enabled.Load() }

// Tracer is the global provider's tracer of a service (one of the *Tracer names).
func Tracer(name string) trace.Tracer { return otel.Tracer(name) }

// Carrier is the W3C trace context of ctx's span as header fields
// (traceparent, tracestate); nil when tracing is off or ctx has no span.
func Carrier(ctx context.Context) map[string]string {
	if !enabled.Load() || !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	return c
}

// Headers is Carrier encoded as a pgmq headers object; nil (SQL NULL) when
// there is nothing to carry. The message body is never touched: the trace
// context travels in pgmq's separate headers column.
func Headers(ctx context.Context) json.RawMessage {
	c := Carrier(ctx)
	if c == nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil
	}
	return b
}

// FromCarrier returns ctx with the remote span context of c, if any.
func FromCarrier(ctx context.Context, c map[string]string) context.Context {
	if len(c) == 0 || !enabled.Load() {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(c))
}

// FromHeaders returns ctx with the remote span context carried in a pgmq
// message's headers; headers that are absent or not a string map are ignored.
func FromHeaders(ctx context.Context, headers json.RawMessage) context.Context {
	if len(headers) == 0 || !enabled.Load() {
		return ctx
	}
	var c map[string]any
	if json.Unmarshal(headers, &c) != nil {
		return ctx
	}
	m := make(map[string]string, len(c))
	for k, v := range c {
		if s, ok := v.(string); ok {
			m[k] = s
		}
	}
	return FromCarrier(ctx, m)
}

// maxRememberedTasks bounds each span memory; when full it is cleared (a
// forgotten task's next span starts a new trace, nothing breaks).
const maxRememberedTasks = 100_000

// spanMemory is the latest span context of each task or step, for work that
// arrives without a message to carry its trace. Tasks and steps keep the
// same rule: remembered only while tracing is on, and the whole memory
// cleared when full.
type spanMemory struct {
	mu sync.Mutex
	m  map[uuid.UUID]trace.SpanContext
}

func newSpanMemory() *spanMemory { return &spanMemory{m: map[uuid.UUID]trace.SpanContext{}} }

// remember records ctx's span as id's latest, if tracing is on and ctx has one.
func (s *spanMemory) remember(id uuid.UUID, ctx context.Context) {
	if !enabled.Load() {
		return
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxRememberedTasks {
		clear(s.m)
	}
	s.m[id] = sc
}

// get returns id's remembered span.
func (s *spanMemory) get(id uuid.UUID) (trace.SpanContext, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.m[id]
	return sc, ok
}

// take returns id's remembered span and forgets it.
func (s *spanMemory) take(id uuid.UUID) (trace.SpanContext, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.m[id]
	delete(s.m, id)
	return sc, ok
}

// taskTraces is the latest span context of each task this orchestration
// process worked on. Work on a task that arrives without a message to carry
// the trace (the enqueue after creation, a retry after its backoff) is
// parented on it, so a task keeps one trace id.
var taskTraces = newSpanMemory()

// RememberTask records ctx's span as the latest of task.
func RememberTask(task uuid.UUID, ctx context.Context) { taskTraces.remember(task, ctx) }

// TaskContext returns ctx parented on task's remembered span, if any.
func TaskContext(ctx context.Context, task uuid.UUID) context.Context {
	if !enabled.Load() {
		return ctx
	}
	sc, ok := taskTraces.get(task)
	if !ok {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// ForgetTask drops task's remembered span (the task is finished).
func ForgetTask(task uuid.UUID) { taskTraces.take(task) }

// stepTraces is the handler span of each step's latest finished attempt,
// from its completion message; a retry's enqueue span links to it, so the
// attempts of a step are linked spans.
var stepTraces = newSpanMemory()

// RememberAttempt records ctx's (remote) span as step's latest attempt.
func RememberAttempt(step uuid.UUID, ctx context.Context) { stepTraces.remember(step, ctx) }

// AttemptLink is a span link to step's latest attempt; ok is false when none
// is remembered. The entry is dropped: a link is made once, by the retry.
func AttemptLink(step uuid.UUID) (trace.Link, bool) {
	sc, ok := stepTraces.take(step)
	return trace.Link{SpanContext: sc}, ok
}
