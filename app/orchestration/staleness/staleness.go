// Package staleness is the orchestration's staleness detector: every
// CheckInterval it asks the store for work that can never finish on its own
// (a step enqueued too long with no claim, a step whose message was
// archived, a task in_progress too long with no transition), which the
// store records as DLQ entries and, with ActionError, fails. Each finding is
// logged at WARN with task, step, namespace and reason, and counted per
// reason. Several orchestration instances run it at once safely: the store
// skips rows another instance holds and records each fact once.
package staleness

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults (config orchestration.staleness.*).
const (
	DefaultEnqueuedTimeout = 600 * time.Second
	DefaultTaskTimeout     = 3600 * time.Second
	DefaultCheckInterval   = 30 * time.Second
)

// Action is what happens to stale work besides the DLQ entry.
type Action string

// Actions.
const (
	// ActionError moves the stale step and its task to error, with the reason
	// in the transition metadata: nothing else would ever finish them.
	ActionError Action = "error"
	// ActionAlert records, logs and counts only; the task is left as it is.
	ActionAlert Action = "alert"
)

// Config tunes the detector.
type Config struct {
	// EnqueuedTimeout: a step enqueued this long with no claim is stale.
	EnqueuedTimeout time.Duration
	// TaskTimeout: a task in_progress with no transition this long is stale.
	TaskTimeout time.Duration
	// CheckInterval spaces the scans.
	CheckInterval time.Duration
	// Action is ActionError (default) or ActionAlert.
	Action Action
}

// Detector runs the periodic scan.
type Detector struct {
	cfg     Config
	scanner ports.StalenessScanner
	metrics ports.OrchestrationMetrics
	log     *zap.Logger
	clock   ports.Clock
}

// New returns a Detector; metrics, log and clock may be nil.
func New(cfg Config, scanner ports.StalenessScanner, metrics ports.OrchestrationMetrics, log *zap.Logger, clock ports.Clock) *Detector {
	if cfg.EnqueuedTimeout <= 0 {
		cfg.EnqueuedTimeout = DefaultEnqueuedTimeout
	}
	if cfg.TaskTimeout <= 0 {
		cfg.TaskTimeout = DefaultTaskTimeout
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.Action == "" {
		cfg.Action = ActionError
	}
	if metrics == nil {
		metrics = ports.NopOrchestrationMetrics{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = ports.SystemClock{}
	}
	return &Detector{cfg: cfg, scanner: scanner, metrics: metrics, log: log, clock: clock}
}

// Run scans every CheckInterval until ctx ends. A database without the DLQ
// table stops the detector after one WARN: there is nowhere to record.
func (d *Detector) Run(ctx context.Context) error {
	for {
		if _, err := d.Check(ctx); errors.Is(err, ports.ErrDLQUnavailable) {
			d.log.Warn("staleness detector off: the DLQ table is missing", zap.Error(err))
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.clock.After(d.cfg.CheckInterval):
		}
	}
}

// Check runs one scan and reports what it dead-lettered.
func (d *Detector) Check(ctx context.Context) ([]domain.DLQEntry, error) {
	found, err := d.scanner.ScanStale(ctx, ports.StalenessPolicy{EnqueuedTimeout: d.cfg.EnqueuedTimeout,
		TaskTimeout: d.cfg.TaskTimeout, FailTask: d.cfg.Action == ActionError})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ports.ErrDLQUnavailable) {
			d.log.Warn("staleness scan failed; retrying next interval", zap.Error(err))
		}
		return nil, err
	}
	for _, e := range found {
		d.metrics.DeadLettered(e.Reason)
		fields := append(lifecycle.Task(ctx, e.TaskUUID, e.Namespace),
			zap.String("reason", string(e.Reason)), zap.Stringer("entry_uuid", e.EntryUUID),
			zap.String("action", string(d.cfg.Action)), zap.String("detail", e.Detail))
		if e.StepUUID != uuid.Nil {
			fields = append(fields, zap.Stringer(lifecycle.FieldStepUUID, e.StepUUID))
		}
		d.log.Warn(lifecycle.StepDeadLettered, fields...)
	}
	return found, nil
}
