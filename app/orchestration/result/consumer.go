// Package result consumes the orchestration's queues (contract §10.3, §4.5):
// step completion messages on orchestration_step_results (backoff
// bookkeeping, finalization, immediate re-enqueue), task requests on
// orchestration_task_requests and finalization requests on
// orchestration_task_finalizations. Each queue is read in batches on every
// wake-up notification and on a polling fallback, and each batch of step
// results or finalization requests is processed as one set-based
// transaction across its tasks (ports.TaskBatch).
package result

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

	"github.com/tasker-systems/tasker-go/app/consume"
	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults (contract §4.7, §10.3).
const (
	DefaultPollInterval             = 500 * time.Millisecond
	DefaultBatchSize                = 10
	DefaultVisibilityTimeoutSeconds = 30
	DefaultMaxBackoffSeconds        = 300
	DefaultConcurrency              = 2
	DefaultMaxBatchSize             = 200
)

// Config tunes the consumers and the backoff policy.
type Config struct {
	// PollInterval is the polling fallback; notifications are only hints.
	PollInterval time.Duration
	// BatchSize is the qty of a pgmq.read when the queue is quiet (§4.7).
	BatchSize int
	// MaxBatchSize caps the qty of a read, and so the messages of one
	// transaction, when the queue is busy: while a read comes back full the
	// next one asks for twice as many, so batches grow with the load (one
	// commit, and one serialised NOTIFY commit, per batch instead of per
	// task) and shrink back to BatchSize when the queue drains.
	MaxBatchSize int
	// VisibilityTimeoutSeconds hides a message being processed; if the
	// process dies it is redelivered after this long (processing is idempotent).
	VisibilityTimeoutSeconds int
	// MaxBackoffSeconds caps backoff_request_seconds (300 per §10.3).
	MaxBackoffSeconds int
	// Concurrency is how many consumers read each queue: one reads and
	// processes its batch while another commits. Batches lock their tasks in
	// task_uuid order, so concurrent batches wait for each other on a shared
	// task but never deadlock; task requests of one batch are also created
	// this many at a time.
	Concurrency int
	// Jitter adds ±10 % to exponential backoff so that many steps failing
	// together do not retry in lock step. Keep it off in tests.
	Jitter bool
	// MaxReceiveCount is pgmq.max_receive_count: a message read more often
	// than this has failed that many times in a row, so it is archived and
	// dead-lettered instead of processed again. 0 disables the limit.
	MaxReceiveCount int
}

func (c Config) withDefaults() Config {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.VisibilityTimeoutSeconds <= 0 {
		c.VisibilityTimeoutSeconds = DefaultVisibilityTimeoutSeconds
	}
	if c.MaxBackoffSeconds <= 0 {
		c.MaxBackoffSeconds = DefaultMaxBackoffSeconds
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = DefaultMaxBatchSize
	}
	c.MaxBatchSize = max(c.MaxBatchSize, c.BatchSize)
	return c
}

// disposition is what happens to a message after handling.
type disposition int

const (
	dispDelete  disposition = iota // processed
	dispArchive                    // poison or permanently invalid
	dispLeave                      // transient failure: redelivered after vt
	dispDeleted                    // processed and deleted by the processing transaction
	dispPoison                     // permanently failing: archived and dead-lettered
)

// batchHandler processes one batch read from a queue.
type batchHandler func(ctx context.Context, queue string, msgs []ports.QueueMessage)

// consumeLoop is a consumer loop of queue: it drains the queue on every
// wake-up, and on every poll tick when poll is set, until ctx ends. Work
// runs on a context detached from ctx, so a batch being processed at
// shutdown finishes its transaction before the loop returns.
//
// Only one consumer of each queue polls: the polling fallback exists for
// notifications that are lost, and one reader finds their messages as well
// as Concurrency readers do, at a fraction of the idle commits (every read
// of an empty queue is a transaction). The others wait for wake-ups, which a
// notification or a consumer that read a full batch (so more is likely
// waiting) sends them.
//
// A full read doubles the next read's qty (up to MaxBatchSize), so batches
// grow with the backlog; the first read after a wait asks for BatchSize.
func (p *Processor) consumeLoop(router *consume.Router, queue string, poll bool, h batchHandler) consume.Loop {
	qty := p.cfg.BatchSize
	l := consume.Loop{Name: "consumer:" + queue, Wake: router.Wakeups(queue),
		Step: func(ctx context.Context) bool {
			if !p.leading() {
				qty = p.cfg.BatchSize
				return false // a standby's loop goes on waking and polling, and reads nothing
			}
			full := p.readOnce(context.WithoutCancel(ctx), router, queue, qty, h)
			if full {
				qty = min(qty*2, p.cfg.MaxBatchSize)
			} else {
				qty = p.cfg.BatchSize
			}
			return full
		}}
	if poll {
		l.PollInterval = p.cfg.PollInterval
	}
	return l
}

// leading reports whether this instance's consumers read now.
func (p *Processor) leading() bool { return p.leader == nil || p.leader.Leading() }

// wakeOnGain wakes every consumer of queues each time this instance becomes
// the leader, so that a new leader reads at once rather than at its next
// poll, until ctx ends.
func (p *Processor) wakeOnGain(ctx context.Context, router *consume.Router, queues []string) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.leader.Gained():
			for _, q := range queues {
				router.Wake(q)
			}
		}
	}
}

// readOnce reads up to qty messages of queue and handles them; it reports
// whether the read came back full. With more than one consumer, a full read
// wakes another consumer of the queue.
func (p *Processor) readOnce(work context.Context, router *consume.Router, queue string, qty int, h batchHandler) bool {
	msgs, err := p.queue.Read(work, queue, p.cfg.VisibilityTimeoutSeconds, qty)
	if err != nil {
		p.log.Warn("read queue", zap.String("queue", queue), zap.Error(err))
		return false
	}
	full := len(msgs) == qty
	if full && p.cfg.Concurrency > 1 {
		router.Wake(queue)
	}
	if msgs = p.overLimit(work, queue, msgs); len(msgs) > 0 {
		h(work, queue, msgs)
	}
	return full
}

// parallel runs fn(0..n-1) with at most Concurrency calls at a time and
// returns when all have returned.
func (p *Processor) parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// processStepResults handles one batch of completion messages (§10.3) as
// one task batch: every task of the batch is locked, its results' backoff
// recorded, finalized and enqueued, and the messages deleted, in one
// transaction. Unparseable messages and messages of unknown steps are
// archived; when the batch fails the messages stay and are redelivered after
// the visibility timeout (processing is idempotent).
func (p *Processor) processStepResults(ctx context.Context, queue string, msgs []ports.QueueMessage) {
	b := ports.TaskBatch{Queue: queue, Bookkeeping: p.bookkeeping}
	var items []ports.QueueMessage
	for _, m := range msgs {
		var msg domain.SimpleStepMessage
		if err := json.Unmarshal(m.Message, &msg); err != nil || msg.StepUUID == uuid.Nil {
			p.log.Error("unparseable step result message; archiving", zap.ByteString("message", m.Message))
			p.settle(ctx, queue, m, dispArchive)
			continue
		}
		b.Results = append(b.Results, ports.ResultItem{MsgID: m.MsgID, StepUUID: msg.StepUUID})
		items = append(items, m)
		if lifecycle.TracingEnabled() && len(m.Headers) > 0 {
			// The worker's handler span, carried in the completion message's
			// headers, parents this task's result processing and what it enqueues.
			carried := lifecycle.FromHeaders(ctx, m.Headers)
			lifecycle.RememberAttempt(msg.StepUUID, carried)
			sctx, span := lifecycle.Tracer(lifecycle.OrchestrationTracer).Start(carried, "step.result",
				trace.WithAttributes(attribute.String("tasker.task_uuid", msg.TaskUUID.String()), attribute.String("tasker.step_uuid", msg.StepUUID.String())))
			lifecycle.RememberTask(msg.TaskUUID, sctx)
			defer span.End()
		}
	}
	if len(items) == 0 {
		return
	}
	rep, err := p.batches.ProcessBatch(ctx, b)
	if err != nil {
		p.log.Warn("process step results", zap.Int("messages", len(items)), zap.Error(err))
		p.settleAll(ctx, queue, items, dispLeave)
		return
	}
	ds := make([]disposition, len(items))
	for i := range ds {
		ds[i] = dispDeleted
	}
	for _, i := range rep.UnknownResults {
		p.log.Error("step result for unknown step; archiving", zap.Stringer("step_uuid", b.Results[i].StepUUID))
		ds[i] = dispArchive
	}
	for i, m := range items {
		p.settle(ctx, queue, m, ds[i])
	}
}

// processFinalizations handles one batch of finalization requests (§4.5)
// as one task batch; requests for unknown tasks are archived.
func (p *Processor) processFinalizations(ctx context.Context, queue string, msgs []ports.QueueMessage) {
	b := ports.TaskBatch{Queue: queue}
	var items []ports.QueueMessage
	for _, m := range msgs {
		var msg struct {
			TaskUUID uuid.UUID `json:"task_uuid"`
		}
		if err := json.Unmarshal(m.Message, &msg); err != nil || msg.TaskUUID == uuid.Nil {
			p.log.Error("unparseable finalization request; archiving", zap.ByteString("message", m.Message))
			p.settle(ctx, queue, m, dispArchive)
			continue
		}
		b.Tasks = append(b.Tasks, ports.TaskItem{MsgID: m.MsgID, TaskUUID: msg.TaskUUID})
		items = append(items, m)
	}
	if len(items) == 0 {
		return
	}
	rep, err := p.batches.ProcessBatch(ctx, b)
	if err != nil {
		p.log.Warn("process finalization requests", zap.Int("messages", len(items)), zap.Error(err))
		p.settleAll(ctx, queue, items, dispLeave)
		return
	}
	ds := make([]disposition, len(items))
	for i := range ds {
		ds[i] = dispDeleted
	}
	for _, i := range rep.UnknownTasks {
		ds[i] = dispArchive
	}
	for i, m := range items {
		p.settle(ctx, queue, m, ds[i])
	}
}

// processTaskRequests creates the requested tasks (Concurrency at a time,
// each in its own transaction, §10.1), settles their messages, then
// enqueues all the created tasks in one batch.
func (p *Processor) processTaskRequests(ctx context.Context, queue string, msgs []ports.QueueMessage) {
	created := make([]uuid.UUID, len(msgs))
	p.parallel(len(msgs), func(i int) {
		var d disposition
		var cause error
		created[i], d, cause = p.createTask(ctx, msgs[i].Message)
		if d == dispPoison {
			p.poison(ctx, queue, msgs[i], cause.Error())
			return
		}
		p.settle(ctx, queue, msgs[i], d)
	})
	b := ports.TaskBatch{SkipLocked: true}
	for _, id := range created {
		if id != uuid.Nil {
			b.Tasks = append(b.Tasks, ports.TaskItem{TaskUUID: id})
		}
	}
	if len(b.Tasks) == 0 {
		return
	}
	if _, err := p.batches.ProcessBatch(ctx, b); err != nil {
		// The tasks exist; the enqueue cycle picks them up.
		p.log.Warn("enqueue new tasks", zap.Int("tasks", len(b.Tasks)), zap.Error(err))
	}
}

func (p *Processor) settleAll(ctx context.Context, queue string, msgs []ports.QueueMessage, d disposition) {
	for _, m := range msgs {
		p.settle(ctx, queue, m, d)
	}
}

func (p *Processor) settle(ctx context.Context, queue string, m ports.QueueMessage, d disposition) {
	switch d {
	case dispDelete:
		if _, err := p.queue.Delete(ctx, queue, m.MsgID); err != nil {
			p.log.Warn("delete message", zap.String("queue", queue), zap.Int64("msg_id", m.MsgID), zap.Error(err))
		}
		p.metrics.ResultProcessed(queue, "processed")
	case dispDeleted:
		p.metrics.ResultProcessed(queue, "processed")
	case dispArchive:
		if _, err := p.queue.Archive(ctx, queue, m.MsgID); err != nil {
			p.log.Warn("archive message", zap.String("queue", queue), zap.Int64("msg_id", m.MsgID), zap.Error(err))
		}
		p.metrics.ResultProcessed(queue, "archived")
	default:
		p.metrics.ResultProcessed(queue, "failed")
	}
}

// Run consumes the three orchestration queues until ctx ends, reading only
// while this instance leads (Deps.Leader). Wake-ups from
// notifier (may be nil: polling only) are routed by queue name; names of
// other queues are ignored (D-h: the global channel carries every queue's
// notifications).
func (p *Processor) Run(ctx context.Context, notifier ports.MessageNotifier) error {
	handlers := map[string]batchHandler{
		domain.QueueStepResults:       p.processStepResults,
		domain.QueueTaskRequests:      p.processTaskRequests,
		domain.QueueTaskFinalizations: p.processFinalizations,
	}
	queues := make([]string, 0, len(handlers))
	for q := range handlers {
		queues = append(queues, q)
	}
	router := consume.NewRouter(queues)
	var wg sync.WaitGroup
	if notifier != nil {
		wg.Go(func() { router.Route(ctx, notifier, p.log, nil) })
	}
	if p.leader != nil {
		wg.Go(func() { p.wakeOnGain(ctx, router, queues) })
	}
	for q, h := range handlers {
		for i := range p.cfg.Concurrency {
			wg.Go(func() { p.consumeLoop(router, q, i == 0, h).Run(ctx) })
		}
	}
	wg.Wait()
	return nil
}

// overLimit archives and dead-letters the messages read more than
// MaxReceiveCount times and returns the others.
func (p *Processor) overLimit(ctx context.Context, queue string, msgs []ports.QueueMessage) []ports.QueueMessage {
	if p.cfg.MaxReceiveCount <= 0 {
		return msgs
	}
	keep := msgs[:0:0]
	for _, m := range msgs {
		if m.ReadCt > p.cfg.MaxReceiveCount {
			p.poison(ctx, queue, m, fmt.Sprintf("read %d times, more than pgmq.max_receive_count (%d): every attempt failed",
				m.ReadCt, p.cfg.MaxReceiveCount))
			continue
		}
		keep = append(keep, m)
	}
	return keep
}

// poison archives m and records it in the DLQ with detail, so an operator
// sees it in GET /v1/dlq and can send it again once the cause is fixed. On
// a database without the DLQ table the message is only archived.
//
// The entry is recorded before the message is archived: a crash between the
// two reads the message again and records it again (a duplicate entry an
// operator can resolve), where the other order could lose the entry.
func (p *Processor) poison(ctx context.Context, queue string, m ports.QueueMessage, detail string) {
	defer p.settle(ctx, queue, m, dispArchive)
	var ids struct {
		TaskUUID uuid.UUID `json:"task_uuid"`
		StepUUID uuid.UUID `json:"step_uuid"`
	}
	_ = json.Unmarshal(m.Message, &ids) // a body naming no ids is dead-lettered without them
	fields := []zap.Field{zap.String("queue", queue), zap.Int64("msg_id", m.MsgID), zap.Int("read_ct", m.ReadCt),
		zap.String("reason", string(domain.DLQPoisonMessage)), zap.String("detail", detail)}
	if p.dlq == nil {
		p.log.Warn("poison message archived", fields...)
		return
	}
	e, err := p.dlq.RecordPoison(ctx, ports.PoisonMessage{Queue: queue, MsgID: m.MsgID, ReadCt: m.ReadCt, Message: m.Message,
		TaskUUID: ids.TaskUUID, StepUUID: ids.StepUUID, Detail: detail})
	switch {
	case errors.Is(err, ports.ErrDLQUnavailable):
		p.log.Warn("poison message archived (no DLQ table)", fields...)
	case err != nil:
		p.log.Warn("poison message archived; recording it in the DLQ failed", append(fields, zap.Error(err))...)
	default:
		p.metrics.DeadLettered(domain.DLQPoisonMessage)
		p.log.Warn("poison message archived and dead-lettered", append(fields, zap.Stringer("entry_uuid", e.EntryUUID),
			zap.Stringer("task_uuid", e.TaskUUID), zap.Stringer("step_uuid", e.StepUUID), zap.String("namespace", e.Namespace))...)
	}
}
