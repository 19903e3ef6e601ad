// Package workerapi is the worker's HTTP API (contract §8): health, readiness
// and liveness probes, Prometheus metrics, status, registered handlers and
// task templates, served with gin.
//
// The server depends only on the small interfaces declared here, so it can
// be tested with fakes and wired to the worker by the composition root
// (cmd/tasker-worker) without importing the worker's application packages.
package workerapi

import (
	"context"
	"database/sql"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Worker lifecycle states reported as WorkerStatusResponse.status.
const (
	LifecycleStarting = "starting"
	LifecycleActive   = "active"
	LifecycleStopping = "stopping"
)

// StatusProvider reports the worker's live state.
// (domain.WorkerStatus is the one status model: the worker fills it, this
// API renders it, the metrics read it).
type StatusProvider interface {
	Snapshot() domain.WorkerStatus
}

// StatusFunc adapts a function to StatusProvider.
type StatusFunc func() domain.WorkerStatus

// Snapshot calls f.
func (f StatusFunc) Snapshot() domain.WorkerStatus { return f() }

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
