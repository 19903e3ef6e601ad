// Package enqueue runs the orchestration's enqueue work (contract §10.2):
// the set-based task batches that finalize tasks and enqueue their ready
// steps (ProcessBatch, also used by result processing), the enqueue of new
// tasks right after their creation (Trigger), coalesced into shared batches,
// and the periodic cycle. Backoff expiries are only noticed by the periodic
// cycle, which is why it runs even when triggers do most of the work.
package enqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults (contract §4.7).
const (
	DefaultCycleInterval = 250 * time.Millisecond
	// DefaultSweepInterval is the period of the full candidate scan.
	DefaultSweepInterval = 5 * time.Second
	DefaultTasksPerCycle = 5
	// DefaultTriggerBuffer bounds pending on-demand triggers. When it is full
	// a trigger is dropped: the periodic cycle picks the task up anyway.
	DefaultTriggerBuffer = 1024
	// DefaultConcurrency is how many trigger batches run at the same time.
	DefaultConcurrency = 2
	// DefaultMaxBatch caps the tasks of one trigger batch.
	DefaultMaxBatch = 200
)

// Config tunes the enqueuer.
type Config struct {
	// ClaimerID identifies this instance in claimed_by checks; several
	// instances may share a database.
	ClaimerID string
	// CycleInterval is the period of the cycle: it enqueues the tasks whose
	// retry backoff has expired (scheduled from the batches' reports), so it
	// bounds how late a retry runs. It scans nothing.
	CycleInterval time.Duration
	// SweepInterval is the period of the full candidate scan (§10.2 step 1),
	// the safety net for what no wake-up covers: triggers lost with a
	// process, retries scheduled by an instance that stopped, steps made
	// ready by other writers. Its cost grows with the tasks in flight, so it
	// runs far less often than the cycle. Only the leading instance sweeps.
	SweepInterval time.Duration
	// TasksPerCycle caps the tasks of one candidate scan; a sweep scans
	// again while a scan comes back full.
	TasksPerCycle int
	// TriggerBuffer bounds the on-demand trigger queue.
	TriggerBuffer int
	// Concurrency is how many trigger batches run at the same time. A
	// batch takes every trigger waiting when it starts (up to MaxBatch), so
	// batches grow with the rate of task creation and a lone task waits for
	// nothing; two let one batch gather while the other commits. Each task
	// is locked SKIP LOCKED, so overlapping batches cannot double-enqueue.
	Concurrency int
	// MaxBatch caps the tasks of one trigger batch, which bounds how long
	// its row locks are held.
	MaxBatch int
}

func (c Config) withDefaults() Config {
	if c.CycleInterval <= 0 {
		c.CycleInterval = DefaultCycleInterval
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = DefaultSweepInterval
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
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	return c
}

// QueueCreator creates a namespace queue outside any business transaction.
type QueueCreator interface {
	CreateQueue(ctx context.Context, queue string) error
}

// Leader tells the sweep whether this instance leads (the leader package's
// Election): only the leader sweeps.
type Leader interface {
	Leading() bool
}

// Enqueuer puts ready steps on their namespace queues: triggered per task
// (batched with concurrent triggers), for due retries, and by the sweep.
type Enqueuer struct {
	cfg      Config
	store    ports.StepEnqueuer
	batches  ports.TaskBatchProcessor
	queues   QueueCreator
	leader   Leader
	metrics  ports.OrchestrationMetrics
	log      *zap.Logger
	triggers chan trigger

	mu sync.Mutex
	// retries maps a task to the earliest time one of its steps in error
	// becomes ready again (ports.TaskBatchReport.Retries).
	retries map[uuid.UUID]time.Time
}

// New returns an enqueuer. store serves the cycle's candidate scan, batches
// runs the task batches; leader gates the sweep (nil: always sweep); metrics
// and log may be nil.
func New(cfg Config, store ports.StepEnqueuer, batches ports.TaskBatchProcessor, queues QueueCreator, leader Leader,
	metrics ports.OrchestrationMetrics, log *zap.Logger) *Enqueuer {
	cfg = cfg.withDefaults()
	if metrics == nil {
		metrics = ports.NopOrchestrationMetrics{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Enqueuer{cfg: cfg, store: store, batches: batches, queues: queues, leader: leader, metrics: metrics, log: log,
		triggers: make(chan trigger, cfg.TriggerBuffer), retries: map[uuid.UUID]time.Time{}}
}

// trigger is one on-demand enqueue: a task, and for a task just created
// its root steps (new), which the one-statement path enqueues.
type trigger struct {
	task uuid.UUID
	new  *ports.NewTaskRoots
}

// Trigger asks for taskUUID to be enqueued soon, without blocking. It
// returns false when the trigger buffer is full (the cycle will catch up).
func (s *Enqueuer) Trigger(taskUUID uuid.UUID) bool {
	return s.push(trigger{task: taskUUID})
}

// TriggerNew is Trigger for a task just created, whose root steps are
// known: it is enqueued by ports.StepEnqueuer.EnqueueNewTasks, one statement
// for all the new tasks of a batch, instead of the batch transaction that
// reads every step back to find what is ready. A task that statement leaves
// (locked elsewhere, cancelled meanwhile) goes through the batch path.
func (s *Enqueuer) TriggerNew(roots ports.NewTaskRoots) bool {
	if len(roots.Roots) == 0 {
		return s.push(trigger{task: roots.TaskUUID})
	}
	return s.push(trigger{task: roots.TaskUUID, new: &roots})
}

func (s *Enqueuer) push(t trigger) bool {
	select {
	case s.triggers <- t:
		return true
	default:
		return false
	}
}

// Run serves triggers (Concurrency batches at a time) and runs the
// periodic cycle until ctx ends. Each unit of work runs on a context
// detached from ctx, so shutdown never aborts a transaction half way: Run
// returns after the current units commit.
//
// Every instance serves its triggers (the tasks its API created) and the
// retries its own batches scheduled (known to it alone, and free when there
// are none); only the leader sweeps, since the sweep scans the whole
// database and instances sweeping together find and lock the same tasks.
func (s *Enqueuer) Run(ctx context.Context) error {
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
				case t := <-s.triggers:
					s.enqueueTriggered(work, s.gather(t))
				}
			}
		}()
	}
	defer wg.Wait()
	ticker := time.NewTicker(s.cfg.CycleInterval)
	defer ticker.Stop()
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			s.RunRetries(work, time.Now())
		case <-sweep.C:
			if s.leader != nil && !s.leader.Leading() {
				continue
			}
			if _, err := s.RunCycle(work); err != nil {
				s.log.Warn("enqueue sweep", zap.Error(err))
			}
		}
	}
}

// RunRetries enqueues, in batches, the tasks whose scheduled retry is due
// at now and returns how many steps it enqueued. A task whose step is not
// ready yet after all (clock skew) is rescheduled by the batch's report.
func (s *Enqueuer) RunRetries(ctx context.Context, now time.Time) int {
	s.mu.Lock()
	var due []uuid.UUID
	for id, at := range s.retries {
		if !at.After(now) {
			due = append(due, id)
			delete(s.retries, id)
		}
	}
	s.mu.Unlock()
	total := 0
	for len(due) > 0 {
		n := min(len(due), s.cfg.MaxBatch)
		enq, _ := s.enqueueBatch(ctx, due[:n])
		total += enq
		due = due[n:]
	}
	return total
}

// PendingRetries is how many tasks have a retry scheduled.
func (s *Enqueuer) PendingRetries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.retries)
}

// schedule keeps the earliest retry time of each task.
func (s *Enqueuer) schedule(retries []ports.ScheduledRetry) {
	if len(retries) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range retries {
		if at, ok := s.retries[r.TaskUUID]; !ok || r.At.Before(at) {
			s.retries[r.TaskUUID] = r.At
		}
	}
}

// gather returns first plus every trigger already waiting, up to MaxBatch.
func (s *Enqueuer) gather(first trigger) []trigger {
	ts := []trigger{first}
	for len(ts) < s.cfg.MaxBatch {
		select {
		case t := <-s.triggers:
			ts = append(ts, t)
		default:
			return ts
		}
	}
	return ts
}

// enqueueTriggered enqueues a gathered group of triggers: the new tasks in
// one EnqueueNewTasks statement, then, in one batch, the other tasks and
// the new ones that statement left.
func (s *Enqueuer) enqueueTriggered(ctx context.Context, ts []trigger) {
	var fresh []ports.NewTaskRoots
	var ids []uuid.UUID
	for _, t := range ts {
		if t.new != nil {
			fresh = append(fresh, *t.new)
		} else {
			ids = append(ids, t.task)
		}
	}
	ids = append(ids, s.enqueueNew(ctx, fresh)...)
	if len(ids) > 0 {
		_, _ = s.enqueueBatch(ctx, ids)
	}
}

// enqueueNew runs EnqueueNewTasks (creating a missing queue and trying
// again once), records what it enqueued as ProcessBatch does, and returns
// the tasks left for the batch path: those the statement left, or all of
// them when it failed.
func (s *Enqueuer) enqueueNew(ctx context.Context, fresh []ports.NewTaskRoots) []uuid.UUID {
	if len(fresh) == 0 {
		return nil
	}
	var spans map[uuid.UUID]trace.Span
	var headers func(uuid.UUID) json.RawMessage
	if lifecycle.TracingEnabled() {
		spans = map[uuid.UUID]trace.Span{}
		defer func() {
			for _, sp := range spans {
				sp.End()
			}
		}()
		headers = s.traceHeaders(ctx, spans)
	}
	reps, left, err := s.store.EnqueueNewTasks(ctx, fresh, headers)
	var missing *ports.QueueMissingError
	if errors.As(err, &missing) {
		if cerr := s.queues.CreateQueue(ctx, missing.Queue); cerr != nil {
			err = fmt.Errorf("create queue %s: %w", missing.Queue, cerr)
		} else {
			s.log.Info("created namespace queue", zap.String("queue", missing.Queue))
			reps, left, err = s.store.EnqueueNewTasks(ctx, fresh, headers)
		}
	}
	if err != nil {
		s.log.Warn("enqueue new tasks; trying the batch path", zap.Int("tasks", len(fresh)), zap.Error(err))
		ids := make([]uuid.UUID, len(fresh))
		for i, f := range fresh {
			ids[i] = f.TaskUUID
		}
		return ids
	}
	s.reportEnqueued(ctx, reps, spans)
	return left
}

// enqueueBatch finalizes and enqueues ids in one batch (SKIP LOCKED: a
// task another transaction holds is being processed by it) and returns how
// many steps it enqueued.
func (s *Enqueuer) enqueueBatch(ctx context.Context, ids []uuid.UUID) (int, error) {
	b := ports.TaskBatch{Tasks: make([]ports.TaskItem, len(ids)), SkipLocked: true}
	for i, id := range ids {
		b.Tasks[i] = ports.TaskItem{TaskUUID: id}
	}
	rep, err := s.ProcessBatch(ctx, b)
	if err != nil {
		s.log.Warn("enqueue tasks", zap.Int("tasks", len(ids)), zap.Error(err))
		return 0, err
	}
	n := 0
	for _, e := range rep.Enqueued {
		n += e.StepsEnqueued
	}
	return n, nil
}

// RunCycle is the sweep: it scans for up to TasksPerCycle candidate tasks
// (§10.2 step 1) and enqueues them in one batch, and scans again while a
// scan comes back full and enqueues something; it returns how many steps it
// enqueued.
func (s *Enqueuer) RunCycle(ctx context.Context) (int, error) {
	start := time.Now()
	defer func() { s.metrics.EnqueueCycle(time.Since(start)) }()
	total := 0
	for ctx.Err() == nil {
		ids, err := s.store.CandidateTasks(ctx, s.cfg.ClaimerID, s.cfg.TasksPerCycle)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		n, err := s.enqueueBatch(ctx, ids)
		total += n
		if err != nil || n == 0 || len(ids) < s.cfg.TasksPerCycle {
			return total, err
		}
	}
	return total, nil
}

// EnqueueTask enqueues the ready steps of one task now and returns how many
// it enqueued (0 when another instance holds the task or nothing is ready).
func (s *Enqueuer) EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (int, error) {
	return s.enqueueBatch(ctx, []uuid.UUID{taskUUID})
}

// ProcessBatch runs a task batch (ports.TaskBatch). When a namespace queue
// is missing it creates the queue outside the transaction (§4.1) and runs
// the batch once more; one other failure (a deadlock with a worker's step
// locks, a dropped connection) is retried once, since the batch carries many
// tasks whose messages would otherwise wait out their visibility timeout.
// It counts and logs what the batch enqueued and finalized and, with tracing
// on, gives each task's step messages the trace context of a step.enqueue
// span (see traceHeaders).
func (s *Enqueuer) ProcessBatch(ctx context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error) {
	var spans map[uuid.UUID]trace.Span
	if lifecycle.TracingEnabled() && b.TraceHeaders == nil {
		spans = map[uuid.UUID]trace.Span{}
		defer func() {
			for _, sp := range spans {
				sp.End()
			}
		}()
		b.TraceHeaders = s.traceHeaders(ctx, spans)
	}
	rep, err := s.processTasks(ctx, b)
	if err != nil {
		return rep, err
	}
	s.schedule(rep.Retries)
	s.reportEnqueued(ctx, rep.Enqueued, spans)
	for _, f := range rep.Finalized {
		if f.To != f.From {
			s.finalized(ctx, f)
		}
	}
	return rep, nil
}

// reportEnqueued annotates each task's step.enqueue span (spans, nil when
// not tracing), remembers it as the task's latest span, and records the
// steps sent.
func (s *Enqueuer) reportEnqueued(ctx context.Context, enqueued []ports.EnqueueReport, spans map[uuid.UUID]trace.Span) {
	for _, e := range enqueued {
		ectx := ctx
		if sp, ok := spans[e.TaskUUID]; ok {
			ectx = trace.ContextWithSpan(ctx, sp)
			sp.SetAttributes(attribute.String("tasker.namespace", e.Namespace), attribute.Int("tasker.steps_enqueued", e.StepsEnqueued),
				attribute.Int("tasker.steps_retried", e.StepsRetried))
			for _, st := range e.Steps {
				if link, ok := lifecycle.AttemptLink(st.StepUUID); ok && st.Retry {
					// A retry links to the attempt that failed.
					link.Attributes = []attribute.KeyValue{attribute.String("tasker.step", st.Name),
						attribute.Int("tasker.failed_attempt", st.Attempts)}
					sp.AddLink(link)
				}
			}
			lifecycle.RememberTask(e.TaskUUID, ectx)
		}
		s.record(ectx, e)
	}
}

// traceHeaders starts one step.enqueue span per task that sends step
// messages, parented on the task's latest span, and returns its W3C trace
// context for the messages' pgmq headers. spans collects them for the
// caller to annotate and end.
func (s *Enqueuer) traceHeaders(ctx context.Context, spans map[uuid.UUID]trace.Span) func(uuid.UUID) json.RawMessage {
	tracer := lifecycle.Tracer(lifecycle.OrchestrationTracer)
	return func(task uuid.UUID) json.RawMessage {
		if old, ok := spans[task]; ok { // the batch is being retried
			old.End()
		}
		sctx, span := tracer.Start(lifecycle.TaskContext(ctx, task), "step.enqueue",
			trace.WithAttributes(attribute.String("tasker.task_uuid", task.String())))
		spans[task] = span
		return lifecycle.Headers(sctx)
	}
}

// processTasks runs the batch, creating a missing queue and retrying once.
func (s *Enqueuer) processTasks(ctx context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error) {
	rep, err := s.batches.ProcessTasks(ctx, b)
	var missing *ports.QueueMissingError
	if errors.As(err, &missing) {
		if cerr := s.queues.CreateQueue(ctx, missing.Queue); cerr != nil {
			return rep, fmt.Errorf("create queue %s: %w", missing.Queue, cerr)
		}
		s.log.Info("created namespace queue", zap.String("queue", missing.Queue))
		rep, err = s.batches.ProcessTasks(ctx, b)
	}
	if err != nil && !errors.As(err, &missing) && ctx.Err() == nil {
		s.log.Debug("task batch failed; retrying once", zap.Error(err))
		rep, err = s.batches.ProcessTasks(ctx, b)
	}
	return rep, err
}

// finalized counts and logs a task whose state finalization changed.
func (s *Enqueuer) finalized(ctx context.Context, f ports.FinalizationReport) {
	if lifecycle.TracingEnabled() {
		var span trace.Span
		ctx, span = lifecycle.Tracer(lifecycle.OrchestrationTracer).Start(lifecycle.TaskContext(ctx, f.TaskUUID), "task.finalize",
			trace.WithAttributes(attribute.String("tasker.task_uuid", f.TaskUUID.String()), attribute.String("tasker.state", string(f.To))))
		defer span.End()
		if f.To.IsTerminal() {
			defer lifecycle.ForgetTask(f.TaskUUID)
		} else {
			lifecycle.RememberTask(f.TaskUUID, ctx)
		}
	}
	s.metrics.TaskFinalized(f.To)
	fields := append(lifecycle.Task(ctx, f.TaskUUID, f.Namespace),
		zap.String("template", f.TaskName), zap.String("from", string(f.From)), zap.String("state", string(f.To)))
	if !f.CreatedAt.IsZero() && (f.To.IsTerminal() || f.To == domain.TaskError) {
		d := time.Since(f.CreatedAt)
		s.metrics.TaskDuration(f.Namespace, f.TaskName, f.To, d)
		fields = append(fields, zap.Duration("duration", d))
	}
	s.log.Info(lifecycle.TaskFinalized, fields...)
}

// record counts and logs the steps one task's enqueue sent: one line per
// step, and a retry line (and count) for a step sent again after an error.
func (s *Enqueuer) record(ctx context.Context, rep ports.EnqueueReport) {
	if rep.StepsEnqueued > 0 {
		s.metrics.StepsEnqueued(rep.Namespace, rep.StepsEnqueued)
	}
	for _, st := range rep.Steps {
		fields := lifecycle.Step(ctx, rep.TaskUUID, st.StepUUID, rep.Namespace, st.Name, st.Attempts+1)
		if st.Retry {
			s.metrics.StepRetried(rep.Namespace, st.Name)
			s.log.Info(lifecycle.StepRetried, fields...)
		}
		s.log.Info(lifecycle.StepEnqueued, fields...)
	}
}
