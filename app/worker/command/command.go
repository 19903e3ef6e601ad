// Package command is the worker's control surface: a bounded channel of
// commands (ExecuteStep, ProcessCompletion, Shutdown) served by
// at most max_concurrent_commands workers, each command under
// command_timeout_ms. Handling a command never waits on a step handler:
// ExecuteStep decides and claims, then publishes an execution event and
// returns; the handler's outcome comes back later on the completion stream,
// which the same workers serve as ProcessCompletion, so a step message takes
// one path: intake → ExecuteStep → handler → ProcessCompletion.
package command

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults of command_processing (contract config section).
const (
	DefaultBufferSize    = 1000
	DefaultMaxConcurrent = 100
	DefaultTimeout       = 30 * time.Second
)

// ErrShuttingDown rejects new ExecuteStep commands after Shutdown.
var ErrShuttingDown = errors.New("command processor shutting down")

// ErrStopped is returned by Submit once Run has returned.
var ErrStopped = errors.New("command processor stopped")

// Executor is what commands act on; *pipeline.Pipeline satisfies it.
type Executor interface {
	Process(ctx context.Context, queue string, msg ports.QueueMessage, release func()) (pipeline.Decision, error)
	Complete(ctx context.Context, ev domain.StepCompletionEvent) error
}

// Command is one unit of work for the processor.
type Command interface{ commandName() string }

// ExecuteStep decides (and possibly claims and starts) one step message.
// Release frees the intake slot the message holds; the pipeline calls it.
type ExecuteStep struct {
	// Queue is the "<ns>_queue" the message was read from.
	Queue string
	// Message is the pgmq record as read.
	Message ports.QueueMessage
	// Release frees the message's intake slot.
	Release func()
}

// ProcessCompletion persists a handler outcome.
type ProcessCompletion struct {
	// Event is the dispatcher's completion, correlated by EventID.
	Event domain.StepCompletionEvent
}

// Shutdown stops accepting ExecuteStep; completions are still processed so
// in-flight steps can finish during the grace period. Done is closed when
// the flag is set.
type Shutdown struct {
	// Done, if not nil, is closed once draining has begun.
	Done chan<- struct{}
}

func (ExecuteStep) commandName() string       { return "execute_step" }
func (ProcessCompletion) commandName() string { return "process_completion" }
func (Shutdown) commandName() string          { return "shutdown" }

// Config is the command_processing section.
type Config struct {
	// BufferSize is command_buffer_size: commands queued before Submit
	// blocks (back-pressure on intake). Completions do not queue here: the
	// workers read them straight from Completions.
	BufferSize int
	// MaxConcurrent is max_concurrent_commands: commands handled at once.
	MaxConcurrent int
	// Timeout is command_timeout_ms: the context deadline of one command.
	Timeout time.Duration
	// Completions is the dispatcher's completion stream (the event bus's
	// Completions); each event is handled as a ProcessCompletion by the
	// same workers. nil: completions arrive only through Submit.
	Completions <-chan domain.StepCompletionEvent
}

// Processor runs commands.
type Processor struct {
	cfg      Config
	exec     Executor
	log      *zap.Logger
	cmds     chan Command
	draining atomic.Bool
	stopped  chan struct{}
	stopOnce sync.Once
	// closing is closed when Run's workers have exited, before the final
	// drain; it frees Submits blocked on a full buffer.
	closing chan struct{}
	// mu orders the final drain after every in-progress Submit: Submit sends
	// under the read lock and Run closes stopped under the write lock before
	// draining, so every accepted command is in the buffer when the drain
	// starts and none can land there afterwards and be left unreleased.
	mu      sync.RWMutex
	handled atomic.Uint64
	failed  atomic.Uint64
}

// New builds a processor over exec.
func New(cfg Config, exec Executor, log *zap.Logger) (*Processor, error) {
	if exec == nil {
		return nil, errors.New("command: executor is required")
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Processor{cfg: cfg, exec: exec, log: log, cmds: make(chan Command, cfg.BufferSize), stopped: make(chan struct{}),
		closing: make(chan struct{})}, nil
}

// Depth is the number of queued commands.
func (p *Processor) Depth() int { return len(p.cmds) }

// Handled counts commands handled; Failed those that returned an error.
func (p *Processor) Handled() (handled, failed uint64) { return p.handled.Load(), p.failed.Load() }

// ShuttingDown reports whether Shutdown was handled.
func (p *Processor) ShuttingDown() bool { return p.draining.Load() }

// Submit queues cmd, blocking while the buffer is full until ctx ends.
// After Shutdown, ExecuteStep is rejected with ErrShuttingDown.
func (p *Processor) Submit(ctx context.Context, cmd Command) error {
	if _, ok := cmd.(ExecuteStep); ok && p.draining.Load() {
		return ErrShuttingDown
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	select {
	case <-p.stopped:
		return ErrStopped
	case <-p.closing:
		return ErrStopped
	default:
	}
	select {
	case p.cmds <- cmd:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("submit %s: %w", cmd.commandName(), ctx.Err())
	case <-p.closing:
		return ErrStopped
	}
}

func (p *Processor) SubmitStep(ctx context.Context, queue string, msg ports.QueueMessage, release func()) error {
	return p.Submit(ctx, ExecuteStep{Queue: queue, Message: msg, Release: release})
}

// Run serves commands with MaxConcurrent workers until ctx ends, then
// releases the slots of ExecuteStep commands still queued (their messages
// reappear after vt) and returns. Command contexts derive from ctx.
func (p *Processor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < p.cfg.MaxConcurrent; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case cmd := <-p.cmds:
					p.handle(ctx, cmd)
				case ev := <-p.cfg.Completions:
					p.handle(ctx, ProcessCompletion{Event: ev})
				}
			}
		}()
	}
	wg.Wait()
	p.stopOnce.Do(func() {
		close(p.closing)
		p.mu.Lock()
		defer p.mu.Unlock()
		close(p.stopped)
	})
	for {
		select {
		case cmd := <-p.cmds:
			if es, ok := cmd.(ExecuteStep); ok && es.Release != nil {
				es.Release()
			}
		default:
			return
		}
	}
}

func (p *Processor) handle(parent context.Context, cmd Command) {
	ctx, cancel := context.WithTimeout(parent, p.cfg.Timeout)
	defer cancel()
	p.handled.Add(1)
	var err error
	switch c := cmd.(type) {
	case ExecuteStep:
		if p.draining.Load() {
			if c.Release != nil {
				c.Release()
			}
			return
		}
		var d pipeline.Decision
		d, err = p.exec.Process(ctx, c.Queue, c.Message, c.Release)
		if err != nil {
			err = fmt.Errorf("execute step message %d on %s (decision %s): %w", c.Message.MsgID, c.Queue, d, err)
		}
	case ProcessCompletion:
		// Persisting must survive shutdown: the outcome of a finished
		// handler is worth committing even while the worker stops.
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(parent), p.cfg.Timeout)
		err = p.exec.Complete(pctx, c.Event)
		pcancel()
	case Shutdown:
		p.draining.Store(true)
		if c.Done != nil {
			close(c.Done)
		}
	default:
		err = fmt.Errorf("unknown command %T", cmd)
	}
	if err != nil {
		p.failed.Add(1)
		p.log.Warn("command failed", zap.String("command", cmd.commandName()), zap.Error(err))
	}
}
