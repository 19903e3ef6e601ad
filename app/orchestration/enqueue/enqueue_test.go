package enqueue_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// queues records CreateQueue calls.
type queues struct {
	mu      sync.Mutex
	created []string
	err     error
}

func (q *queues) CreateQueue(_ context.Context, name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.created = append(q.created, name)
	return q.err
}

type fixture struct {
	store   *mocks.StepEnqueuer
	final   *mocks.TaskFinalizer
	queues  *queues
	metrics *mocks.OrchestrationMetrics
	svc     *enqueue.Service
}

func setup(t *testing.T, cfg enqueue.Config) fixture {
	f := fixture{store: mocks.NewStepEnqueuer(t), final: mocks.NewTaskFinalizer(t), queues: &queues{},
		metrics: mocks.NewOrchestrationMetrics(t)}
	f.svc = enqueue.New(cfg, f.store, f.final, f.queues, f.metrics, nil)
	return f
}

func TestRunCycleEnqueuesEachCandidate(t *testing.T) {
	f := setup(t, enqueue.Config{ClaimerID: "me", TasksPerCycle: 5})
	a, b := uuid.New(), uuid.New()
	f.store.EXPECT().CandidateTasks(mock.Anything, "me", 5).Return([]uuid.UUID{a, b}, nil).Once()
	f.store.EXPECT().EnqueueTask(mock.Anything, a).Return(ports.EnqueueReport{TaskUUID: a, Namespace: "ns", StepsEnqueued: 2}, true, nil).Once()
	f.store.EXPECT().EnqueueTask(mock.Anything, b).Return(ports.EnqueueReport{TaskUUID: b}, false, nil).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 2).Once()
	f.metrics.EXPECT().EnqueueCycle(mock.Anything).Once()
	n, err := f.svc.RunCycle(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

func TestRunCycleReturnsStoreErrors(t *testing.T) {
	f := setup(t, enqueue.Config{})
	boom := errors.New("db down")
	f.store.EXPECT().CandidateTasks(mock.Anything, mock.Anything, enqueue.DefaultTasksPerCycle).Return(nil, boom).Once()
	f.metrics.EXPECT().EnqueueCycle(mock.Anything).Times(2)
	_, err := f.svc.RunCycle(context.Background())
	require.ErrorIs(t, err, boom)

	id := uuid.New()
	f.store.EXPECT().CandidateTasks(mock.Anything, mock.Anything, mock.Anything).Return([]uuid.UUID{id}, nil).Once()
	f.store.EXPECT().EnqueueTask(mock.Anything, id).Return(ports.EnqueueReport{}, false, boom).Once()
	_, err = f.svc.RunCycle(context.Background())
	require.ErrorIs(t, err, boom)
}

func TestEnqueueTaskCreatesMissingQueueOutsideTheTransactionAndRetries(t *testing.T) {
	f := setup(t, enqueue.Config{})
	id := uuid.New()
	f.store.EXPECT().EnqueueTask(mock.Anything, id).Return(ports.EnqueueReport{}, false, &ports.QueueMissingError{Queue: "ns_queue"}).Once()
	f.store.EXPECT().EnqueueTask(mock.Anything, id).Return(ports.EnqueueReport{TaskUUID: id, Namespace: "ns", StepsEnqueued: 1}, true, nil).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 1).Once()
	n, err := f.svc.EnqueueTask(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"ns_queue"}, f.queues.created)
}

func TestEnqueueTaskQueueCreationFails(t *testing.T) {
	f := setup(t, enqueue.Config{})
	f.queues.err = errors.New("permission denied")
	f.store.EXPECT().EnqueueTask(mock.Anything, mock.Anything).Return(ports.EnqueueReport{}, false, &ports.QueueMissingError{Queue: "ns_queue"}).Once()
	_, err := f.svc.EnqueueTask(context.Background(), uuid.New())
	require.ErrorIs(t, err, f.queues.err)
}

func TestFinalizeAndEnqueue(t *testing.T) {
	f := setup(t, enqueue.Config{})
	id := uuid.New()
	fin := ports.FinalizationReport{TaskUUID: id, From: domain.TaskInProgress, To: domain.TaskInProgress}
	f.final.EXPECT().FinalizeAndEnqueue(mock.Anything, id, ports.ConsumedMessages{}).Return(fin, ports.EnqueueReport{Namespace: "ns", StepsEnqueued: 3}, nil).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 3).Once()
	got, err := f.svc.FinalizeAndEnqueue(context.Background(), id, ports.ConsumedMessages{})
	require.NoError(t, err)
	require.Equal(t, fin, got)

	boom := errors.New("deadlock")
	f.final.EXPECT().FinalizeAndEnqueue(mock.Anything, id, ports.ConsumedMessages{}).Return(ports.FinalizationReport{}, ports.EnqueueReport{}, boom).Once()
	_, err = f.svc.FinalizeAndEnqueue(context.Background(), id, ports.ConsumedMessages{})
	require.ErrorIs(t, err, boom)
}

func TestTriggerIsNonBlockingWhenTheBufferIsFull(t *testing.T) {
	f := setup(t, enqueue.Config{TriggerBuffer: 1})
	require.True(t, f.svc.Trigger(uuid.New()))
	require.False(t, f.svc.Trigger(uuid.New()), "full buffer drops the trigger")
}

func TestRunServesTriggersAndCyclesUntilCancelled(t *testing.T) {
	f := setup(t, enqueue.Config{CycleInterval: 5 * time.Millisecond})
	id := uuid.New()
	triggered := make(chan struct{})
	f.store.EXPECT().EnqueueTask(mock.Anything, id).RunAndReturn(func(context.Context, uuid.UUID) (ports.EnqueueReport, bool, error) {
		close(triggered)
		return ports.EnqueueReport{}, false, errors.New("logged, not fatal")
	}).Once()
	cycled := make(chan struct{}, 100)
	f.store.EXPECT().CandidateTasks(mock.Anything, mock.Anything, mock.Anything).
		RunAndReturn(func(context.Context, string, int) ([]uuid.UUID, error) {
			cycled <- struct{}{}
			return nil, errors.New("cycle error is logged")
		}).Maybe()
	f.metrics.EXPECT().EnqueueCycle(mock.Anything).Maybe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	require.True(t, f.svc.Trigger(id))
	<-triggered
	<-cycled
	cancel()
	require.NoError(t, <-done)
}

// rendezvous makes two EnqueueTask calls wait for each other: each returns
// only once both have started, so a caller that runs them one at a time
// fails (after a generous guard, never a timing assertion). The returned
// channel is closed when both have returned.
func rendezvous(t *testing.T, f fixture, a, b uuid.UUID) <-chan struct{} {
	var started, returned sync.WaitGroup
	started.Add(2)
	returned.Add(2)
	both, done := make(chan struct{}), make(chan struct{})
	go func() { started.Wait(); close(both) }()
	go func() { returned.Wait(); close(done) }()
	wait := func(context.Context, uuid.UUID) (ports.EnqueueReport, bool, error) {
		defer returned.Done()
		started.Done()
		select {
		case <-both:
		case <-time.After(10 * time.Second):
			t.Error("the other task was not enqueued while this one was in its transaction")
		}
		return ports.EnqueueReport{}, false, nil
	}
	f.store.EXPECT().EnqueueTask(mock.Anything, a).RunAndReturn(wait).Once()
	f.store.EXPECT().EnqueueTask(mock.Anything, b).RunAndReturn(wait).Once()
	return done
}

func TestRunCycleEnqueuesCandidatesConcurrently(t *testing.T) {
	f := setup(t, enqueue.Config{ClaimerID: "me", Concurrency: 2})
	a, b := uuid.New(), uuid.New()
	f.store.EXPECT().CandidateTasks(mock.Anything, "me", enqueue.DefaultTasksPerCycle).Return([]uuid.UUID{a, b}, nil).Once()
	rendezvous(t, f, a, b)
	f.metrics.EXPECT().EnqueueCycle(mock.Anything).Once()
	_, err := f.svc.RunCycle(context.Background())
	require.NoError(t, err)
}

func TestRunServesTriggersConcurrently(t *testing.T) {
	f := setup(t, enqueue.Config{CycleInterval: time.Hour, Concurrency: 2})
	a, b := uuid.New(), uuid.New()
	returned := rendezvous(t, f, a, b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	require.True(t, f.svc.Trigger(a))
	require.True(t, f.svc.Trigger(b))
	<-returned
	cancel()
	require.NoError(t, <-done)
}
