package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type finder struct{ cfg json.RawMessage }

func (f finder) GetTemplate(context.Context, string, string, string) (ports.RegisteredTemplate, error) {
	return ports.RegisteredTemplate{Name: "t", Configuration: f.cfg}, nil
}

type fixture struct {
	creator   *mocks.TaskCreator
	enqueuer  *mocks.StepEnqueuer
	canceller *mocks.TaskCanceller
	queue     *mocks.Queue
	metrics   *mocks.OrchestrationMetrics
	svc       *service.Service
}

func setup(t *testing.T) fixture {
	return setupWith(t, nil, time.Hour)
}

// setupWith is setup with a leader election (nil: none) and a poll interval,
// which is also the election's.
func setupWith(t *testing.T, lead ports.Leadership, poll time.Duration) fixture {
	tmpl, err := domain.ParseTemplateYAML([]byte("name: t\nnamespace_name: ns\nversion: \"1.0.0\"\nsteps:\n  - name: a\n    handler: {callable: x}\n"))
	require.NoError(t, err)
	cfg, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	f := fixture{creator: mocks.NewTaskCreator(t), enqueuer: mocks.NewStepEnqueuer(t), canceller: mocks.NewTaskCanceller(t),
		queue: mocks.NewQueue(t), metrics: mocks.NewOrchestrationMetrics(t)}
	f.metrics.EXPECT().Leader(mock.Anything).Maybe()
	f.svc = service.New(service.Config{
		Enqueue:       enqueue.Config{CycleInterval: time.Hour},
		Results:       result.Config{PollInterval: poll},
		ShutdownGrace: time.Second,
	}, service.Deps{Templates: finder{cfg: cfg}, Creator: f.creator, Enqueuer: f.enqueuer,
		Batches: mocks.NewTaskBatchProcessor(t), Canceller: f.canceller,
		Queue: f.queue, Metrics: f.metrics, Leadership: lead})
	return f
}

func TestNewAppliesDefaults(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.Contains(t, f.svc.ID(), "orchestrator-")
	require.Equal(t, service.DefaultEnvironment, f.svc.Environment())
	require.False(t, f.svc.Running())
	require.False(t, f.svc.Stopping())
}

func TestCreateTaskCountsAndTriggersEnqueue(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := uuid.New()
	f.creator.EXPECT().CreateTask(mock.Anything, mock.Anything).Return(domain.TaskCreationResponse{TaskUUID: id}, nil).Once()
	f.metrics.EXPECT().TaskCreated("ns").Once()
	resp, err := f.svc.CreateTask(context.Background(), domain.TaskRequest{Name: "t", Namespace: "ns", Version: "1.0.0"})
	require.NoError(t, err)
	require.Equal(t, id, resp.TaskUUID)

	_, err = f.svc.CreateTask(context.Background(), domain.TaskRequest{Namespace: "ns", Version: "1.0.0"})
	var ve *domain.ValidationError
	require.ErrorAs(t, err, &ve, "validation errors pass through unchanged")
}

func TestCancelAndResolve(t *testing.T) {
	t.Parallel()
	f := setup(t)
	task, step := uuid.New(), uuid.New()
	f.canceller.EXPECT().CancelTask(mock.Anything, task).Return(3, nil).Once()
	require.NoError(t, f.svc.CancelTask(context.Background(), task))

	res := ports.ManualResolution{ResolvedBy: "ops"}
	f.canceller.EXPECT().ResolveStep(mock.Anything, task, step, res).
		Return(ports.FinalizationReport{From: domain.TaskInProgress, To: domain.TaskComplete}, nil).Once()
	f.metrics.EXPECT().TaskFinalized(domain.TaskComplete).Once()
	require.NoError(t, f.svc.ResolveStep(context.Background(), task, step, res))

	f.canceller.EXPECT().ResolveStep(mock.Anything, task, step, res).
		Return(ports.FinalizationReport{From: domain.TaskInProgress, To: domain.TaskInProgress}, nil).Once()
	require.NoError(t, f.svc.ResolveStep(context.Background(), task, step, res), "still running: enqueue triggered")

	boom := &ports.ConflictError{Message: "no"}
	f.canceller.EXPECT().ResolveStep(mock.Anything, task, step, res).Return(ports.FinalizationReport{}, boom).Once()
	require.ErrorIs(t, f.svc.ResolveStep(context.Background(), task, step, res), boom)
}

func TestRunCreatesQueuesRunsLoopsAndStopsGracefully(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, q := range service.OwnedQueues {
		f.queue.EXPECT().CreateQueue(mock.Anything, q).Return(nil).Once()
	}
	f.queue.EXPECT().Read(mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	require.Eventually(t, f.svc.Running, time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.True(t, f.svc.Stopping())
	require.False(t, f.svc.Running())

	_, err := f.svc.CreateTask(context.Background(), domain.TaskRequest{})
	require.ErrorIs(t, err, service.ErrShuttingDown)
	require.ErrorIs(t, err, ports.ErrUnavailable, "maps to 503")
}

func TestRunFailsWhenAQueueCannotBeCreated(t *testing.T) {
	t.Parallel()
	f := setup(t)
	boom := errors.New("permission denied for schema pgmq")
	f.queue.EXPECT().CreateQueue(mock.Anything, mock.Anything).Return(boom).Once()
	require.ErrorIs(t, f.svc.Run(context.Background()), boom)
}

// TestRunElectsAndReleasesAtShutdown: with a Leadership the service stands
// by until it wins an election, reads no queue meanwhile (the Queue mock
// has no Read expectation until it leads), and releases leadership when it
// stops.
func TestRunElectsAndReleasesAtShutdown(t *testing.T) {
	t.Parallel()
	lead := mocks.NewLeadership(t)
	var win atomic.Bool
	lead.EXPECT().TryLead(mock.Anything).RunAndReturn(func(context.Context) (bool, error) { return win.Load(), nil })
	lead.EXPECT().Release(mock.Anything).Return(nil).Once()
	f := setupWith(t, lead, time.Millisecond)
	f.queue.EXPECT().CreateQueue(mock.Anything, mock.Anything).Return(nil).Times(3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	require.Eventually(t, f.svc.Running, time.Second, time.Millisecond)
	require.False(t, f.svc.Leading())

	f.queue.EXPECT().Read(mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	win.Store(true)
	require.Eventually(t, f.svc.Leading, 5*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.False(t, f.svc.Leading(), "released")
}
