package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	web "github.com/tasker-systems/tasker-go/adapters/web/worker"
	engine "github.com/tasker-systems/tasker-go/app/worker"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
)

// TestSnapshotFromWorker checks the translation of the worker's status into
// the web API's snapshot field by field.
func TestSnapshotFromWorker(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	later := at.Add(time.Minute)
	st := engine.Status{
		Status: pipeline.Status{
			Processed: 10, Succeeded: 7, Failed: 3, AverageDurationMs: 12.5, RatePerSecond: 0.75, LastProcessedAt: &later,
			RecentErrors: []pipeline.ErrorRecord{{At: at, ErrorType: "timeout", Message: "slow", Namespace: "ns",
				StepName: "s1"}},
			Handlers: []pipeline.HandlerStats{{Namespace: "ns", Callable: "ns.h", Success: 7, Failure: 3, LastUsed: &at}},
			Namespaces: map[string]pipeline.NamespaceStats{
				"ns":    {Processed: 10, Succeeded: 7, Failed: 3, LastProcessed: &later, Active: 2, RatePerSecond: 0.5},
				"other": {Active: -1}, // a transient negative gauge must not wrap around
			},
			InFlight:  2,
			Decisions: map[pipeline.Decision]uint64{pipeline.DecisionArchivedPoison: 4, pipeline.DecisionDeletedStale: 9},
			LoopTicks: map[string]uint64{"dispatcher": 5},
		},
		Started: true, PipelineRunning: true, DispatcherRunning: true, ShuttingDown: true,
		IntakeSaturated: true, CommandQueueDepth: 6,
	}
	want := web.Snapshot{
		Started: true, PipelineRunning: true, DispatcherRunning: true, ShuttingDown: true,
		Processed: 10, Succeeded: 7, Failed: 3, AverageDurationMs: 12.5, RatePerSecond: 0.75, LastProcessedAt: &later,
		RecentErrors: []web.ErrorRecord{{At: at, ErrorType: "timeout", Message: "slow", Namespace: "ns", StepName: "s1"}},
		Handlers:     []web.HandlerStats{{Namespace: "ns", Callable: "ns.h", Success: 7, Failure: 3, LastUsed: &at}},
		Namespaces: map[string]web.NamespaceStats{
			"ns":    {Processed: 10, Succeeded: 7, Failed: 3, LastProcessed: &later, Active: 2, RatePerSecond: 0.5},
			"other": {Active: 0},
		},
		InFlight: 2, IntakeSaturated: true, CommandQueueDepth: 6,
		PoisonArchived: 4, // only the archived-poison decision count is reported
		LoopTicks:      map[string]uint64{"dispatcher": 5},
	}
	require.Equal(t, want, SnapshotFromWorker(st))
}

// TestSnapshotOfAFreshWorker: a worker that has done nothing yields zero
// counts and an empty (not nil) namespace map, so the status handler can
// range and index it without checks.
func TestSnapshotOfAFreshWorker(t *testing.T) {
	t.Parallel()
	snap := SnapshotFromWorker(engine.Status{})
	require.NotNil(t, snap.Namespaces)
	require.Empty(t, snap.Namespaces)
	require.Nil(t, snap.RecentErrors)
	require.Nil(t, snap.Handlers)
	require.Zero(t, snap.PoisonArchived)
	require.False(t, snap.Started)
}
