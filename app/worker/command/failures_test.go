package command

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// funcExecutor is an Executor made of functions, for tests that need a
// specific answer or need to look at the context a command runs under.
type funcExecutor struct {
	process  func(ctx context.Context, queue string, msg ports.QueueMessage, release func()) (pipeline.Decision, error)
	complete func(ctx context.Context, ev domain.StepCompletionEvent) error
}

func (f funcExecutor) Process(ctx context.Context, q string, m ports.QueueMessage, release func()) (pipeline.Decision, error) {
	return f.process(ctx, q, m, release)
}

func (f funcExecutor) Complete(ctx context.Context, ev domain.StepCompletionEvent) error {
	return f.complete(ctx, ev)
}

// startObserved runs a processor whose warnings are observed.
func startObserved(t *testing.T, cfg Config, ex Executor) (*Processor, *observer.ObservedLogs, func()) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	p, err := New(cfg, ex, zap.New(core))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return p, logs, stop
}

// unknownCommand is a Command the processor has no case for.
type unknownCommand struct{}

func (unknownCommand) commandName() string { return "unknown_for_test" }

// TestFailedCommandsAreCountedAndLogged: each failing command counts once in
// Handled's failed figure and logs its name and the cause with context.
func TestFailedCommandsAreCountedAndLogged(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	ex := funcExecutor{
		process: func(_ context.Context, _ string, _ ports.QueueMessage, release func()) (pipeline.Decision, error) {
			release()
			return pipeline.DecisionDeletedStale, boom
		},
		complete: func(context.Context, domain.StepCompletionEvent) error { return boom },
	}
	cases := []struct {
		name    string
		cmd     Command
		logName string
		logErr  string
		cause   error
	}{
		{"execute step", ExecuteStep{Queue: "fulfillment_queue", Message: ports.QueueMessage{MsgID: 42}, Release: func() {}},
			"execute_step", "execute step message 42 on fulfillment_queue (decision " +
				string(pipeline.DecisionDeletedStale) + "): boom", boom},
		{"process completion", ProcessCompletion{}, "process_completion", "boom", boom},
		{"unknown command", unknownCommand{}, "unknown_for_test", "unknown command command.unknownCommand", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, logs, _ := startObserved(t, Config{BufferSize: 2, MaxConcurrent: 1, Timeout: time.Second}, ex)
			require.NoError(t, p.Submit(context.Background(), tc.cmd))
			require.Eventually(t, func() bool { return logs.Len() == 1 }, 5*time.Second, time.Millisecond)
			handled, failed := p.Handled()
			require.Equal(t, uint64(1), handled)
			require.Equal(t, uint64(1), failed)
			entry := logs.All()[0]
			require.Equal(t, "command failed", entry.Message)
			require.Equal(t, tc.logName, entry.ContextMap()["command"])
			require.Equal(t, tc.logErr, entry.ContextMap()["error"])
			if tc.cause != nil {
				require.ErrorIs(t, entryError(t, entry), tc.cause, "the cause stays inspectable")
			}
		})
	}
}

// entryError digs the logged error value out of an observed entry.
func entryError(t *testing.T, e observer.LoggedEntry) error {
	t.Helper()
	for _, f := range e.Context {
		if f.Key == "error" {
			err, ok := f.Interface.(error)
			require.True(t, ok)
			return err
		}
	}
	t.Fatal("no error field")
	return nil
}

// TestSuccessfulCommandsAreNotFailures: Handled counts them, failed stays 0,
// nothing is logged.
func TestSuccessfulCommandsAreNotFailures(t *testing.T) {
	t.Parallel()
	p, logs, _ := startObserved(t, Config{BufferSize: 4, MaxConcurrent: 1, Timeout: time.Second}, &fakeExecutor{})
	for i := 0; i < 3; i++ {
		require.NoError(t, p.Submit(context.Background(), ProcessCompletion{}))
	}
	require.Eventually(t, func() bool { handled, _ := p.Handled(); return handled == 3 }, 5*time.Second, time.Millisecond)
	_, failed := p.Handled()
	require.Zero(t, failed)
	require.Zero(t, logs.Len())
}

// TestSubmitTimeoutNamesTheCommand: a Submit that gives up on a full buffer
// says which command it was.
func TestSubmitTimeoutNamesTheCommand(t *testing.T) {
	t.Parallel()
	p, err := New(Config{BufferSize: 1}, &fakeExecutor{}, nil) // not running: nothing drains the buffer
	require.NoError(t, err)
	require.NoError(t, p.Submit(context.Background(), ProcessCompletion{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{ProcessCompletion{}, "submit process_completion: context canceled"},
		{Shutdown{}, "submit shutdown: context canceled"},
		{ExecuteStep{}, "submit execute_step: context canceled"},
	} {
		err := p.Submit(ctx, tc.cmd)
		require.ErrorIs(t, err, context.Canceled)
		require.EqualError(t, err, tc.want)
	}
	require.Equal(t, 1, p.Depth(), "rejected commands were not queued")
}
