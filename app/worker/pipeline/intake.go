package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/consume"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Intake defaults (contract §4.7).
const (
	DefaultPollInterval       = 500 * time.Millisecond
	DefaultBatchSize          = 10
	DefaultMaxConcurrentSteps = 10
	// DefaultGatherWait bounds how long a read behind a backlog waits for
	// more free slots (see IntakeConfig.GatherWait).
	DefaultGatherWait = 5 * time.Millisecond
)

// Submitter hands a read message on; the command processor implements it.
// release must be called exactly once when the message is no longer held.
type Submitter interface {
	SubmitStep(ctx context.Context, queue string, msg ports.QueueMessage, release func()) error
}

// IntakeConfig tunes queue reading.
type IntakeConfig struct {
	// Queues are the served "<ns>_queue" names; notifications for any other
	// queue are ignored (D-h).
	Queues []string
	// PollInterval is pgmq.poll_interval_ms: the fallback read period, always
	// on, because notifications are only hints.
	PollInterval time.Duration
	// BatchSize is pgmq.batch_size, the cap on messages per pgmq.read. Each
	// read asks for min(free slots, BatchSize), where the free slots are
	// MaxConcurrentSteps minus the messages held, so intake takes exactly
	// what the handlers can start, never more (nothing read waits out its vt
	// unprocessed) and never 0 (a reader with no free slot waits for one
	// instead of reading). It stays a cap, rather than reading all free
	// slots at once, because it is the operator's per-read setting (contract
	// §4.7, shared with the orchestration) and bounds one read's rows and
	// latency; a read that fills its cap is followed at once by the next, so
	// a large max_concurrent_steps still fills within a few reads.
	BatchSize int
	// VisibilityTimeoutSeconds is the vt passed to pgmq.read.
	VisibilityTimeoutSeconds int
	// MaxConcurrentSteps is worker.max_concurrent_steps: messages held
	// (being decided, claimed or run by their handler) at once; a message
	// whose handler has finished no longer holds a slot while its outcome
	// is persisted. At the limit intake stops reading (back-pressure), so
	// nothing read is ever dropped.
	MaxConcurrentSteps int
	// GatherWait applies while the queue has a backlog (the last read came
	// back full): the next read waits up to this long for half of its
	// possible qty (min(BatchSize, MaxConcurrentSteps)/2) of free slots
	// instead of reading as soon as one slot frees. Slots free one by one as
	// outcomes commit, so reading at once turns a deep queue into reads,
	// claims and outcome transactions of one or two steps, each paying its
	// round trips and commit; gathered, they share them. A quiet queue is
	// read as soon as a slot is free.
	GatherWait time.Duration
}

// Intake reads the served queues on notification and on every poll tick
// and submits each message, holding one slot per message.
type Intake struct {
	cfg      IntakeConfig
	queue    ports.Queue
	submit   Submitter
	notifier ports.MessageNotifier
	clock    ports.Clock
	log      *zap.Logger
	tick     func(string)
	slots    chan struct{}
	router   *consume.Router
}

// NewIntake builds an intake; notifier may be nil (polling only).
func NewIntake(cfg IntakeConfig, q ports.Queue, s Submitter, n ports.MessageNotifier, clock ports.Clock, log *zap.Logger, tick func(string)) (*Intake, error) {
	if len(cfg.Queues) == 0 {
		return nil, errors.New("intake: no queues to serve")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.VisibilityTimeoutSeconds <= 0 {
		cfg.VisibilityTimeoutSeconds = DefaultVisibilityTimeoutSeconds
	}
	if cfg.MaxConcurrentSteps <= 0 {
		cfg.MaxConcurrentSteps = DefaultMaxConcurrentSteps
	}
	if cfg.GatherWait < 0 {
		cfg.GatherWait = 0
	} else if cfg.GatherWait == 0 {
		cfg.GatherWait = DefaultGatherWait
	}
	if clock == nil {
		clock = ports.SystemClock{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	if tick == nil {
		tick = func(string) {}
	}
	return &Intake{cfg: cfg, queue: q, submit: s, notifier: n, clock: clock, log: log, tick: tick,
		slots: make(chan struct{}, cfg.MaxConcurrentSteps), router: consume.NewRouter(cfg.Queues)}, nil
}

// Held is the number of messages currently held (slots in use).
func (in *Intake) Held() int { return len(in.slots) }

// Run reads until ctx ends; it returns after every reader has stopped.
// Messages already submitted keep their slots until released.
func (in *Intake) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range in.cfg.Queues {
		wg.Go(func() { in.readLoop(q).Run(ctx) })
	}
	if in.notifier != nil {
		wg.Go(func() { in.router.Route(ctx, in.notifier, in.log, in.tick) })
	}
	wg.Wait()
}

// readLoop is the consumer loop of queue q. Behind a backlog (the last
// read came back full) the next read gathers up to half a batch of free
// slots (IntakeConfig.GatherWait).
func (in *Intake) readLoop(q string) consume.Loop {
	gather := 1
	return consume.Loop{Name: domain.IntakeLoop(q), Wake: in.router.Wakeups(q), PollInterval: in.cfg.PollInterval,
		Clock: in.clock, Tick: in.tick,
		Step: func(ctx context.Context) bool {
			full := in.readOnce(ctx, q, gather)
			gather = 1
			if full {
				gather = max(1, min(in.cfg.BatchSize, in.cfg.MaxConcurrentSteps)/2)
			}
			return full
		}}
}

// readOnce waits for at least one free slot (and, with gather > 1, up to
// GatherWait for gather of them), reads up to min(batch, free) messages and
// submits them. It reports whether it got all it asked for, in which case
// more may be waiting.
func (in *Intake) readOnce(ctx context.Context, q string, gather int) bool {
	select {
	case in.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	n := 1
	for n < in.cfg.BatchSize {
		select {
		case in.slots <- struct{}{}:
			n++
			continue
		default:
		}
		break
	}
	if n < gather {
		deadline := in.clock.After(in.cfg.GatherWait)
	gathering:
		for n < gather {
			select {
			case in.slots <- struct{}{}:
				n++
			case <-deadline:
				break gathering
			case <-ctx.Done():
				break gathering
			}
		}
	}
	msgs, err := in.queue.Read(ctx, q, in.cfg.VisibilityTimeoutSeconds, n)
	if err != nil {
		in.releaseN(n)
		if ctx.Err() == nil {
			in.log.Warn("read queue failed", zap.String("queue", q), zap.Error(err))
		}
		return false
	}
	in.releaseN(n - len(msgs))
	for _, m := range msgs {
		release := once(func() { <-in.slots })
		if err := in.submit.SubmitStep(ctx, q, m, release); err != nil {
			// Not processed: the message reappears after its vt.
			release()
			if ctx.Err() == nil {
				in.log.Warn("submit step message failed", zap.String("queue", q), zap.Int64("msg_id", m.MsgID), zap.Error(err))
			}
		}
	}
	return len(msgs) == n
}

func (in *Intake) releaseN(n int) {
	for i := 0; i < n; i++ {
		<-in.slots
	}
}
