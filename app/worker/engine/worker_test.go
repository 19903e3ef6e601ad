package engine

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newBus is the real event bus (it passes the EventBus contract suite,
// adapters/eventbus/eventbustest), 8 events deep each way.
func newBus() *eventbus.Bus {
	return eventbus.New(eventbus.Config{PublisherBufferSize: 8, SubscriberBufferSize: 8})
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := New(Config{WorkerID: "w"}, Deps{Handlers: handler.NewRegistry()})
	require.ErrorContains(t, err, "no queues")
	_, err = New(Config{WorkerID: "w", Queues: []string{"q"}}, Deps{})
	require.ErrorContains(t, err, "handlers")
	w, err := New(Config{WorkerID: "w", Queues: []string{"ns_queue"}, MaxConcurrentSteps: 600},
		Deps{Steps: mocks.NewStepStore(t), Queue: mocks.NewQueue(t), Bus: newBus(), Handlers: handler.NewRegistry()})
	require.NoError(t, err)
	c := w.Config()
	require.Equal(t, 2*600+16, c.CommandBufferSize, "buffer raised so completions always fit")
	require.Equal(t, DefaultShutdownTimeout, c.ShutdownTimeout)
	require.Equal(t, LifecycleStarting, w.Status().Lifecycle)
}

// A handler still running when the grace period ends is cancelled and its
// step persisted as a retryable worker_shutdown failure; Run returns nil.
func TestRunShutdownFailsUnfinishedSteps(t *testing.T) {
	t.Parallel()
	taskID, stepID := uuid.New(), uuid.New()
	steps, q := mocks.NewStepStore(t), mocks.NewQueue(t)
	msg, _ := json.Marshal(domain.SimpleStepMessage{TaskUUID: taskID, StepUUID: stepID})
	var served atomic.Bool
	q.EXPECT().Read(mock.Anything, "ns_queue", 30, mock.Anything).RunAndReturn(
		func(context.Context, string, int, int) ([]ports.QueueMessage, error) {
			if served.CompareAndSwap(false, true) {
				return []ports.QueueMessage{{MsgID: 9, Message: msg}}, nil
			}
			return nil, nil
		})
	q.EXPECT().SetVT(mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(true, nil).Maybe()
	snap := ports.StepSnapshot{
		Step:  domain.StepInfo{WorkflowStepUUID: stepID, TaskUUID: taskID, Name: "s", Attempts: 1, RetryLimit: 3},
		State: domain.StepEnqueued, DependenciesSatisfied: true,
		Task: domain.TaskInfo{TaskUUID: taskID, NamespaceName: "ns"},
	}
	tmpl := domain.TaskTemplate{Name: "t", NamespaceName: "ns", Version: "1.0.0",
		Steps: []domain.StepDefinition{{Name: "s", Handler: domain.HandlerDefinition{Callable: "block"}}}}
	conf, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	snap.Configuration = conf
	claimed := snap
	claimed.State = domain.StepInProgress
	steps.EXPECT().LoadAndClaim(mock.Anything, stepID, taskID, "ns", "w").Return(claimed, true, nil).Once()
	persisted := make(chan ports.StepOutcome, 1)
	steps.EXPECT().PersistOutcome(mock.Anything, mock.Anything).RunAndReturn(func(_ context.Context, o ports.StepOutcome) (bool, error) {
		persisted <- o
		return true, nil
	}).Once()

	started := make(chan struct{})
	reg := handler.NewRegistry()
	require.NoError(t, reg.Register("block", handler.HandlerFunc(func(ctx context.Context, _ *handler.StepContext) (handler.Success, error) {
		close(started)
		<-ctx.Done()
		return handler.Success{}, ctx.Err()
	})))
	w, err := New(Config{WorkerID: "w", Queues: []string{"ns_queue"}, PollInterval: 5 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond},
		Deps{Steps: steps, Queue: q, Bus: newBus(), Handlers: reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-started
	st := w.Status()
	require.Equal(t, LifecycleActive, st.Lifecycle)
	require.True(t, st.PipelineRunning)
	require.Equal(t, 1, st.InFlight)
	require.Equal(t, 1, st.HandlersRunning)

	stoppedAt := time.Now()
	cancel()
	require.NoError(t, <-done)
	require.GreaterOrEqual(t, time.Since(stoppedAt), 100*time.Millisecond, "waited for the grace period")
	o := <-persisted
	require.Equal(t, domain.ErrorTypeWorkerShutdown, *o.Result.Error.ErrorType)
	require.True(t, o.Result.Error.Retryable)
	require.Equal(t, int64(9), o.MsgID)
	st = w.Status()
	require.Equal(t, LifecycleStopping, st.Lifecycle)
	require.False(t, st.PipelineRunning)
	require.Equal(t, int64(1), st.FailedAtShutdown)
	require.Zero(t, st.InFlight)
	require.Error(t, w.Run(context.Background()), "Run twice")
}
