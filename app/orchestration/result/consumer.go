// Package result consumes the orchestration's queues (contract §10.3, §4.5):
// step completion messages on orchestration_step_results (backoff
// bookkeeping, finalization, immediate re-enqueue), task requests on
// orchestration_task_requests and finalization requests on
// orchestration_task_finalizations. Each queue is read in batches on every
// wake-up notification and on a polling fallback.
package result

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults (contract §4.7, §10.3).
const (
	DefaultPollInterval             = 500 * time.Millisecond
	DefaultBatchSize                = 10
	DefaultVisibilityTimeoutSeconds = 30
	DefaultMaxBackoffSeconds        = 300
	DefaultConcurrency              = 4
)

// Config tunes the consumers and the backoff policy.
type Config struct {
	// PollInterval is the polling fallback; notifications are only hints.
	PollInterval time.Duration
	// BatchSize is the qty of each pgmq.read.
	BatchSize int
	// VisibilityTimeoutSeconds hides a message being processed; if the
	// process dies it is redelivered after this long (processing is idempotent).
	VisibilityTimeoutSeconds int
	// MaxBackoffSeconds caps backoff_request_seconds (300 per §10.3).
	MaxBackoffSeconds int
	// Concurrency is how many messages of one batch are handled in
	// parallel. Handling is idempotent and every transaction locks the task
	// row, so results of one task processed together stay correct; a skipped
	// enqueue (row locked by a sibling) is redone by that sibling or the cycle.
	Concurrency int
	// Jitter adds ±10 % to exponential backoff so that many steps failing
	// together do not retry in lock step. Keep it off in tests.
	Jitter bool
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
	return c
}

// disposition is what happens to a message after handling.
type disposition int

const (
	dispDelete  disposition = iota // processed
	dispArchive                    // poison or permanently invalid
	dispLeave                      // transient failure: redelivered after vt
	dispDeleted                    // processed and deleted by the processing transaction
)

// handler processes one message body.
type handler func(ctx context.Context, body []byte) disposition

// consumeLoop drains queue on every wake-up and poll tick until ctx ends.
// Work runs on a context detached from ctx, so a message being processed at
// shutdown finishes its transactions before the loop returns.
func (p *Processor) consumeLoop(ctx context.Context, queue string, wake <-chan struct{}, h handler) {
	ticker := time.NewTicker(p.cfg.PollInterval)
	defer ticker.Stop()
	work := context.WithoutCancel(ctx)
	for {
		p.drain(ctx, work, queue, h)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-ticker.C:
		}
	}
}

// drain reads batches until the queue has no visible message or ctx ends.
func (p *Processor) drain(ctx, work context.Context, queue string, h handler) {
	for ctx.Err() == nil {
		msgs, err := p.queue.Read(work, queue, p.cfg.VisibilityTimeoutSeconds, p.cfg.BatchSize)
		if err != nil {
			p.log.Warn("read queue", zap.String("queue", queue), zap.Error(err))
			return
		}
		if queue == domain.QueueStepResults {
			p.processStepResults(work, queue, msgs)
		} else {
			p.parallel(len(msgs), func(i int) { p.settle(work, queue, msgs[i], h(work, msgs[i].Message)) })
		}
		if len(msgs) < p.cfg.BatchSize {
			return
		}
	}
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

// processStepResults handles one batch of completion messages. Messages
// are grouped by the task_uuid they carry and the groups run in parallel;
// within a group the §10.3 bookkeeping runs per message, then finalization
// (and enqueue) once per task, then each message is settled with its task's
// outcome. Sibling steps finishing together (the branches of a diamond) thus
// cost one task transaction instead of one each, and their finalizers do not
// queue on the same task row lock; a group of one is exactly the per-message
// path. The carried task_uuid only groups: the task finalized is the step's.
func (p *Processor) processStepResults(ctx context.Context, queue string, msgs []ports.QueueMessage) {
	var groups [][]ports.QueueMessage
	byTask := map[uuid.UUID]int{}
	for _, m := range msgs {
		var hint struct {
			TaskUUID uuid.UUID `json:"task_uuid"`
		}
		if json.Unmarshal(m.Message, &hint) != nil || hint.TaskUUID == uuid.Nil {
			groups = append(groups, []ports.QueueMessage{m})
			continue
		}
		if g, ok := byTask[hint.TaskUUID]; ok {
			groups[g] = append(groups[g], m)
			continue
		}
		byTask[hint.TaskUUID] = len(groups)
		groups = append(groups, []ports.QueueMessage{m})
	}
	p.parallel(len(groups), func(i int) { p.processStepResultGroup(ctx, queue, groups[i]) })
}

// processStepResultGroup is processStepResults for the messages of one task.
// The messages that wait for a task's finalization are deleted by its
// finalization transaction (§10.3 step 5): no delete statement, and no commit
// of its own, per message.
func (p *Processor) processStepResultGroup(ctx context.Context, queue string, msgs []ports.QueueMessage) {
	ds := make([]disposition, len(msgs))
	tasks := make([]uuid.UUID, len(msgs))
	consumed := map[uuid.UUID][]int64{}
	for i, m := range msgs {
		var finalize bool
		tasks[i], ds[i], finalize = p.recordStepResult(ctx, m.Message)
		if finalize {
			consumed[tasks[i]] = append(consumed[tasks[i]], m.MsgID)
		} else {
			tasks[i] = uuid.Nil
		}
	}
	finalized := make(map[uuid.UUID]disposition, len(consumed))
	for task, ids := range consumed {
		d := p.finalizeAndEnqueue(ctx, task, ports.ConsumedMessages{Queue: queue, MsgIDs: ids})
		if d == dispDelete {
			d = dispDeleted
		}
		finalized[task] = d
	}
	for i, m := range msgs {
		if tasks[i] != uuid.Nil {
			ds[i] = finalized[tasks[i]]
		}
		p.settle(ctx, queue, m, ds[i])
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

// Run consumes the three orchestration queues until ctx ends. Wake-ups from
// notifier (may be nil) are routed by queue name; names of other queues are
// ignored (D-h: the global channel carries every queue's notifications).
func (p *Processor) Run(ctx context.Context, notifier ports.QueueNotifier) error {
	handlers := map[string]handler{
		domain.QueueStepResults:       p.handleStepResult,
		domain.QueueTaskRequests:      p.handleTaskRequest,
		domain.QueueTaskFinalizations: p.handleFinalization,
	}
	wakes := make(map[string]chan struct{}, len(handlers))
	for q := range handlers {
		wakes[q] = make(chan struct{}, 1)
	}
	var wg sync.WaitGroup
	if notifier != nil {
		events, err := notifier.Wakeups(ctx)
		if err != nil {
			p.log.Warn("listen for queue notifications; polling only", zap.Error(err))
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for q := range events {
					for name, w := range wakes {
						if q != name && q != "" { // "" = reconnected: wake every consumer
							continue
						}
						select {
						case w <- struct{}{}:
						default: // a wake-up is already pending
						}
					}
				}
			}()
		}
	}
	for q, h := range handlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.consumeLoop(ctx, q, wakes[q], h)
		}()
	}
	wg.Wait()
	return nil
}
