package health_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/domain"
)

var t0 = time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)

func running(ticks map[string]uint64) domain.WorkerStatus {
	return domain.WorkerStatus{Started: true, PipelineRunning: true, DispatcherRunning: true, LoopTicks: ticks}
}

func TestDefaults(t *testing.T) {
	c := health.New(health.Config{}).Config()
	require.Equal(t, health.DefaultPollInterval, c.PollInterval)
	require.Equal(t, health.DefaultLivenessStallAfter, c.LivenessStallAfter)
	require.Equal(t, []string{domain.IntakeLoopPrefix}, c.StallCheckedLoops)
	require.Zero(t, c.DispatcherStallAfter, "the dispatcher is unchecked unless asked")
}

func TestStallLimits(t *testing.T) {
	p := health.New(health.Config{PollInterval: 100 * time.Millisecond, DispatcherStallAfter: 3 * time.Second,
		LivenessStallAfter: 30 * time.Second})
	intake := domain.IntakeLoop("ns_queue")
	require.Equal(t, 300*time.Millisecond, p.StallLimit(intake, false))
	require.Equal(t, 30*time.Second, p.StallLimit(intake, true), "liveness waits at least LivenessStallAfter")
	require.Equal(t, 3*time.Second, p.StallLimit(domain.LoopDispatcher, false))
	require.Zero(t, p.StallLimit("relay", false), "loops not listed are unchecked")
	require.Zero(t, health.New(health.Config{StallCheckedLoops: []string{}}).StallLimit(intake, false),
		"an empty list checks no loop")
}

func TestStalledLoopsAndSaturation(t *testing.T) {
	p := health.New(health.Config{PollInterval: 100 * time.Millisecond, LivenessStallAfter: time.Nanosecond})
	intake := domain.IntakeLoop("ns_queue")
	st := running(map[string]uint64{intake: 1, domain.LoopDispatcher: 1})
	require.Empty(t, p.Stalled(t0, st, false), "a loop seen for the first time has just ticked")
	require.Empty(t, p.Stalled(t0.Add(300*time.Millisecond), st, false), "at the limit is not past it")
	require.Equal(t, []string{intake}, p.Stalled(t0.Add(301*time.Millisecond), st, false),
		"only checked loops stall; the dispatcher is unchecked by default")

	st.IntakeSaturated = true
	require.Empty(t, p.Stalled(t0.Add(time.Second), st, false), "saturation is back-pressure, not a wedge")
	st.IntakeSaturated = false
	require.Empty(t, p.Stalled(t0.Add(1200*time.Millisecond), st, false), "the silence counts from the end of saturation")

	st.LoopTicks = map[string]uint64{intake: 2, domain.LoopDispatcher: 1}
	require.Empty(t, p.Stalled(t0.Add(5*time.Second), st, false), "a moved count is a tick")
}

func TestReadinessProblems(t *testing.T) {
	p := health.New(health.Config{PollInterval: 100 * time.Millisecond})
	require.Empty(t, p.ReadinessProblems(t0, running(nil)))
	require.Equal(t, []string{"worker is shutting down", "step pipeline is not running", "event dispatcher is not running"},
		p.ReadinessProblems(t0, domain.WorkerStatus{ShuttingDown: true}))

	intake := domain.IntakeLoop("ns_queue")
	st := running(map[string]uint64{intake: 1})
	require.Empty(t, p.ReadinessProblems(t0, st))
	require.Equal(t, []string{"loops not ticking: " + intake}, p.ReadinessProblems(t0.Add(time.Second), st))
}

func TestLivenessProblems(t *testing.T) {
	p := health.New(health.Config{PollInterval: 100 * time.Millisecond})
	intake := domain.IntakeLoop("ns_queue")
	st := running(map[string]uint64{intake: 1})
	require.Empty(t, p.LivenessProblems(t0, st))
	require.Empty(t, p.LivenessProblems(t0.Add(5*time.Second), st), "a slow read is not yet a reason to restart")
	require.Equal(t, map[string]string{intake: "no tick within 30s"}, p.LivenessProblems(t0.Add(31*time.Second), st))

	stopped := domain.WorkerStatus{Started: true}
	require.Equal(t, map[string]string{domain.LoopPipeline: "pipeline stopped unexpectedly",
		domain.LoopDispatcher: "dispatcher stopped unexpectedly"}, p.LivenessProblems(t0, stopped))
	require.Empty(t, p.LivenessProblems(t0, domain.WorkerStatus{}), "a worker still starting is alive")
	require.Empty(t, p.LivenessProblems(t0, domain.WorkerStatus{Started: true, ShuttingDown: true}),
		"a worker shutting down is alive")
}

func TestQueueDepth(t *testing.T) {
	p := health.New(health.Config{})
	for _, tc := range []struct {
		total  int64
		level  domain.CheckLevel
		reason string
	}{
		{0, domain.CheckHealthy, ""},
		{health.QueueDegradedAt - 1, domain.CheckHealthy, ""},
		{health.QueueDegradedAt, domain.CheckDegraded, "10000 messages waiting in served queues"},
		{health.QueueUnhealthyAt, domain.CheckUnhealthy, "50000 messages waiting in served queues"},
	} {
		level, reason := p.QueueDepth(tc.total)
		require.Equal(t, tc.level, level, "depth %d", tc.total)
		require.Equal(t, tc.reason, reason, "depth %d", tc.total)
	}
}
