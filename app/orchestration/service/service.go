// Package service wires the orchestration's parts into one runnable unit:
// task initialization, the enqueue loop and the queue consumers, with a
// graceful stop (stop intake, let in-flight transactions commit, return).
package service

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/app/orchestration/leader"
	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/app/orchestration/taskinit"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DefaultShutdownGrace bounds how long Stop waits for in-flight work (§4.7).
const DefaultShutdownGrace = 30 * time.Second

// DefaultEnvironment is used when Config.Environment is empty (§4.7).
const DefaultEnvironment = "development"

// Config is the orchestration service configuration.
type Config struct {
	// ID identifies this instance (claimed_by, logs). Several instances may
	// share one database; a random "orchestrator-<uuid>" is used when empty.
	ID string
	// Environment selects template environment overrides (D-q).
	Environment string
	// Enqueue tunes the enqueue cycle (§10.2).
	Enqueue enqueue.Config
	// Results tunes the queue consumers and the backoff policy (§10.3).
	Results result.Config
	// ShutdownGrace bounds how long Run waits for loops to finish after its
	// context ends.
	ShutdownGrace time.Duration
	// IdempotencyRetention is how long Idempotency-Keys are kept; every
	// PurgeInterval older ones are deleted. Zero disables the purge.
	IdempotencyRetention time.Duration
	// PurgeInterval spaces the purges; DefaultPurgeInterval when zero.
	PurgeInterval time.Duration
}

// DefaultPurgeInterval is how often expired Idempotency-Keys are deleted: the
// retention is counted in hours, so an hour late is harmless.
const DefaultPurgeInterval = time.Hour

// KeyPurger deletes Idempotency-Keys older than retention.
type KeyPurger interface {
	PurgeIdempotencyKeys(ctx context.Context, retention time.Duration) (int64, error)
}

// Deps are the adapters the service runs on. Metrics, Notifier and Log may be nil.
type Deps struct {
	Templates taskinit.TemplateFinder
	Creator   ports.TaskCreator
	Enqueuer  ports.StepEnqueuer
	Batches   ports.TaskBatchProcessor
	Canceller ports.TaskCanceller
	Queue     ports.Queue
	Notifier  ports.MessageNotifier
	Metrics   ports.OrchestrationMetrics
	// DeadLetters records poison messages of the orchestration queues; nil
	// archives them without a DLQ entry.
	DeadLetters ports.DeadLetterRecorder
	// DLQ serves the dead-letter API; nil answers ports.ErrDLQUnavailable.
	DLQ ports.DLQStore
	// Keys purges expired Idempotency-Keys; nil disables the purge.
	Keys KeyPurger
	// Leadership elects the one instance that consumes the orchestration
	// queues and sweeps (ports.Leadership); nil: this instance always does.
	Leadership ports.Leadership
	// Background are extra loops (the staleness detector) run beside the
	// others and stopped with them.
	Background []func(ctx context.Context) error
	Log        *zap.Logger
}

// Service is a running orchestration core.
type Service struct {
	cfg      Config
	deps     Deps
	init     *taskinit.Initializer
	election *leader.Election
	enqueuer *enqueue.Enqueuer
	results  *result.Processor
	log      *zap.Logger
	running  atomic.Bool
	stopping atomic.Bool
}

// OwnedQueues are the queues the orchestration creates at startup and consumes.
var OwnedQueues = []string{domain.QueueStepResults, domain.QueueTaskRequests, domain.QueueTaskFinalizations}

// New builds the service.
func New(cfg Config, d Deps) *Service {
	if cfg.ID == "" {
		cfg.ID = "orchestrator-" + uuid.NewString()
	}
	if cfg.Environment == "" {
		cfg.Environment = DefaultEnvironment
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.PurgeInterval <= 0 {
		cfg.PurgeInterval = DefaultPurgeInterval
	}
	if d.Metrics == nil {
		d.Metrics = ports.NopOrchestrationMetrics{}
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	cfg.Enqueue.ClaimerID = cfg.ID
	s := &Service{cfg: cfg, deps: d, log: d.Log}
	s.init = taskinit.New(d.Templates, d.Creator, cfg.Environment)
	// A standby tries to take over as often as a consumer polls.
	s.election = leader.New(leader.Config{Interval: cfg.Results.PollInterval},
		leader.Deps{Leadership: d.Leadership, Metrics: d.Metrics, Log: d.Log.Named("leader")})
	s.enqueuer = enqueue.New(cfg.Enqueue, d.Enqueuer, d.Batches, d.Queue, s.election, d.Metrics, d.Log.Named("enqueue"))
	s.results = result.New(cfg.Results, result.Deps{
		Queue: d.Queue, Batches: s.enqueuer, Creator: s.init, DeadLetters: d.DeadLetters, Metrics: d.Metrics,
		Log: d.Log.Named("results"), Leader: s.election,
	})
	return s
}

// ID is this instance's identifier.
func (s *Service) ID() string { return s.cfg.ID }

// Environment is the environment templates are resolved for.
func (s *Service) Environment() string { return s.cfg.Environment }

// Running reports whether the loops are running and not shutting down (readiness).
func (s *Service) Running() bool { return s.running.Load() && !s.stopping.Load() }

// Leading reports whether this instance consumes the orchestration queues
// and sweeps now, or stands by while another instance does.
func (s *Service) Leading() bool { return s.election.Leading() }

// Stopping reports whether shutdown has begun.
func (s *Service) Stopping() bool { return s.stopping.Load() }

// CreateTask creates a task (§10.1) and triggers its first enqueue without
// waiting for it.
func (s *Service) CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error) {
	return s.CreateTaskIdempotent(ctx, req, "")
}

// CreateTaskIdempotent is CreateTask honouring an Idempotency-Key (empty:
// none); a replay creates nothing and is not counted.
func (s *Service) CreateTaskIdempotent(ctx context.Context, req domain.TaskRequest, key string) (domain.TaskCreationResponse, error) {
	if s.stopping.Load() {
		return domain.TaskCreationResponse{}, ErrShuttingDown
	}
	ctx, span := lifecycle.Tracer(lifecycle.OrchestrationTracer).Start(ctx, "task.create", trace.WithAttributes(
		attribute.String("tasker.namespace", req.Namespace), attribute.String("tasker.template", req.Name)))
	defer span.End()
	resp, err := s.init.CreateTaskIdempotent(ctx, req, key)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	if err != nil || resp.Replayed {
		return resp, err
	}
	span.SetAttributes(attribute.String("tasker.task_uuid", resp.TaskUUID.String()), attribute.Int("tasker.steps", resp.StepCount))
	lifecycle.RememberTask(resp.TaskUUID, ctx)
	s.deps.Metrics.TaskCreated(req.Namespace)
	s.log.Info(lifecycle.TaskCreated, append(lifecycle.Task(ctx, resp.TaskUUID, req.Namespace),
		zap.String("template", req.Name), zap.String("version", req.Version), zap.Int("steps", resp.StepCount))...)
	roots := ports.NewTaskRoots{TaskUUID: resp.TaskUUID, Namespace: req.Namespace}
	for _, name := range resp.RootSteps {
		if id, ok := resp.StepMapping[name]; ok {
			roots.Roots = append(roots.Roots, ports.EnqueuedStep{StepUUID: id, Name: name})
		}
	}
	s.enqueuer.TriggerNew(roots)
	return resp, nil
}

// CancelTask cancels a task (§10.5).
func (s *Service) CancelTask(ctx context.Context, taskUUID uuid.UUID) error {
	_, err := s.deps.Canceller.CancelTask(ctx, taskUUID)
	return err
}

// ResolveStep resolves a step manually (§7.5) and enqueues what became ready.
func (s *Service) ResolveStep(ctx context.Context, taskUUID, stepUUID uuid.UUID, r ports.ManualResolution) error {
	rep, err := s.deps.Canceller.ResolveStep(ctx, taskUUID, stepUUID, r)
	if err != nil {
		return err
	}
	if rep.To != rep.From {
		s.deps.Metrics.TaskFinalized(rep.To)
	}
	if !rep.To.IsTerminal() && rep.To != domain.TaskError {
		s.enqueuer.Trigger(taskUUID)
	}
	return nil
}

// ErrShuttingDown rejects new work during shutdown.
var ErrShuttingDown = fmt.Errorf("orchestration is shutting down: %w", ports.ErrUnavailable)

// Run creates the owned queues, then runs the enqueue loop and the queue
// consumers until ctx ends. It then stops intake and waits (up to
// ShutdownGrace) for the loops, which finish their current transaction.
func (s *Service) Run(ctx context.Context) error {
	for _, q := range OwnedQueues {
		if err := s.deps.Queue.CreateQueue(ctx, q); err != nil {
			return fmt.Errorf("create queue %s: %w", q, err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.election.Run(ctx) })
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = s.enqueuer.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = s.results.Run(ctx, s.deps.Notifier)
	}()
	if s.deps.Keys != nil && s.cfg.IdempotencyRetention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.purgeKeys(ctx)
		}()
	}
	for _, bg := range s.deps.Background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = bg(ctx)
		}()
	}
	s.running.Store(true)
	s.log.Info("orchestration running", zap.String("id", s.cfg.ID), zap.String("environment", s.cfg.Environment))
	<-ctx.Done()
	s.stopping.Store(true)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		// After the consumers stopped: a standby takes over at its next attempt.
		if err := s.election.Release(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("releasing leadership failed; it goes with the session", zap.Error(err))
		}
		close(done)
	}()
	select {
	case <-done:
		s.running.Store(false)
		return nil
	case <-time.After(s.cfg.ShutdownGrace):
		return fmt.Errorf("orchestration loops did not stop within %s", s.cfg.ShutdownGrace)
	}
}

// purgeKeys deletes expired Idempotency-Keys at start and every
// PurgeInterval until ctx ends. Failures are logged and retried next time.
func (s *Service) purgeKeys(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		n, err := s.deps.Keys.PurgeIdempotencyKeys(ctx, s.cfg.IdempotencyRetention)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("purging expired idempotency keys failed", zap.Error(err))
		case n > 0:
			s.log.Info("purged expired idempotency keys", zap.Int64("deleted", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ListDLQ lists dead-letter entries (GET /v1/dlq).
func (s *Service) ListDLQ(ctx context.Context, f ports.DLQFilter) (ports.DLQPage, error) {
	if s.deps.DLQ == nil {
		return ports.DLQPage{}, ports.ErrDLQUnavailable
	}
	return s.deps.DLQ.ListDLQ(ctx, f)
}

// GetDLQ returns one entry.
func (s *Service) GetDLQ(ctx context.Context, id uuid.UUID) (domain.DLQEntry, error) {
	if s.deps.DLQ == nil {
		return domain.DLQEntry{}, ports.ErrDLQUnavailable
	}
	return s.deps.DLQ.GetDLQ(ctx, id)
}

// RequeueDLQ sends the entry's work again and, for a task, triggers its
// enqueue at once instead of waiting for the next sweep.
func (s *Service) RequeueDLQ(ctx context.Context, id uuid.UUID) (domain.DLQEntry, error) {
	if s.deps.DLQ == nil {
		return domain.DLQEntry{}, ports.ErrDLQUnavailable
	}
	e, err := s.deps.DLQ.RequeueDLQ(ctx, id)
	if err == nil && e.TaskUUID != uuid.Nil {
		s.enqueuer.Trigger(e.TaskUUID)
	}
	return e, err
}

// ResolveDLQ closes an entry with a note.
func (s *Service) ResolveDLQ(ctx context.Context, id uuid.UUID, note string) (domain.DLQEntry, error) {
	if s.deps.DLQ == nil {
		return domain.DLQEntry{}, ports.ErrDLQUnavailable
	}
	return s.deps.DLQ.ResolveDLQ(ctx, id, note)
}
