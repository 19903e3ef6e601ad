package livetest

import (
	"github.com/tasker-systems/tasker-go/adapters/web/worker"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
)

// Flags are the lifecycle facts the pipeline's Status does not carry; the
// worker's bootstrap owns them.
type Flags struct {
	Started, PipelineRunning, DispatcherRunning, ShuttingDown bool
	CommandQueueDepth                                         int
}

// SnapshotFromPipeline converts pipeline.Status into the worker API's
// Snapshot. saturated is intake.Held() >= worker.max_concurrent_steps.
// cmd/tasker-worker uses the same conversion (copy of this function).
func SnapshotFromPipeline(st pipeline.Status, saturated bool, f Flags) worker.Snapshot {
	snap := worker.Snapshot{
		Started: f.Started, PipelineRunning: f.PipelineRunning, DispatcherRunning: f.DispatcherRunning, ShuttingDown: f.ShuttingDown,
		Processed: st.Processed, Succeeded: st.Succeeded, Failed: st.Failed,
		AverageDurationMs: st.AverageDurationMs, RatePerSecond: st.RatePerSecond, LastProcessedAt: st.LastProcessedAt,
		InFlight: st.InFlight, IntakeSaturated: saturated, CommandQueueDepth: f.CommandQueueDepth,
		PoisonArchived: st.Decisions[pipeline.DecisionArchivedPoison],
		LoopTicks:      st.LoopTicks,
		Namespaces:     make(map[string]worker.NamespaceStats, len(st.Namespaces)),
	}
	for _, e := range st.RecentErrors {
		snap.RecentErrors = append(snap.RecentErrors, worker.ErrorRecord{At: e.At, ErrorType: e.ErrorType, Message: e.Message,
			Namespace: e.Namespace, StepName: e.StepName})
	}
	for _, h := range st.Handlers {
		snap.Handlers = append(snap.Handlers, worker.HandlerStats{Namespace: h.Namespace, Callable: h.Callable,
			Success: h.Success, Failure: h.Failure, LastUsed: h.LastUsed})
	}
	for ns, n := range st.Namespaces {
		snap.Namespaces[ns] = worker.NamespaceStats{Processed: n.Processed, Succeeded: n.Succeeded, Failed: n.Failed,
			LastProcessed: n.LastProcessed}
	}
	return snap
}
