package domain

import "time"

// WorkerStatus is a worker's state at one instant. It is the one model of
// worker status: the worker's application fills it (the step pipeline its
// counters, the worker its lifecycle), the web API renders it (/status,
// /health, /handlers) and the metrics read it at every scrape, so the three
// can never disagree. All values are real counters, not placeholders.
type WorkerStatus struct {
	// Lifecycle is "starting", "active" or "stopping".
	Lifecycle string
	// Started is true once the worker began running.
	Started bool
	// PipelineRunning is true while intake readers run and the worker is not
	// stopping.
	PipelineRunning bool
	// DispatcherRunning is true while the handler dispatcher runs.
	DispatcherRunning bool
	// ShuttingDown is true from the first stop signal on.
	ShuttingDown bool

	// Processed, Succeeded and Failed count persisted outcomes.
	Processed, Succeeded, Failed uint64
	// AverageDurationMs is the mean handler execution_time_ms of persisted outcomes.
	AverageDurationMs float64
	// RatePerSecond is outcomes persisted per second over the last minute.
	RatePerSecond float64
	// LastProcessedAt is when the latest outcome was persisted.
	LastProcessedAt *time.Time
	// RecentErrors are the latest failures, newest first.
	RecentErrors []WorkerErrorRecord
	// Handlers are per-(namespace, callable) counts, sorted by namespace
	// then callable.
	Handlers []WorkerHandlerStats
	// Namespaces are per-namespace counts.
	Namespaces map[string]WorkerNamespaceStats

	// InFlight counts claimed steps without a persisted outcome.
	InFlight int
	// Decisions counts messages per decision of the worker's decision table
	// (contract §9.3), keyed by the decision's name.
	Decisions map[string]uint64
	// PoisonArchived counts unparseable step messages archived (D-g).
	PoisonArchived uint64
	// LateCompletions counts completions that arrived after their step was
	// already failed (correlation timeout, shutdown); Discarded counts
	// outcomes whose compare-and-set found the step no longer in_progress.
	LateCompletions, Discarded uint64
	// LoopTicks counts iterations of each background loop (IntakeLoop(queue),
	// LoopDispatcher, …); a count that stops moving reveals a wedged loop.
	LoopTicks map[string]uint64

	// IntakeHeld is the number of step messages intake holds.
	IntakeHeld int
	// IntakeSaturated is true while intake holds max_concurrent_steps
	// messages; readers then wait for a free slot and do not tick, which is
	// back-pressure, not a wedge.
	IntakeSaturated bool
	// HandlersRunning counts handler goroutines running.
	HandlersRunning int
	// CommandQueueDepth counts commands waiting for the command processor.
	CommandQueueDepth int
	// FailedAtShutdown counts steps persisted as worker_shutdown.
	FailedAtShutdown int64
}

// WorkerErrorRecord is one recent step failure.
type WorkerErrorRecord struct {
	// At is when the failure was persisted.
	At time.Time
	// ErrorType and Message are the result's error.error_type and error.message.
	ErrorType string
	Message   string
	// Namespace and StepName locate the step.
	Namespace string
	StepName  string
}

// WorkerHandlerStats counts persisted outcomes of one (namespace, callable).
type WorkerHandlerStats struct {
	Namespace string
	Callable  string
	Success   uint64
	Failure   uint64
	// LastUsed is when its latest outcome was persisted.
	LastUsed *time.Time
}

// WorkerNamespaceStats counts persisted outcomes of one namespace.
type WorkerNamespaceStats struct {
	// Processed = Succeeded + Failed.
	Processed uint64
	Succeeded uint64
	Failed    uint64
	// RatePerSecond is outcomes per second over the last minute.
	RatePerSecond float64
	// LastProcessed is when the namespace's latest outcome was persisted.
	LastProcessed *time.Time
	// Active counts the namespace's claimed steps without an outcome yet.
	Active int
}

// Names of the worker's background loops in WorkerStatus.LoopTicks. The
// loops tick under these names and the health policy judges them by these
// names, so they are defined once, here.
const (
	// LoopDispatcher is the event dispatcher's loop; it ticks at least once
	// a second while idle.
	LoopDispatcher = "dispatcher"
	// LoopPipeline names the step pipeline in liveness verdicts.
	LoopPipeline = "pipeline"
	// IntakeLoopPrefix prefixes the name of every intake read loop.
	IntakeLoopPrefix = "intake:"
)

// IntakeLoop is the loop name of the intake reader of queue.
func IntakeLoop(queue string) string { return IntakeLoopPrefix + queue }

// CheckLevel is the verdict of one health check of a service (contract
// §8.2).
type CheckLevel string

// Check levels, from best to worst.
const (
	CheckHealthy   CheckLevel = "healthy"
	CheckDegraded  CheckLevel = "degraded"
	CheckUnhealthy CheckLevel = "unhealthy"
)
