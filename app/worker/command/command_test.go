package command

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeExecutor records calls; block (if set) holds Process until closed or ctx ends.
type fakeExecutor struct {
	mu        sync.Mutex
	processed []int64
	completed []uuid.UUID
	block     chan struct{}
	running   atomic.Int32
	peak      atomic.Int32
	ctxErrs   chan error
}

func (f *fakeExecutor) Process(ctx context.Context, _ string, msg ports.QueueMessage, release func()) (pipeline.Decision, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			if f.ctxErrs != nil {
				f.ctxErrs <- ctx.Err()
			}
		}
	}
	f.mu.Lock()
	f.processed = append(f.processed, msg.MsgID)
	f.mu.Unlock()
	release()
	return pipeline.DecisionDeletedStale, nil
}

func (f *fakeExecutor) Complete(_ context.Context, ev domain.StepCompletionEvent) error {
	f.mu.Lock()
	f.completed = append(f.completed, ev.EventID)
	f.mu.Unlock()
	return nil
}

func start(t *testing.T, cfg Config, ex Executor) (*Processor, func()) {
	t.Helper()
	p, err := New(cfg, ex, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return p, stop
}

func TestCommandsReachTheExecutor(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{}
	p, _ := start(t, Config{BufferSize: 8, MaxConcurrent: 2, Timeout: time.Second}, ex)
	released := make(chan struct{})
	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{MsgID: 5}, func() { close(released) }))
	<-released
	id := uuid.New()
	require.NoError(t, p.Submit(context.Background(), ProcessCompletion{Event: domain.StepCompletionEvent{EventID: id}}))
	require.Eventually(t, func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return len(ex.completed) == 1 && ex.completed[0] == id && len(ex.processed) == 1
	}, time.Second, time.Millisecond)
}

func TestAtMostMaxConcurrentInFlight(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{block: make(chan struct{})}
	p, _ := start(t, Config{BufferSize: 16, MaxConcurrent: 3, Timeout: 10 * time.Second}, ex)
	for i := 0; i < 10; i++ {
		require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{MsgID: int64(i)}, func() {}))
	}
	require.Eventually(t, func() bool { return ex.running.Load() == 3 }, time.Second, time.Millisecond)
	require.Equal(t, 7, p.Depth(), "the rest wait in the buffer")
	close(ex.block)
	require.Eventually(t, func() bool { ex.mu.Lock(); defer ex.mu.Unlock(); return len(ex.processed) == 10 }, time.Second, time.Millisecond)
	require.Equal(t, int32(3), ex.peak.Load())
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{block: make(chan struct{}), ctxErrs: make(chan error, 1)}
	p, _ := start(t, Config{BufferSize: 1, MaxConcurrent: 1, Timeout: 20 * time.Millisecond}, ex)
	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() {}))
	require.ErrorIs(t, <-ex.ctxErrs, context.DeadlineExceeded)
}

func TestFullBufferBlocksSubmit(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{block: make(chan struct{})}
	p, _ := start(t, Config{BufferSize: 1, MaxConcurrent: 1, Timeout: 10 * time.Second}, ex)
	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() {}))
	require.Eventually(t, func() bool { return ex.running.Load() == 1 }, time.Second, time.Millisecond)
	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() {}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.SubmitStep(ctx, "q", ports.QueueMessage{}, func() {}), context.DeadlineExceeded)
	close(ex.block)
}

func TestShutdownRejectsStepsButKeepsCompletions(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{}
	p, stop := start(t, Config{BufferSize: 4, MaxConcurrent: 1, Timeout: time.Second}, ex)
	done := make(chan struct{})
	require.NoError(t, p.Submit(context.Background(), Shutdown{Done: done}))
	<-done
	require.True(t, p.ShuttingDown())
	require.ErrorIs(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() {}), ErrShuttingDown)
	require.NoError(t, p.Submit(context.Background(), ProcessCompletion{}))
	require.Eventually(t, func() bool { ex.mu.Lock(); defer ex.mu.Unlock(); return len(ex.completed) == 1 }, time.Second, time.Millisecond)
	stop()
	require.ErrorIs(t, p.Submit(context.Background(), ProcessCompletion{}), ErrStopped)
}

func TestStopReleasesQueuedSteps(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{block: make(chan struct{})}
	p, stop := start(t, Config{BufferSize: 4, MaxConcurrent: 1, Timeout: 10 * time.Second}, ex)
	var released atomic.Int32
	for i := 0; i < 3; i++ {
		require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() { released.Add(1) }))
	}
	require.Eventually(t, func() bool { return ex.running.Load() == 1 }, time.Second, time.Millisecond)
	stop() // the running one sees ctx cancelled, the two queued are released unprocessed
	require.Equal(t, int32(3), released.Load())
}

func TestNewRequiresExecutor(t *testing.T) {
	t.Parallel()
	_, err := New(Config{}, nil, nil)
	require.Error(t, err)
	p, err := New(Config{}, &fakeExecutor{}, nil)
	require.NoError(t, err)
	require.Equal(t, DefaultBufferSize, cap(p.cmds))
	require.Equal(t, DefaultMaxConcurrent, p.cfg.MaxConcurrent)
	require.Equal(t, DefaultTimeout, p.cfg.Timeout)
}

// TestCompletionStreamIsServedByTheWorkers: completions come straight from
// the dispatcher's stream (no relay goroutine, no trip through the command
// buffer) and are persisted even while ExecuteStep is refused at shutdown.
func TestCompletionStreamIsServedByTheWorkers(t *testing.T) {
	t.Parallel()
	ex := &fakeExecutor{}
	completions := make(chan domain.StepCompletionEvent)
	p, _ := start(t, Config{BufferSize: 1, MaxConcurrent: 2, Timeout: time.Second, Completions: completions}, ex)
	done := make(chan struct{})
	require.NoError(t, p.Submit(context.Background(), Shutdown{Done: done}))
	<-done
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		completions <- domain.StepCompletionEvent{EventID: id}
	}
	require.Eventually(t, func() bool {
		ex.mu.Lock()
		defer ex.mu.Unlock()
		return len(ex.completed) == len(ids)
	}, 5*time.Second, time.Millisecond)
	ex.mu.Lock()
	require.ElementsMatch(t, ids, ex.completed)
	ex.mu.Unlock()
	require.Zero(t, p.Depth(), "completions never entered the command buffer")
}
