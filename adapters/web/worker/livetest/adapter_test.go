package livetest

import (
	"github.com/tasker-systems/tasker-go/adapters/web/worker"
	appworker "github.com/tasker-systems/tasker-go/app/worker"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
)

// SnapshotFromWorker converts the worker service's status into the API's
// Snapshot. cmd/tasker-worker uses the same conversion (a copy of this
// function), because adapters do not import app packages.
func SnapshotFromWorker(st appworker.Status) worker.Snapshot {
	snap := worker.Snapshot{
		Started: st.Started, PipelineRunning: st.PipelineRunning, DispatcherRunning: st.DispatcherRunning, ShuttingDown: st.ShuttingDown,
		Processed: st.Processed, Succeeded: st.Succeeded, Failed: st.Failed,
		AverageDurationMs: st.AverageDurationMs, RatePerSecond: st.RatePerSecond, LastProcessedAt: st.LastProcessedAt,
		InFlight: st.InFlight, IntakeSaturated: st.IntakeSaturated, CommandQueueDepth: st.CommandQueueDepth,
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
