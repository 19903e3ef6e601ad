package worker

import (
	web "github.com/tasker-systems/tasker-go/adapters/web/worker"
	engine "github.com/tasker-systems/tasker-go/app/worker"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
)

// SnapshotFromWorker converts the worker's status into the web API's
// Snapshot (adapters do not import app packages, so the composition root
// translates).
func SnapshotFromWorker(st engine.Status) web.Snapshot {
	snap := web.Snapshot{
		Started: st.Started, PipelineRunning: st.PipelineRunning, DispatcherRunning: st.DispatcherRunning, ShuttingDown: st.ShuttingDown,
		Processed: st.Processed, Succeeded: st.Succeeded, Failed: st.Failed,
		AverageDurationMs: st.AverageDurationMs, RatePerSecond: st.RatePerSecond, LastProcessedAt: st.LastProcessedAt,
		InFlight: st.InFlight, IntakeSaturated: st.IntakeSaturated, CommandQueueDepth: st.CommandQueueDepth,
		PoisonArchived: st.Decisions[pipeline.DecisionArchivedPoison],
		LoopTicks:      st.LoopTicks,
		Namespaces:     make(map[string]web.NamespaceStats, len(st.Namespaces)),
	}
	for _, e := range st.RecentErrors {
		snap.RecentErrors = append(snap.RecentErrors, web.ErrorRecord{At: e.At, ErrorType: e.ErrorType, Message: e.Message,
			Namespace: e.Namespace, StepName: e.StepName})
	}
	for _, h := range st.Handlers {
		snap.Handlers = append(snap.Handlers, web.HandlerStats{Namespace: h.Namespace, Callable: h.Callable,
			Success: h.Success, Failure: h.Failure, LastUsed: h.LastUsed})
	}
	for ns, n := range st.Namespaces {
		active := uint64(0)
		if n.Active > 0 {
			active = uint64(n.Active)
		}
		snap.Namespaces[ns] = web.NamespaceStats{Processed: n.Processed, Succeeded: n.Succeeded, Failed: n.Failed,
			LastProcessed: n.LastProcessed, Active: active, RatePerSecond: n.RatePerSecond}
	}
	return snap
}
