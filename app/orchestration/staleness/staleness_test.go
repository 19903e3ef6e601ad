package staleness_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/app/orchestration/staleness"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type countingMetrics struct {
	ports.NopOrchestrationMetrics
	reasons []domain.DLQReason
}

func (c *countingMetrics) DeadLettered(r domain.DLQReason) { c.reasons = append(c.reasons, r) }

// Check passes the policy, logs one WARN per finding naming task, step,
// namespace and reason, and counts it by reason.
func TestCheckLogsAndCountsEachFinding(t *testing.T) {
	t.Parallel()
	scanner := mocks.NewStalenessScanner(t)
	task, step := uuid.New(), uuid.New()
	scanner.EXPECT().ScanStale(mock.Anything, ports.StalenessPolicy{EnqueuedTimeout: 5 * time.Second,
		TaskTimeout: time.Hour, FailTask: false}).Return([]domain.DLQEntry{
		{EntryUUID: uuid.New(), TaskUUID: task, StepUUID: step, Namespace: "nobody", Reason: domain.DLQEnqueuedTimeout, Detail: "d"},
		{EntryUUID: uuid.New(), TaskUUID: task, Namespace: "nobody", Reason: domain.DLQTaskTimeout},
	}, nil).Once()
	core, logs := observer.New(zapcore.WarnLevel)
	m := &countingMetrics{}
	d := staleness.New(staleness.Config{EnqueuedTimeout: 5 * time.Second, TaskTimeout: time.Hour, Action: staleness.ActionAlert},
		scanner, m, zap.New(core), nil)
	got, err := d.Check(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, []domain.DLQReason{domain.DLQEnqueuedTimeout, domain.DLQTaskTimeout}, m.reasons)
	lines := logs.All()
	require.Len(t, lines, 2)
	f := lines[0].ContextMap()
	require.Equal(t, "step dead-lettered", lines[0].Message)
	require.Equal(t, task.String(), f["task_uuid"])
	require.Equal(t, step.String(), f["step_uuid"])
	require.Equal(t, "nobody", f["namespace"])
	require.Equal(t, "enqueued_timeout", f["reason"])
	require.NotContains(t, lines[1].ContextMap(), "step_uuid")
}

// Run stops after one WARN when the DLQ table is missing, and stops with its context.
func TestRunStops(t *testing.T) {
	t.Parallel()
	scanner := mocks.NewStalenessScanner(t)
	scanner.EXPECT().ScanStale(mock.Anything, mock.Anything).Return(nil, ports.ErrDLQUnavailable).Once()
	core, logs := observer.New(zapcore.WarnLevel)
	d := staleness.New(staleness.Config{}, scanner, nil, zap.New(core), nil)
	require.NoError(t, d.Run(context.Background()))
	require.Equal(t, 1, logs.Len())

	scanner = mocks.NewStalenessScanner(t)
	scanner.EXPECT().ScanStale(mock.Anything, mock.Anything).Return(nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- staleness.New(staleness.Config{CheckInterval: time.Millisecond}, scanner, nil, nil, nil).Run(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Greater(t, len(scanner.Calls), 1, "scanned every interval")
}
