// Package worker is the worker's HTTP API (contract §8): health, readiness
// and liveness probes, Prometheus metrics, status, registered handlers and
// task templates, served with gin.
//
// The server depends only on the small interfaces declared here, so it can
// be tested with fakes and wired to the worker by the composition root
// (cmd/tasker-worker) without importing the worker's application packages.
package worker

import (
	"context"
	"database/sql"
	"time"

	"github.com/tasker-systems/tasker-go/ports"
)

// Worker lifecycle states reported as WorkerStatusResponse.status.
const (
	LifecycleStarting = "starting"
	LifecycleActive   = "active"
	LifecycleStopping = "stopping"
)

// ErrorRecord is one recent step failure.
type ErrorRecord struct {
	At        time.Time
	ErrorType string
	Message   string
	Namespace string
	StepName  string
}

// HandlerStats are persisted outcome counts of one (namespace, callable).
type HandlerStats struct {
	Namespace string
	Callable  string
	Success   uint64
	Failure   uint64
	LastUsed  *time.Time
}

// NamespaceStats are persisted outcome counts of one namespace.
type NamespaceStats struct {
	Processed uint64
	Succeeded uint64
	Failed    uint64
	// RatePerSecond is outcomes per second over the last minute; when the
	// provider leaves it 0 the server derives it from Processed over time.
	RatePerSecond float64
	LastProcessed *time.Time
	// Active counts this namespace's claimed steps without an outcome yet.
	// When 0 and the worker serves one namespace, Snapshot.InFlight is used.
	Active uint64
}

// Snapshot is the worker's state at one instant, as the API needs it. The
// composition root converts the worker's own status into it.
type Snapshot struct {
	// Started is false until the pipeline has been started once.
	Started bool
	// PipelineRunning is true while intake readers and the step executor run.
	PipelineRunning bool
	// DispatcherRunning is true while the event dispatcher runs handlers.
	DispatcherRunning bool
	// ShuttingDown is true from the first shutdown signal on.
	ShuttingDown bool
	// Processed, Succeeded and Failed count persisted outcomes.
	Processed, Succeeded, Failed uint64
	// AverageDurationMs is the mean handler time of persisted outcomes.
	AverageDurationMs float64
	// RatePerSecond is outcomes per second over the last minute.
	RatePerSecond float64
	// LastProcessedAt is when the latest outcome was persisted.
	LastProcessedAt *time.Time
	// RecentErrors are the latest failures, newest first.
	RecentErrors []ErrorRecord
	// Handlers are per-(namespace, callable) counts.
	Handlers []HandlerStats
	// Namespaces are per-namespace counts.
	Namespaces map[string]NamespaceStats
	// InFlight counts claimed steps without a persisted outcome.
	InFlight int
	// IntakeSaturated is true while intake holds its maximum number of
	// messages; readers then wait for a free slot and do not tick, which is
	// back-pressure, not a wedge.
	IntakeSaturated bool
	// CommandQueueDepth is the number of commands waiting.
	CommandQueueDepth int
	// PoisonArchived counts unparseable messages archived.
	PoisonArchived uint64
	// LoopTicks counts iterations per background loop ("intake:<queue>",
	// "dispatcher", …). A count that stops moving reveals a wedged loop.
	LoopTicks map[string]uint64
}

// StatusProvider reports the worker's live state.
type StatusProvider interface {
	Snapshot() Snapshot
}

// StatusFunc adapts a function to StatusProvider.
type StatusFunc func() Snapshot

// Snapshot calls f.
func (f StatusFunc) Snapshot() Snapshot { return f() }

// TemplateCatalog finds registered task templates; ports.TemplateStore
// (the postgres adapter) satisfies it.
type TemplateCatalog interface {
	GetTemplate(ctx context.Context, namespace, name, version string) (ports.RegisteredTemplate, error)
	ListTemplates(ctx context.Context, namespace string) ([]ports.RegisteredTemplate, error)
}

// HandlerRegistry lists the callables with a registered Go handler; the
// handler SDK's *handler.Registry satisfies it.
type HandlerRegistry interface {
	Callables() []string
}

// Database is what the probes and pool metrics need; *sqlx.DB satisfies it.
// The readiness check runs "SELECT 1" through ExecContext (contract §8.2).
type Database interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	Stats() sql.DBStats
}

// QueueMetricsReader reads pgmq.metrics of one queue; ports.Queue satisfies it.
type QueueMetricsReader interface {
	Metrics(ctx context.Context, queue string) (ports.QueueMetrics, error)
}

// BreakerReporter reports the OrchestrationAPI client's circuit breaker
// ("closed", "open", "half-open", "disabled"); *httpclient.Client satisfies it.
type BreakerReporter interface {
	BreakerState() string
}
