package pipeline

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock has a settable now; After channels fire only when Fire is called,
// so heartbeats and backoff waits are driven by the test, never by sleeping.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []chan time.Time
	afters  chan time.Duration
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, afters: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, ch)
	c.mu.Unlock()
	select {
	case c.afters <- d:
	default:
	}
	return ch
}

// Fire releases every pending After.
func (c *fakeClock) Fire() {
	c.mu.Lock()
	ws := c.waiters
	c.waiters = nil
	now := c.now
	c.mu.Unlock()
	for _, w := range ws {
		w <- now
	}
}

const testQueue = "examples_queue"

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	p     *Pipeline
	steps *mocks.StepStore
	queue *mocks.Queue
	bus   *mocks.EventBus
	clock *fakeClock
}

func setup(t *testing.T) fixture {
	t.Helper()
	f := fixture{
		steps: mocks.NewStepStore(t),
		queue: mocks.NewQueue(t),
		bus:   mocks.NewEventBus(t),
		clock: newFakeClock(t0),
	}
	p, err := New(Config{WorkerID: "worker-test", Environment: "test", VisibilityTimeoutSeconds: 30,
		StepClaimTimeout: 300 * time.Second, CorrelationTimeout: time.Minute, PersistRetryFor: time.Minute},
		Deps{Steps: f.steps, Queue: f.queue, Bus: f.bus, Clock: f.clock})
	require.NoError(t, err)
	f.p = p
	return f
}

// loadAndClaim expects the pipeline's first read of a message for step: one
// LoadAndClaim by this worker for the test queue's namespace.
func (f fixture) loadAndClaim(step any) *mocks.StepStore_LoadAndClaim_Call {
	return f.steps.EXPECT().LoadAndClaim(anyCtx, step, mock.Anything, "examples", "worker-test")
}

// testConfiguration is a two-step template: root "a" and "b" after "a" with
// timeout_seconds 600, plus a "test" environment override for "b".
func testConfiguration(t *testing.T) json.RawMessage {
	t.Helper()
	timeout := uint32(600)
	testTimeout := uint32(900)
	tmpl := domain.TaskTemplate{
		Name: "two_step", NamespaceName: "examples", Version: "1.0.0",
		Steps: []domain.StepDefinition{
			{Name: "a", Handler: domain.HandlerDefinition{Callable: "examples.square"}},
			{Name: "b", Dependencies: []string{"a"}, TimeoutSeconds: &timeout,
				Handler: domain.HandlerDefinition{Callable: "examples.square", Initialization: map[string]any{"k": "base"}}},
		},
		Environments: map[string]domain.EnvironmentOverride{"test": {Steps: []domain.StepOverride{
			{Name: "b", TimeoutSeconds: &testTimeout, Handler: &domain.HandlerOverride{Initialization: map[string]any{"k": "test"}}},
		}}},
	}
	raw, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	return raw
}

type snapOpt func(*ports.StepSnapshot)

func snapshot(t *testing.T, taskID, stepID uuid.UUID, name string, state domain.StepState, opts ...snapOpt) ports.StepSnapshot {
	s := ports.StepSnapshot{
		Step:                  domain.StepInfo{WorkflowStepUUID: stepID, TaskUUID: taskID, Name: name, RetryLimit: 3},
		State:                 state,
		DependenciesSatisfied: true,
		Task:                  domain.TaskInfo{TaskUUID: taskID, NamespaceName: "examples", TaskName: "two_step", TaskVersion: "1.0.0", Context: json.RawMessage(`{"even_number":2}`)},
		TaskState:             domain.TaskInProgress,
		Configuration:         testConfiguration(t),
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func message(taskID, stepID uuid.UUID) ports.QueueMessage {
	raw, _ := json.Marshal(domain.SimpleStepMessage{TaskUUID: taskID, StepUUID: stepID})
	return ports.QueueMessage{MsgID: 42, Message: raw}
}

// releaseCounter counts release calls.
type releaseCounter struct {
	mu sync.Mutex
	n  int
}

func (r *releaseCounter) fn() func() {
	return func() { r.mu.Lock(); r.n++; r.mu.Unlock() }
}

func (r *releaseCounter) count() int { r.mu.Lock(); defer r.mu.Unlock(); return r.n }
