// Package enqueue runs the orchestration's enqueue cycle (contract §10.2):
// every cycle interval it asks the store to enqueue the ready steps of up to
// tasks_per_cycle candidate tasks, and it enqueues single tasks on demand
// right after task creation and after each processed result. Backoff
// expiries are only noticed by the periodic cycle, which is why it runs even
// when triggers do most of the work.
package enqueue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults (contract §4.7).
const (
	DefaultCycleInterval = 250 * time.Millisecond
	DefaultTasksPerCycle = 5
	// DefaultTriggerBuffer bounds pending on-demand triggers. When it is full
	// a trigger is dropped: the periodic cycle picks the task up anyway.
	DefaultTriggerBuffer = 1024
	// DefaultConcurrency is how many tasks are enqueued at the same time.
	DefaultConcurrency = 4
)

// Config tunes the enqueuer.
type Config struct {
	// ClaimerID identifies this instance in claimed_by checks; several
	// instances may share a database.
	ClaimerID string
	// CycleInterval is the period of the candidate scan.
	CycleInterval time.Duration
	// TasksPerCycle caps the tasks enqueued per cycle so one cycle never
	// holds the loop for long.
	TasksPerCycle int
	// TriggerBuffer bounds the on-demand trigger queue.
	TriggerBuffer int
	// Concurrency is how many per-task enqueue transactions run at the same
	// time, for triggers and for the candidates of one cycle. Each is a
	// handful of round trips and a commit that waits for the WAL flush, so
	// one at a time capped a burst of new tasks at the rate of serial
	// commits (about 150 tasks/s on 2 cores) while the worker sat idle.
	// Tasks never share a transaction and each holds its own task row lock
	// (SKIP LOCKED), so running them side by side cannot double-enqueue.
	Concurrency int
}

func (c Config) withDefaults() Config {
	if c.CycleInterval <= 0 {
		c.CycleInterval = DefaultCycleInterval
	}
	if c.TasksPerCycle <= 0 {
		c.TasksPerCycle = DefaultTasksPerCycle
	}
	if c.TriggerBuffer <= 0 {
		c.TriggerBuffer = DefaultTriggerBuffer
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// QueueCreator creates a namespace queue outside any business transaction.
type QueueCreator interface {
	CreateQueue(ctx context.Context, queue string) error
}

// Service is the enqueuer.
type Service struct {
	cfg      Config
	store    ports.StepEnqueuer
	final    ports.TaskFinalizer
	queues   QueueCreator
	metrics  ports.OrchestrationMetrics
	log      *zap.Logger
	triggers chan uuid.UUID
}

// New returns an enqueuer. final serves FinalizeAndEnqueue; metrics and log may be nil.
func New(cfg Config, store ports.StepEnqueuer, final ports.TaskFinalizer, queues QueueCreator, metrics ports.OrchestrationMetrics, log *zap.Logger) *Service {
	cfg = cfg.withDefaults()
	if metrics == nil {
		metrics = ports.NopOrchestrationMetrics{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Service{cfg: cfg, store: store, final: final, queues: queues, metrics: metrics, log: log,
		triggers: make(chan uuid.UUID, cfg.TriggerBuffer)}
}

// Trigger asks for taskUUID to be enqueued soon, without blocking. It
// returns false when the trigger buffer is full (the cycle will catch up).
func (s *Service) Trigger(taskUUID uuid.UUID) bool {
	select {
	case s.triggers <- taskUUID:
		return true
	default:
		return false
	}
}

// Run serves triggers (Concurrency at a time) and runs the periodic cycle
// until ctx ends. Each unit of work runs on a context detached from ctx, so
// shutdown never aborts a transaction half way: Run returns after the
// current units commit.
func (s *Service) Run(ctx context.Context) error {
	work := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-s.triggers:
					if _, err := s.EnqueueTask(work, id); err != nil {
						s.log.Warn("enqueue triggered task", zap.Stringer("task_uuid", id), zap.Error(err))
					}
				}
			}
		}()
	}
	defer wg.Wait()
	ticker := time.NewTicker(s.cfg.CycleInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if _, err := s.RunCycle(work); err != nil {
				s.log.Warn("enqueue cycle", zap.Error(err))
			}
		}
	}
}

// RunCycle scans once for up to TasksPerCycle candidate tasks and enqueues
// each in its own transaction, Concurrency at a time; it returns how many
// steps it enqueued and the errors of the tasks that failed.
func (s *Service) RunCycle(ctx context.Context) (int, error) {
	start := time.Now()
	defer func() { s.metrics.EnqueueCycle(time.Since(start)) }()
	ids, err := s.store.CandidateTasks(ctx, s.cfg.ClaimerID, s.cfg.TasksPerCycle)
	if err != nil {
		return 0, err
	}
	var (
		mu    sync.Mutex
		total int
		errs  []error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, s.cfg.Concurrency)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n, err := s.EnqueueTask(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// EnqueueTask enqueues the ready steps of one task now and returns how many
// it enqueued (0 when another instance holds the task or nothing is ready).
func (s *Service) EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (int, error) {
	rep, _, err := s.withQueue(ctx, func() (ports.EnqueueReport, bool, error) {
		return s.store.EnqueueTask(ctx, taskUUID)
	})
	if err != nil {
		return 0, err
	}
	s.record(rep)
	return rep.StepsEnqueued, nil
}

// FinalizeAndEnqueue evaluates finalization of the task (§10.4) and, if it
// stays active, enqueues its ready steps in the same transaction (§10.2 step
// 3), which also deletes consumed.
func (s *Service) FinalizeAndEnqueue(ctx context.Context, taskUUID uuid.UUID, consumed ports.ConsumedMessages) (ports.FinalizationReport, error) {
	var fin ports.FinalizationReport
	rep, _, err := s.withQueue(ctx, func() (ports.EnqueueReport, bool, error) {
		var enq ports.EnqueueReport
		var err error
		fin, enq, err = s.final.FinalizeAndEnqueue(ctx, taskUUID, consumed)
		return enq, true, err
	})
	if err != nil {
		return fin, err
	}
	s.record(rep)
	return fin, nil
}

// withQueue runs fn; if the namespace queue is missing it creates the queue
// (outside the transaction, §4.1) and runs fn once more.
func (s *Service) withQueue(ctx context.Context, fn func() (ports.EnqueueReport, bool, error)) (ports.EnqueueReport, bool, error) {
	rep, found, err := fn()
	var missing *ports.QueueMissingError
	if !errors.As(err, &missing) {
		return rep, found, err
	}
	if err := s.queues.CreateQueue(ctx, missing.Queue); err != nil {
		return rep, found, fmt.Errorf("create queue %s: %w", missing.Queue, err)
	}
	s.log.Info("created namespace queue", zap.String("queue", missing.Queue))
	return fn()
}

func (s *Service) record(rep ports.EnqueueReport) {
	if rep.StepsEnqueued > 0 {
		s.metrics.StepsEnqueued(rep.Namespace, rep.StepsEnqueued)
	}
}
