package command

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestStepQueuedBehindShutdownIsReleasedNotRun: a step accepted before the
// Shutdown command was handled, but queued behind it, is not started; its
// intake slot is released so its message can reappear after vt.
func TestStepQueuedBehindShutdownIsReleasedNotRun(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var processed atomic.Int32
	entered := make(chan struct{}, 1)
	ex := funcExecutor{process: func(_ context.Context, _ string, _ ports.QueueMessage, release func()) (pipeline.Decision, error) {
		processed.Add(1)
		entered <- struct{}{}
		<-gate
		release()
		return pipeline.DecisionDeletedStale, nil
	}}
	p, logs, _ := startObserved(t, Config{BufferSize: 4, MaxConcurrent: 1, Timeout: 10 * time.Second}, ex)

	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{MsgID: 1}, func() {}))
	<-entered // the only worker is busy with step 1
	draining := make(chan struct{})
	require.NoError(t, p.Submit(context.Background(), Shutdown{Done: draining}))
	released := make(chan struct{})
	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{MsgID: 2}, func() { close(released) }),
		"accepted: the shutdown is queued, not yet handled")
	close(gate)

	<-draining
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("the step queued behind Shutdown was never released")
	}
	require.Equal(t, int32(1), processed.Load(), "step 2 was never handed to the pipeline")
	require.True(t, p.ShuttingDown())
	require.Eventually(t, func() bool { h, _ := p.Handled(); return h == 3 }, 5*time.Second, time.Millisecond)
	_, failed := p.Handled()
	require.Zero(t, failed, "a step dropped for shutdown is not a failure")
	require.Zero(t, logs.Len())
}

// TestCompletionSurvivesShutdown: a completion being persisted when Run's
// context ends keeps a live context (with the command deadline), so the
// finished handler's outcome is still committed; Run waits for it.
func TestCompletionSurvivesShutdown(t *testing.T) {
	t.Parallel()
	entered, proceed := make(chan struct{}), make(chan struct{})
	type seen struct {
		err         error
		hasDeadline bool
		left        time.Duration
	}
	got := make(chan seen, 1)
	ex := funcExecutor{complete: func(ctx context.Context, _ domain.StepCompletionEvent) error {
		close(entered)
		<-proceed
		dl, ok := ctx.Deadline()
		got <- seen{err: ctx.Err(), hasDeadline: ok, left: time.Until(dl)}
		return nil
	}}
	p, err := New(Config{BufferSize: 1, MaxConcurrent: 1, Timeout: time.Minute}, ex, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { p.Run(ctx); close(stopped) }()
	require.NoError(t, p.Submit(context.Background(), ProcessCompletion{}))
	<-entered

	cancel() // Run's context ends while the completion is in the executor
	select {
	case <-stopped:
		t.Fatal("Run returned while a completion was being persisted")
	default:
	}
	close(proceed)
	s := <-got
	<-stopped
	require.NoError(t, s.err, "the completion's context outlives Run's")
	require.True(t, s.hasDeadline, "but it still has the command timeout")
	require.Greater(t, s.left, 30*time.Second)
	require.LessOrEqual(t, s.left, time.Minute)
}

// TestExecuteStepRunsUnderRunsContext: unlike completions, step execution
// stops with Run (the message reappears after vt).
func TestExecuteStepRunsUnderRunsContext(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	entered := make(chan struct{})
	ex := funcExecutor{process: func(ctx context.Context, _ string, _ ports.QueueMessage, release func()) (pipeline.Decision, error) {
		close(entered)
		<-ctx.Done()
		errs <- ctx.Err()
		release()
		return pipeline.DecisionDeletedStale, ctx.Err()
	}}
	p, _, stop := startObserved(t, Config{BufferSize: 1, MaxConcurrent: 1, Timeout: time.Minute}, ex)
	require.NoError(t, p.SubmitStep(context.Background(), "q", ports.QueueMessage{}, func() {}))
	<-entered
	stop()
	require.ErrorIs(t, <-errs, context.Canceled)
}
