// Package engine wires the worker's application pieces into one service:
// intake reads the served queues and submits ExecuteStep commands; the
// command processor runs the §9.3 pipeline (decide, claim, publish); the
// dispatcher runs Go handlers from the event bus, whose completion events
// the command processor persists as ProcessCompletion; a sweeper
// fails executions whose completion never arrives. Run owns every
// goroutine and performs the graceful shutdown of contract §9.3 step 6.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/worker/command"
	"github.com/tasker-systems/tasker-go/app/worker/dispatch"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults of the worker service (contract §4.7 and the config sections
// pgmq, worker, command_processing, event_integration).
const (
	DefaultVisibilityTimeoutSeconds = pipeline.DefaultVisibilityTimeoutSeconds
	DefaultPollInterval             = pipeline.DefaultPollInterval
	DefaultBatchSize                = pipeline.DefaultBatchSize
	DefaultMaxConcurrentSteps       = pipeline.DefaultMaxConcurrentSteps
	DefaultStepClaimTimeout         = pipeline.DefaultStepClaimTimeout
	DefaultCorrelationTimeout       = pipeline.DefaultCorrelationTimeout
	DefaultShutdownTimeout          = 30 * time.Second
	DefaultCommandBufferSize        = command.DefaultBufferSize
	DefaultMaxConcurrentCommands    = command.DefaultMaxConcurrent
	DefaultCommandTimeout           = command.DefaultTimeout
)

// Lifecycle values of Status.Lifecycle (the worker API's status field).
const (
	LifecycleStarting = "starting"
	LifecycleActive   = "active"
	LifecycleStopping = "stopping"
)

// Config is the worker service's configuration.
type Config struct {
	// WorkerID identifies this worker in claims and results ("worker-<uuid v7>").
	WorkerID string
	// Hostname is written to results as metadata.worker_hostname.
	Hostname string
	// Environment selects template overrides for handler payloads (D-q).
	Environment string
	// Queues are the served "<ns>_queue" names (from the template registry).
	Queues []string
	// VisibilityTimeoutSeconds is pgmq.visibility_timeout_seconds; the vt
	// heartbeat runs every third of it.
	VisibilityTimeoutSeconds int
	// PollInterval is pgmq.poll_interval_ms, the always-on polling fallback.
	PollInterval time.Duration
	// BatchSize is pgmq.batch_size, the cap on messages per read: intake
	// reads min(free handler slots, BatchSize) (see pipeline.IntakeConfig).
	BatchSize int
	// MaxConcurrentSteps is worker.max_concurrent_steps: messages held and
	// handlers running at once; intake stops reading at the limit.
	MaxConcurrentSteps int
	// StepClaimTimeout is worker.step_claim_timeout_seconds (abandonment).
	StepClaimTimeout time.Duration
	// CorrelationTimeout is event_integration.correlation_timeout_seconds.
	CorrelationTimeout time.Duration
	// MaxReceiveCount is pgmq.max_receive_count (0 disables): messages read
	// more often are archived as poison.
	MaxReceiveCount int
	// MaxMessageBytes is worker.limits.max_message_bytes: larger step
	// messages are poison (0 = pipeline.DefaultMaxMessageBytes).
	MaxMessageBytes int
	// ShutdownTimeout is pgmq.shutdown_timeout_seconds: how long in-flight
	// handlers may finish after a stop signal before they are cancelled and
	// persisted as worker_shutdown failures.
	ShutdownTimeout time.Duration
	// CommandBufferSize is command_processing.command_buffer_size. It is
	// raised to 2×MaxConcurrentSteps+16 if smaller, because every held
	// message may need an ExecuteStep and a ProcessCompletion slot at once.
	CommandBufferSize int
	// MaxConcurrentCommands is command_processing.max_concurrent_commands.
	MaxConcurrentCommands int
	// CommandTimeout is command_processing.command_timeout_ms.
	CommandTimeout time.Duration
}

func (c *Config) applyDefaults() {
	if c.VisibilityTimeoutSeconds <= 0 {
		c.VisibilityTimeoutSeconds = DefaultVisibilityTimeoutSeconds
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxConcurrentSteps <= 0 {
		c.MaxConcurrentSteps = DefaultMaxConcurrentSteps
	}
	if c.StepClaimTimeout <= 0 {
		c.StepClaimTimeout = DefaultStepClaimTimeout
	}
	if c.CorrelationTimeout <= 0 {
		c.CorrelationTimeout = DefaultCorrelationTimeout
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.CommandBufferSize <= 0 {
		c.CommandBufferSize = DefaultCommandBufferSize
	}
	if min := 2*c.MaxConcurrentSteps + 16; c.CommandBufferSize < min {
		c.CommandBufferSize = min
	}
	if c.MaxConcurrentCommands <= 0 {
		c.MaxConcurrentCommands = DefaultMaxConcurrentCommands
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
}

// Deps are the worker's ports.
type Deps struct {
	// Steps loads, claims and persists steps (adapters/postgres).
	Steps ports.StepStore
	// Queue reads and extends step messages (adapters/pgmq).
	Queue ports.Queue
	// Bus carries execution and completion events (adapters/eventbus).
	Bus ports.EventBus
	// Notifier delivers message-ready wake-ups; nil means polling only.
	Notifier ports.MessageNotifier
	// Handlers maps callables to Go handlers (*handler.Registry).
	Handlers dispatch.Handlers
	// Clock schedules polls, heartbeats and retries; nil means the system clock.
	Clock ports.Clock
	// Logger receives the worker's logs; nil discards them. Handlers get it
	// too, with their step's ids (StepContext.Logger).
	Logger *zap.Logger
	// Tasks lets handlers create tasks (StepContext.CreateTask), normally
	// the orchestration API client; nil means they cannot.
	Tasks handler.TaskCreator
}

// Worker is the running worker service.
type Worker struct {
	cfg    Config
	log    *zap.Logger
	p      *pipeline.Pipeline
	intake *pipeline.Intake
	cmds   *command.Processor
	disp   *dispatch.Dispatcher

	started, intakeUp, dispatcherUp, stopping atomic.Bool
	failedAtShutdown                          atomic.Int64
}

// New wires the pieces; nothing runs until Run.
func New(cfg Config, d Deps) (*Worker, error) {
	if len(cfg.Queues) == 0 {
		return nil, errors.New("worker: no queues to serve")
	}
	if d.Handlers == nil {
		return nil, errors.New("worker: handlers are required")
	}
	cfg.applyDefaults()
	if d.Clock == nil {
		d.Clock = ports.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	p, err := pipeline.New(pipeline.Config{
		WorkerID: cfg.WorkerID, Hostname: cfg.Hostname, Environment: cfg.Environment,
		VisibilityTimeoutSeconds: cfg.VisibilityTimeoutSeconds, StepClaimTimeout: cfg.StepClaimTimeout,
		CorrelationTimeout: cfg.CorrelationTimeout, MaxReceiveCount: cfg.MaxReceiveCount,
		MaxMessageBytes: cfg.MaxMessageBytes,
	}, pipeline.Deps{Steps: d.Steps, Queue: d.Queue, Bus: d.Bus, Clock: d.Clock, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	cmds, err := command.New(command.Config{BufferSize: cfg.CommandBufferSize, MaxConcurrent: cfg.MaxConcurrentCommands,
		Timeout: cfg.CommandTimeout, Completions: d.Bus.Completions()}, p, d.Logger)
	if err != nil {
		return nil, err
	}
	in, err := pipeline.NewIntake(pipeline.IntakeConfig{Queues: cfg.Queues, PollInterval: cfg.PollInterval, BatchSize: cfg.BatchSize,
		VisibilityTimeoutSeconds: cfg.VisibilityTimeoutSeconds, MaxConcurrentSteps: cfg.MaxConcurrentSteps},
		d.Queue, cmds, d.Notifier, d.Clock, d.Logger, p.Tick)
	if err != nil {
		return nil, err
	}
	disp, err := dispatch.New(dispatch.Config{MaxConcurrent: cfg.MaxConcurrentSteps},
		dispatch.Deps{Bus: d.Bus, Handlers: d.Handlers, Results: p.Results(), Clock: d.Clock, Logger: d.Logger, Tick: p.Tick, Tasks: d.Tasks})
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, log: d.Logger, p: p, intake: in, cmds: cmds, disp: disp}, nil
}

// Run serves until ctx ends, then shuts down gracefully (§9.3 step 6):
// stop intake and refuse new steps; wait up to ShutdownTimeout for
// in-flight steps to finish and be persisted; persist the rest as
// retryable worker_shutdown failures; cancel their handlers; stop. It
// returns nil after a clean shutdown.
func (w *Worker) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("worker: Run called twice")
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	dispCtx, stopDisp := context.WithCancel(runCtx)
	defer stopRun()
	defer stopDisp()
	var core, disp, intake sync.WaitGroup
	goRun := func(wg *sync.WaitGroup, f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	goRun(&core, func() { w.cmds.Run(runCtx) })
	goRun(&core, func() { w.p.RunSweeper(runCtx) })
	w.dispatcherUp.Store(true)
	goRun(&disp, func() { defer w.dispatcherUp.Store(false); w.disp.Run(dispCtx) })
	w.intakeUp.Store(true)
	goRun(&intake, func() { defer w.intakeUp.Store(false); w.intake.Run(ctx) })
	w.log.Info("worker running", zap.Strings("queues", w.cfg.Queues),
		zap.Int("max_concurrent_steps", w.cfg.MaxConcurrentSteps))

	<-ctx.Done()
	w.stopping.Store(true)
	w.log.Info("worker stopping: intake stopped, waiting for in-flight steps",
		zap.Int("in_flight", w.p.InFlight()), zap.Duration("grace", w.cfg.ShutdownTimeout))
	shutdownDone := make(chan struct{})
	if err := w.cmds.Submit(runCtx, command.Shutdown{Done: shutdownDone}); err == nil {
		<-shutdownDone
	}
	intake.Wait()

	if !w.waitIdle(w.cfg.ShutdownTimeout) {
		n := w.p.FailInFlight(runCtx, domain.ErrorTypeWorkerShutdown,
			fmt.Sprintf("worker %s stopped before the handler finished (grace %s)", w.cfg.WorkerID, w.cfg.ShutdownTimeout))
		w.failedAtShutdown.Add(int64(n))
		w.log.Warn("persisted unfinished steps as worker_shutdown", zap.Int("steps", n))
	}
	stopDisp()
	disp.Wait()
	w.waitIdle(w.cfg.CommandTimeout) // completions already being persisted
	stopRun()
	core.Wait()
	w.p.WaitHeartbeats()
	w.log.Info("worker stopped", zap.Uint64("steps_processed", w.p.Status().Processed))
	return nil
}

// waitIdle waits until no step is in flight, at most d.
func (w *Worker) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for w.p.InFlight() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}

// Status snapshots the worker without going through the command channel,
// so a saturated processor cannot make health checks time out.
//
// The pipeline fills its counters into the worker status; the worker adds
// its lifecycle and the intake, dispatcher and command-queue gauges.
func (w *Worker) Status() domain.WorkerStatus {
	st := w.p.Status()
	st.Started = w.started.Load()
	st.ShuttingDown = w.stopping.Load()
	st.DispatcherRunning = w.dispatcherUp.Load()
	st.IntakeHeld = w.intake.Held()
	st.HandlersRunning = w.disp.Running()
	st.CommandQueueDepth = w.cmds.Depth()
	st.FailedAtShutdown = w.failedAtShutdown.Load()
	st.PipelineRunning = w.intakeUp.Load() && !st.ShuttingDown
	st.IntakeSaturated = st.IntakeHeld >= w.cfg.MaxConcurrentSteps
	switch {
	case st.ShuttingDown:
		st.Lifecycle = LifecycleStopping
	case st.Started:
		st.Lifecycle = LifecycleActive
	default:
		st.Lifecycle = LifecycleStarting
	}
	return st
}

// Config returns the effective configuration (defaults applied).
func (w *Worker) Config() Config { return w.cfg }
