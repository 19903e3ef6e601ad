package enqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
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
	batches *mocks.TaskBatchProcessor
	queues  *queues
	metrics *mocks.OrchestrationMetrics
	svc     *enqueue.Enqueuer
}

func setup(t *testing.T, cfg enqueue.Config) fixture {
	f := fixture{store: mocks.NewStepEnqueuer(t), batches: mocks.NewTaskBatchProcessor(t), queues: &queues{},
		metrics: mocks.NewOrchestrationMetrics(t)}
	f.svc = enqueue.New(cfg, f.store, f.batches, f.queues, nil, f.metrics, nil)
	return f
}

// tasksBatch matches a SKIP LOCKED batch of exactly ids.
func tasksBatch(ids ...uuid.UUID) any {
	return mock.MatchedBy(func(b ports.TaskBatch) bool {
		if !b.SkipLocked || len(b.Tasks) != len(ids) {
			return false
		}
		for i, id := range ids {
			if b.Tasks[i].TaskUUID != id || b.Tasks[i].MsgID != 0 {
				return false
			}
		}
		return true
	})
}

func TestRunCycleEnqueuesTheCandidatesInOneBatch(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{ClaimerID: "me", TasksPerCycle: 5})
	a, b := uuid.New(), uuid.New()
	f.store.EXPECT().CandidateTasks(mock.Anything, "me", 5).Return([]uuid.UUID{a, b}, nil).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(a, b)).Return(ports.TaskBatchReport{
		Finalized: []ports.FinalizationReport{{TaskUUID: a, From: domain.TaskInProgress, To: domain.TaskInProgress},
			{TaskUUID: b, From: domain.TaskInProgress, To: domain.TaskInProgress}},
		Enqueued: []ports.EnqueueReport{{TaskUUID: a, Namespace: "ns", StepsEnqueued: 2}},
	}, nil).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 2).Once()
	f.metrics.EXPECT().EnqueueCycle(mock.Anything).Once()
	n, err := f.svc.RunCycle(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

func TestRunCycleReturnsStoreErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{})
	boom := errors.New("db down")
	f.store.EXPECT().CandidateTasks(mock.Anything, mock.Anything, enqueue.DefaultTasksPerCycle).Return(nil, boom).Once()
	f.metrics.EXPECT().EnqueueCycle(mock.Anything).Times(2)
	_, err := f.svc.RunCycle(context.Background())
	require.ErrorIs(t, err, boom)

	id := uuid.New()
	f.store.EXPECT().CandidateTasks(mock.Anything, mock.Anything, mock.Anything).Return([]uuid.UUID{id}, nil).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(id)).Return(ports.TaskBatchReport{}, boom).Twice()
	_, err = f.svc.RunCycle(context.Background())
	require.ErrorIs(t, err, boom, "retried once, then returned")
}

func TestProcessBatchCreatesMissingQueueOutsideTheTransactionAndRetries(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{})
	id := uuid.New()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(id)).Return(ports.TaskBatchReport{}, &ports.QueueMissingError{Queue: "ns_queue"}).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(id)).Return(ports.TaskBatchReport{
		Enqueued: []ports.EnqueueReport{{TaskUUID: id, Namespace: "ns", StepsEnqueued: 1}}}, nil).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 1).Once()
	n, err := f.svc.EnqueueTask(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"ns_queue"}, f.queues.created)
}

func TestProcessBatchQueueCreationFails(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{})
	f.queues.err = errors.New("permission denied")
	f.batches.EXPECT().ProcessTasks(mock.Anything, mock.Anything).Return(ports.TaskBatchReport{}, &ports.QueueMissingError{Queue: "ns_queue"}).Once()
	_, err := f.svc.EnqueueTask(context.Background(), uuid.New())
	require.ErrorIs(t, err, f.queues.err)
}

func TestProcessBatchCountsFinalizedTasksAndRetriesAFailureOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{})
	id := uuid.New()
	b := ports.TaskBatch{Queue: "q", Tasks: []ports.TaskItem{{TaskUUID: id, MsgID: 7}}}
	rep := ports.TaskBatchReport{Finalized: []ports.FinalizationReport{{TaskUUID: id, From: domain.TaskInProgress, To: domain.TaskComplete}}}
	f.batches.EXPECT().ProcessTasks(mock.Anything, b).Return(ports.TaskBatchReport{}, errors.New("deadlock detected")).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, b).Return(rep, nil).Once()
	f.metrics.EXPECT().TaskFinalized(domain.TaskComplete).Once()
	got, err := f.svc.ProcessBatch(context.Background(), b)
	require.NoError(t, err)
	require.Equal(t, rep, got)
}

func TestTriggerIsNonBlockingWhenTheBufferIsFull(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{TriggerBuffer: 1})
	require.True(t, f.svc.Trigger(uuid.New()))
	require.False(t, f.svc.Trigger(uuid.New()), "full buffer drops the trigger")
}

func TestRunServesTriggersAndCyclesUntilCancelled(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{CycleInterval: 5 * time.Millisecond, SweepInterval: 5 * time.Millisecond})
	id := uuid.New()
	triggered := make(chan struct{})
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(id)).RunAndReturn(func(context.Context, ports.TaskBatch) (ports.TaskBatchReport, error) {
		select {
		case <-triggered:
		default:
			close(triggered)
		}
		return ports.TaskBatchReport{}, errors.New("logged, not fatal")
	}).Times(2)
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

// TestTriggersWaitingTogetherShareOneBatch: triggers that queue up while a
// batch runs are enqueued together by the next batch (group commit), not
// one transaction each.
func TestTriggersWaitingTogetherShareOneBatch(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{CycleInterval: time.Hour, Concurrency: 1})
	first, a, b, c := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(first)).RunAndReturn(func(context.Context, ports.TaskBatch) (ports.TaskBatchReport, error) {
		close(started)
		<-release
		return ports.TaskBatchReport{}, nil
	}).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(a, b, c)).RunAndReturn(func(context.Context, ports.TaskBatch) (ports.TaskBatchReport, error) {
		close(done)
		return ports.TaskBatchReport{}, nil
	}).Once()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- f.svc.Run(ctx) }()
	require.True(t, f.svc.Trigger(first))
	<-started
	for _, id := range []uuid.UUID{a, b, c} {
		require.True(t, f.svc.Trigger(id))
	}
	close(release)
	<-done
	cancel()
	require.NoError(t, <-stopped)
}

// TestRetriesReportedByBatchesRunWhenDue: a task a batch reports as waiting
// out a backoff is enqueued by the first cycle at or after its time, in one
// batch with the other due tasks, and not before.
func TestRetriesReportedByBatchesRunWhenDue(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{})
	now := time.Date(2025, 8, 27, 12, 0, 0, 0, time.UTC)
	a, b, later := uuid.New(), uuid.New(), uuid.New()
	f.batches.EXPECT().ProcessTasks(mock.Anything, mock.Anything).Return(ports.TaskBatchReport{Retries: []ports.ScheduledRetry{
		{TaskUUID: a, At: now.Add(2 * time.Second)}, {TaskUUID: b, At: now.Add(time.Second)},
		{TaskUUID: later, At: now.Add(time.Minute)}, {TaskUUID: a, At: now.Add(time.Hour)}}}, nil).Once()
	_, err := f.svc.ProcessBatch(context.Background(), ports.TaskBatch{Tasks: []ports.TaskItem{{TaskUUID: uuid.New()}}})
	require.NoError(t, err)
	require.Equal(t, 3, f.svc.PendingRetries())

	require.Zero(t, f.svc.RunRetries(context.Background(), now), "nothing due yet")
	due := mock.MatchedBy(func(bt ports.TaskBatch) bool {
		return bt.SkipLocked && len(bt.Tasks) == 2 &&
			((bt.Tasks[0].TaskUUID == a && bt.Tasks[1].TaskUUID == b) || (bt.Tasks[0].TaskUUID == b && bt.Tasks[1].TaskUUID == a))
	})
	f.batches.EXPECT().ProcessTasks(mock.Anything, due).Return(ports.TaskBatchReport{
		Enqueued: []ports.EnqueueReport{{TaskUUID: a, Namespace: "ns", StepsEnqueued: 1}, {TaskUUID: b, Namespace: "ns", StepsEnqueued: 1}}}, nil).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 1).Twice()
	require.Equal(t, 2, f.svc.RunRetries(context.Background(), now.Add(2*time.Second)), "the earliest time of a task counts")
	require.Equal(t, 1, f.svc.PendingRetries(), "the later one waits")
}

// TestNewTasksTakeTheOneStatementPath: triggers of new tasks that wait
// together are enqueued by one EnqueueNewTasks call (after the missing
// queue is created); what it leaves, and plain triggers of the same group,
// go to one batch; when the statement fails, every new task of the group
// goes to the batch instead.
func TestNewTasksTakeTheOneStatementPath(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{CycleInterval: time.Hour, Concurrency: 1})
	first, a, b, plain, failing := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	roots := func(id uuid.UUID) ports.NewTaskRoots {
		return ports.NewTaskRoots{TaskUUID: id, Namespace: "ns", Roots: []ports.EnqueuedStep{{StepUUID: uuid.New(), Name: "root"}}}
	}
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	f.store.EXPECT().EnqueueNewTasks(mock.Anything, mock.MatchedBy(func(ts []ports.NewTaskRoots) bool {
		return len(ts) == 1 && ts[0].TaskUUID == first
	}), mock.Anything).RunAndReturn(func(context.Context, []ports.NewTaskRoots, func(uuid.UUID) json.RawMessage) ([]ports.EnqueueReport, []uuid.UUID, error) {
		close(started)
		<-release
		return []ports.EnqueueReport{{TaskUUID: first, Namespace: "ns", StepsEnqueued: 1, TaskStarted: true,
			Steps: []ports.EnqueuedStep{{Name: "root"}}}}, nil, nil
	}).Once()
	group := mock.MatchedBy(func(ts []ports.NewTaskRoots) bool {
		return len(ts) == 2 && ts[0].TaskUUID == a && ts[1].TaskUUID == b
	})
	f.store.EXPECT().EnqueueNewTasks(mock.Anything, group, mock.Anything).
		Return(nil, nil, &ports.QueueMissingError{Queue: "ns_queue"}).Once()
	f.store.EXPECT().EnqueueNewTasks(mock.Anything, group, mock.Anything).
		Return([]ports.EnqueueReport{{TaskUUID: a, Namespace: "ns", StepsEnqueued: 1, TaskStarted: true}}, []uuid.UUID{b}, nil).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(plain, b)).Return(ports.TaskBatchReport{}, nil).Once()
	f.store.EXPECT().EnqueueNewTasks(mock.Anything, mock.MatchedBy(func(ts []ports.NewTaskRoots) bool {
		return len(ts) == 1 && ts[0].TaskUUID == failing
	}), mock.Anything).Return(nil, nil, errors.New("connection reset")).Once()
	f.batches.EXPECT().ProcessTasks(mock.Anything, tasksBatch(failing)).RunAndReturn(func(context.Context, ports.TaskBatch) (ports.TaskBatchReport, error) {
		close(done)
		return ports.TaskBatchReport{}, nil
	}).Once()
	f.metrics.EXPECT().StepsEnqueued("ns", 1).Twice()

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- f.svc.Run(ctx) }()
	require.True(t, f.svc.TriggerNew(roots(first)))
	<-started
	require.True(t, f.svc.TriggerNew(roots(a)))
	require.True(t, f.svc.Trigger(plain))
	require.True(t, f.svc.TriggerNew(roots(b)))
	close(release)
	require.Eventually(t, func() bool {
		f.queues.mu.Lock()
		defer f.queues.mu.Unlock()
		return len(f.queues.created) == 1
	}, 5*time.Second, time.Millisecond)
	require.True(t, f.svc.TriggerNew(roots(failing)))
	<-done
	cancel()
	require.NoError(t, <-stopped)
	require.Equal(t, []string{"ns_queue"}, f.queues.created)
}

// leaderFlag is a Leader switched by the test; it counts the questions.
type leaderFlag struct {
	leading atomic.Bool
	asked   atomic.Int64
}

func (l *leaderFlag) Leading() bool {
	l.asked.Add(1)
	return l.leading.Load()
}

// TestOnlyTheLeaderSweeps: a standby's sweep ticks scan nothing (its
// CandidateTasks mock has no expectation: a call fails the test); once it
// leads, the next tick sweeps.
func TestOnlyTheLeaderSweeps(t *testing.T) {
	t.Parallel()
	f := setup(t, enqueue.Config{})
	lead := &leaderFlag{}
	svc := enqueue.New(enqueue.Config{CycleInterval: time.Hour, SweepInterval: time.Millisecond}, f.store, f.batches, f.queues,
		lead, f.metrics, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	require.Eventually(t, func() bool { return lead.asked.Load() >= 5 }, 5*time.Second, time.Millisecond, "sweep ticks pass")

	swept := make(chan struct{})
	var once sync.Once
	f.store.EXPECT().CandidateTasks(mock.Anything, mock.Anything, mock.Anything).
		RunAndReturn(func(context.Context, string, int) ([]uuid.UUID, error) {
			once.Do(func() { close(swept) })
			return nil, nil
		})
	f.metrics.EXPECT().EnqueueCycle(mock.Anything)
	lead.leading.Store(true)
	<-swept
	cancel()
	require.NoError(t, <-done)
}
