// Package pipeline is the worker's step pipeline (contract §9.3): it
// decides what to do with each step message by the step's current state,
// claims steps atomically, hands claimed steps to the dispatcher over the
// event bus, keeps their messages invisible while handlers run (vt
// heartbeat) and persists outcomes. Intake (reading the queues) lives here
// too.
//
// The message of a claimed step is deleted only in the outcome transaction,
// together with the completion message (D-g): if the worker dies between
// claim and outcome, the message reappears and a later reader fails the
// abandoned step as worker_lost instead of stranding it in in_progress.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/app/worker/outcome"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults of the pipeline's tunables (contract §4.7, config sections
// pgmq, worker and event_integration).
const (
	DefaultVisibilityTimeoutSeconds = 30
	DefaultStepClaimTimeout         = 300 * time.Second
	DefaultCorrelationTimeout       = 300 * time.Second
	// DefaultPersistRetryFor bounds how long a failing outcome commit is
	// retried; past it the message is left to reappear after its vt and the
	// step is eventually failed as worker_lost by whoever reads it.
	DefaultPersistRetryFor = 60 * time.Second
	// DefaultMaxMessageBytes bounds a step message. A valid one is about
	// 100 bytes ({task_uuid, step_uuid}); 64 KiB leaves room for extra keys
	// a writer may add (contract §4.3) while a 20 MB message is archived as
	// poison instead of being decoded and logged (issue 13).
	DefaultMaxMessageBytes = 64 << 10
	// maxRedecide caps claim-lost → reload → re-decide rounds for one message.
	maxRedecide = 3
)

// Decision is what the pipeline did with a message (one row of the §9.3
// table). It is returned for tests and counted in the status snapshot.
type Decision string

// Decisions, one per row of the §9.3 decision table.
const (
	DecisionArchivedPoison     Decision = "archived_poison"
	DecisionArchivedRedelivery Decision = "archived_max_receive_count"
	DecisionArchivedMismatch   Decision = "archived_mismatch"
	DecisionClaimed            Decision = "claimed"
	DecisionDeletedUnsatisfied Decision = "deleted_dependencies_unsatisfied"
	DecisionExtendedOwn        Decision = "vt_extended_own"
	DecisionExtendedClaimed    Decision = "vt_extended_claimed"
	DecisionFailedWorkerLost   Decision = "failed_worker_lost"
	DecisionDeletedStale       Decision = "deleted_stale"
	DecisionNone               Decision = "none"
)

// Config tunes the pipeline.
type Config struct {
	// WorkerID identifies this worker in claims and results ("worker-<uuid v7>").
	WorkerID string
	// Hostname is written to results as metadata.worker_hostname.
	Hostname string
	// Environment selects template overrides when building the handler payload (D-q).
	Environment string
	// VisibilityTimeoutSeconds is pgmq.visibility_timeout_seconds: how long a
	// read or heartbeat hides a message. Heartbeats fire every third of it.
	VisibilityTimeoutSeconds int
	// StepClaimTimeout is worker.step_claim_timeout_seconds: an in_progress
	// step whose last claim is older than max(this, timeout_seconds+60s) is
	// treated as abandoned by a lost worker.
	StepClaimTimeout time.Duration
	// CorrelationTimeout is event_integration.correlation_timeout_seconds: a
	// published execution without a completion by then is failed as timeout.
	CorrelationTimeout time.Duration
	// PersistRetryFor bounds retries of a failing outcome commit.
	PersistRetryFor time.Duration
	// MaxReceiveCount is pgmq.max_receive_count: a message read more often
	// than this is archived as poison instead of being processed again, so
	// one that keeps failing (e.g. on data the worker cannot load) cannot
	// cycle forever. 0 disables. Config validation keeps it above the
	// redeliveries an abandoned step needs to reach its claim timeout.
	MaxReceiveCount int
	// MaxMessageBytes is worker.limits.max_message_bytes: a larger step
	// message is poison and archived unread. 0 selects DefaultMaxMessageBytes.
	MaxMessageBytes int
}

func (c *Config) applyDefaults() {
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.VisibilityTimeoutSeconds <= 0 {
		c.VisibilityTimeoutSeconds = DefaultVisibilityTimeoutSeconds
	}
	if c.StepClaimTimeout <= 0 {
		c.StepClaimTimeout = DefaultStepClaimTimeout
	}
	if c.CorrelationTimeout <= 0 {
		c.CorrelationTimeout = DefaultCorrelationTimeout
	}
	if c.PersistRetryFor <= 0 {
		c.PersistRetryFor = DefaultPersistRetryFor
	}
}

// Deps are the pipeline's collaborators.
type Deps struct {
	// Steps loads, claims and persists steps.
	Steps ports.StepStore
	// Queue archives, deletes and extends messages.
	Queue ports.Queue
	// Bus receives execution events for the dispatcher.
	Bus ports.EventBus
	// Clock drives heartbeats and retry waits; nil means the system clock.
	Clock ports.Clock
	// Logger receives decisions worth an operator's attention; nil discards.
	Logger *zap.Logger
	// Heartbeat tells a stopped holder from a live one, so a step whose
	// holder stopped extending its message is rescued within about one
	// visibility timeout instead of the claim timeout. Nil: Queue's, when it
	// implements ports.HeartbeatProbe; else rescue waits for the claim timeout.
	Heartbeat ports.HeartbeatProbe
}

// Pipeline decides, claims, tracks and persists steps. It is safe for
// concurrent use by the command processor's workers.
type Pipeline struct {
	cfg     Config
	steps   ports.StepStore
	queue   ports.Queue
	bus     ports.EventBus
	clock   ports.Clock
	log     *zap.Logger
	results outcome.Builder
	// heartbeat may be nil (rescue only after the claim timeout).
	holders ports.HeartbeatProbe
	stats   *stats
	tmpl    templateCache

	mu      sync.Mutex
	byStep  map[uuid.UUID]*inflight
	byEvent map[uuid.UUID]*inflight
	hbWG    sync.WaitGroup
}

// New builds a pipeline; Steps, Queue and Bus are required.
func New(cfg Config, d Deps) (*Pipeline, error) {
	if d.Steps == nil || d.Queue == nil || d.Bus == nil {
		return nil, errors.New("pipeline: Steps, Queue and Bus are required")
	}
	if cfg.WorkerID == "" {
		return nil, errors.New("pipeline: WorkerID is required")
	}
	cfg.applyDefaults()
	if d.Clock == nil {
		d.Clock = ports.SystemClock{}
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Heartbeat == nil {
		d.Heartbeat, _ = d.Queue.(ports.HeartbeatProbe)
	}
	return &Pipeline{
		holders: d.Heartbeat,
		cfg:     cfg,
		steps:   d.Steps,
		queue:   d.Queue,
		bus:     d.Bus,
		clock:   d.Clock,
		log:     d.Logger,
		results: outcome.Builder{WorkerID: cfg.WorkerID, Hostname: cfg.Hostname},
		stats:   newStats(d.Clock),
		tmpl:    templateCache{entries: map[string]domain.TaskTemplate{}},
		byStep:  map[uuid.UUID]*inflight{},
		byEvent: map[uuid.UUID]*inflight{},
	}, nil
}

// Results is the builder the pipeline stamps results with; the dispatcher
// uses the same one.
func (p *Pipeline) Results() outcome.Builder { return p.results }

// stepMessage mirrors §4.3 with optional fields so missing ones are detected.
type stepMessage struct {
	TaskUUID *string `json:"task_uuid"`
	StepUUID *string `json:"step_uuid"`
}

// ParseStepMessage decodes a §4.3 step message of at most maxBytes bytes.
// Any error makes the message poison (archived, never retried).
func ParseStepMessage(raw json.RawMessage, maxBytes int) (domain.SimpleStepMessage, error) {
	if maxBytes > 0 && len(raw) > maxBytes {
		return domain.SimpleStepMessage{}, fmt.Errorf("message of %d bytes exceeds worker.limits.max_message_bytes (%d)", len(raw), maxBytes)
	}
	var m stepMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return domain.SimpleStepMessage{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if m.TaskUUID == nil || m.StepUUID == nil {
		return domain.SimpleStepMessage{}, errors.New("task_uuid and step_uuid are required")
	}
	t, err := uuid.Parse(*m.TaskUUID)
	if err != nil {
		return domain.SimpleStepMessage{}, fmt.Errorf("task_uuid: %w", err)
	}
	s, err := uuid.Parse(*m.StepUUID)
	if err != nil {
		return domain.SimpleStepMessage{}, fmt.Errorf("step_uuid: %w", err)
	}
	return domain.SimpleStepMessage{TaskUUID: t, StepUUID: s}, nil
}

// QueueNamespace is the namespace a worker queue serves ("<ns>_queue" → ns).
func QueueNamespace(queue string) string { return strings.TrimSuffix(queue, "_queue") }

// Process applies the §9.3 decision table to one message read from queue.
// release is called exactly once when the pipeline no longer holds the
// message: at once unless the step was claimed, else after its outcome is
// persisted. Errors are infrastructure failures; the message is then left
// alone and reappears after its visibility timeout.
func (p *Pipeline) Process(ctx context.Context, queue string, msg ports.QueueMessage, release func()) (d Decision, err error) {
	release = once(release)
	if lifecycle.TracingEnabled() {
		var span trace.Span
		ctx, span = lifecycle.Tracer(lifecycle.WorkerTracer).Start(lifecycle.FromHeaders(ctx, msg.Headers), "step.claim",
			trace.WithAttributes(attribute.String("tasker.queue", queue), attribute.Int64("tasker.msg_id", msg.MsgID)))
		defer func() { span.End() }()
		defer func() { span.SetAttributes(attribute.String("tasker.decision", string(d))) }()
	}
	d, err = p.process(ctx, queue, msg, release)
	if d != DecisionClaimed {
		release()
	}
	p.stats.decision(d)
	return d, err
}

func (p *Pipeline) process(ctx context.Context, queue string, msg ports.QueueMessage, release func()) (Decision, error) {
	if p.cfg.MaxReceiveCount > 0 && msg.ReadCt > p.cfg.MaxReceiveCount {
		fields := []zap.Field{zap.String("queue", queue), zap.Int64("msg_id", msg.MsgID), zap.Int("read_ct", msg.ReadCt),
			zap.Int("max_receive_count", p.cfg.MaxReceiveCount), zap.ByteString("message", truncate(msg.Message, 512)), lifecycle.TraceID(ctx)}
		if sm, err := ParseStepMessage(msg.Message, p.cfg.MaxMessageBytes); err == nil {
			fields = append(fields, zap.Stringer(lifecycle.FieldTaskUUID, sm.TaskUUID), zap.Stringer(lifecycle.FieldStepUUID, sm.StepUUID))
		}
		p.log.Error(lifecycle.StepDeadLettered, fields...)
		if _, err := p.queue.Archive(ctx, queue, msg.MsgID); err != nil {
			return DecisionNone, fmt.Errorf("archive message %d on %s: %w", msg.MsgID, queue, err)
		}
		return DecisionArchivedRedelivery, nil
	}
	sm, err := ParseStepMessage(msg.Message, p.cfg.MaxMessageBytes)
	if err != nil {
		p.log.Warn("archiving poison step message", zap.String("queue", queue), zap.Int64("msg_id", msg.MsgID), zap.Error(err))
		if _, aerr := p.queue.Archive(ctx, queue, msg.MsgID); aerr != nil {
			return DecisionNone, fmt.Errorf("archive poison message %d on %s: %w", msg.MsgID, queue, aerr)
		}
		return DecisionArchivedPoison, nil
	}
	snap, claimed, err := p.loadOrClaim(ctx, queue, sm)
	if claimed {
		if err := p.start(ctx, queue, msg, snap, release); err != nil {
			return DecisionClaimed, err
		}
		return DecisionClaimed, nil
	}
	for round := 0; ; round++ {
		if err != nil {
			if errors.Is(err, ports.ErrNotFound) {
				return p.archiveMismatch(ctx, queue, msg, sm, "step or task not found")
			}
			return DecisionNone, fmt.Errorf("load step %s: %w", sm.StepUUID, err)
		}
		if snap.Step.TaskUUID != sm.TaskUUID {
			return p.archiveMismatch(ctx, queue, msg, sm, fmt.Sprintf("step belongs to task %s", snap.Step.TaskUUID))
		}
		if ns := QueueNamespace(queue); snap.Task.NamespaceName != ns {
			return p.archiveMismatch(ctx, queue, msg, sm, fmt.Sprintf("task namespace %q is not queue namespace %q", snap.Task.NamespaceName, ns))
		}
		d, cerr := p.decide(ctx, queue, msg, snap, release)
		if cerr == nil || round >= maxRedecide {
			return d, cerr
		}
		var nc *domain.NotClaimableError
		if !errors.As(cerr, &nc) {
			return d, cerr
		}
		// Lost the claim race: re-decide with the state the winner left (D-b).
		snap, err = p.steps.LoadStep(ctx, sm.StepUUID)
	}
}

// loadOrClaim reads the step for the decision table and, when the message's
// task and namespace match and the state is claimable, claims it in the same
// store operation (ports.StepStore.LoadAndClaim): the common message costs
// one claim, with no separate LoadStep.
func (p *Pipeline) loadOrClaim(ctx context.Context, queue string, sm domain.SimpleStepMessage) (ports.StepSnapshot, bool, error) {
	return p.steps.LoadAndClaim(ctx, sm.StepUUID, sm.TaskUUID, QueueNamespace(queue), p.cfg.WorkerID)
}

func (p *Pipeline) archiveMismatch(ctx context.Context, queue string, msg ports.QueueMessage, sm domain.SimpleStepMessage, why string) (Decision, error) {
	p.log.Error("archiving step message that does not match the database",
		zap.String("queue", queue), zap.Int64("msg_id", msg.MsgID),
		zap.Stringer("task_uuid", sm.TaskUUID), zap.Stringer("step_uuid", sm.StepUUID), zap.String("reason", why))
	if _, err := p.queue.Archive(ctx, queue, msg.MsgID); err != nil {
		return DecisionNone, fmt.Errorf("archive message %d on %s: %w", msg.MsgID, queue, err)
	}
	return DecisionArchivedMismatch, nil
}

// decide is one pass over the state table. A *domain.NotClaimableError
// means "claim lost, reload and decide again".
func (p *Pipeline) decide(ctx context.Context, queue string, msg ports.QueueMessage, snap ports.StepSnapshot, release func()) (Decision, error) {
	stepID := snap.Step.WorkflowStepUUID
	switch {
	case snap.State == domain.StepEnqueued || (snap.State == domain.StepPending && snap.DependenciesSatisfied):
		claimed, err := p.steps.ClaimStep(ctx, stepID, p.cfg.WorkerID)
		if err != nil {
			var nc *domain.NotClaimableError
			if errors.As(err, &nc) {
				return DecisionNone, err
			}
			return DecisionNone, fmt.Errorf("claim step %s: %w", stepID, err)
		}
		if err := p.start(ctx, queue, msg, claimed, release); err != nil {
			return DecisionClaimed, err
		}
		return DecisionClaimed, nil
	case snap.State == domain.StepPending:
		return p.delete(ctx, queue, msg, DecisionDeletedUnsatisfied)
	case snap.State == domain.StepInProgress:
		return p.decideInProgress(ctx, queue, msg, snap)
	default: // error, complete, cancelled, resolved_manually
		return p.delete(ctx, queue, msg, DecisionDeletedStale)
	}
}

func (p *Pipeline) delete(ctx context.Context, queue string, msg ports.QueueMessage, d Decision) (Decision, error) {
	if _, err := p.queue.Delete(ctx, queue, msg.MsgID); err != nil {
		return DecisionNone, fmt.Errorf("delete message %d on %s: %w", msg.MsgID, queue, err)
	}
	return d, nil
}

func (p *Pipeline) decideInProgress(ctx context.Context, queue string, msg ports.QueueMessage, snap ports.StepSnapshot) (Decision, error) {
	stepID := snap.Step.WorkflowStepUUID
	if p.runsStep(stepID) {
		if _, err := p.queue.SetVT(ctx, queue, msg.MsgID, p.cfg.VisibilityTimeoutSeconds); err != nil {
			return DecisionNone, fmt.Errorf("extend vt of message %d on %s: %w", msg.MsgID, queue, err)
		}
		return DecisionExtendedOwn, nil
	}
	timeout := p.claimTimeout(snap)
	now := p.clock.Now()
	lost, err := p.holderStopped(ctx, queue, msg, stepID)
	if err != nil {
		return DecisionNone, err
	}
	reason := fmt.Sprintf("step in_progress for longer than the claim timeout (%s) since its last attempt; worker presumed lost", timeout)
	if lost {
		reason = fmt.Sprintf("the step's message became visible again (read %d times): its worker stopped extending the visibility timeout (every %ds/3), so it is gone",
			msg.ReadCt, p.cfg.VisibilityTimeoutSeconds)
	} else if snap.LastAttemptedAt != nil {
		if remaining := snap.LastAttemptedAt.Add(timeout).Sub(now); remaining > 0 {
			secs := int((remaining + time.Second - 1) / time.Second)
			if _, err := p.queue.SetVT(ctx, queue, msg.MsgID, secs); err != nil {
				return DecisionNone, fmt.Errorf("extend vt of message %d on %s: %w", msg.MsgID, queue, err)
			}
			return DecisionExtendedClaimed, nil
		}
	}
	res := p.results.WorkerFailure(stepID, time.Time{}, now, domain.ErrorTypeWorkerLost, reason)
	o := ports.StepOutcome{TaskUUID: snap.Step.TaskUUID, StepUUID: stepID, Result: res, Queue: queue, MsgID: msg.MsgID, WorkerID: p.cfg.WorkerID}
	applied, err := p.steps.PersistOutcome(ctx, o)
	if err != nil {
		return DecisionNone, fmt.Errorf("fail abandoned step %s as worker_lost: %w", stepID, err)
	}
	if applied {
		p.log.Warn(lifecycle.StepRescued, append(lifecycle.Step(ctx, snap.Step.TaskUUID, stepID, snap.Task.NamespaceName,
			snap.Step.Name, snap.Step.Attempts), zap.String("error_type", domain.ErrorTypeWorkerLost),
			zap.Duration("claim_timeout", timeout), zap.Bool("heartbeat_expired", lost))...)
		p.stats.finished(snap.Task.NamespaceName, "", snap.Step.Name, res)
	}
	return DecisionFailedWorkerLost, nil
}

// holderStopped reports whether msg, a message of an in_progress step this
// worker does not run, proves the step's holder gone: it was delivered
// before (read_ct > 1, so it is the message the holder claimed through or a
// redelivery of it) and is visible again, so nobody extended it for a whole
// visibility timeout, and no other message for the step is invisible (which
// would mean a live holder of a duplicate). A live slow handler keeps its
// message invisible, so its step is never read here at all.
func (p *Pipeline) holderStopped(ctx context.Context, queue string, msg ports.QueueMessage, stepID uuid.UUID) (bool, error) {
	if p.holders == nil || msg.ReadCt <= 1 {
		return false, nil
	}
	other, err := p.holders.OtherHolder(ctx, queue, msg.MsgID, stepID.String())
	if err != nil {
		return false, fmt.Errorf("probe holders of step %s: %w", stepID, err)
	}
	return !other, nil
}

// claimTimeout is max(step_claim_timeout_seconds, timeout_seconds + 60)
// (§9.3): a step allowed to run long must not be declared lost early.
func (p *Pipeline) claimTimeout(snap ports.StepSnapshot) time.Duration {
	timeout := p.cfg.StepClaimTimeout
	if def, ok := p.definition(snap); ok && def.TimeoutSeconds != nil {
		if t := time.Duration(*def.TimeoutSeconds)*time.Second + 60*time.Second; t > timeout {
			timeout = t
		}
	}
	return timeout
}

// runsStep reports whether this worker has the step in flight.
func (p *Pipeline) runsStep(stepID uuid.UUID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.byStep[stepID]
	return ok
}

// InFlight counts claimed steps whose outcome is not persisted yet.
func (p *Pipeline) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byStep)
}

func once(f func()) func() {
	if f == nil {
		return func() {}
	}
	var o sync.Once
	return func() { o.Do(f) }
}

// truncate keeps a logged message short: a huge one must not become a huge
// log line.
func truncate(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[:n]
}
