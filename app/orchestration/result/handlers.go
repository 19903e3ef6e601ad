package result

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Enqueuer enqueues one task's ready steps immediately (§10.2 step 3).
type Enqueuer interface {
	EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (int, error)
}

// Finalizer evaluates finalization (§10.4) and enqueues what became ready,
// in one transaction that also deletes the consumed messages.
type Finalizer interface {
	FinalizeAndEnqueue(ctx context.Context, taskUUID uuid.UUID, consumed ports.ConsumedMessages) (ports.FinalizationReport, error)
}

// TaskCreator creates a task from a request (the taskinit service).
type TaskCreator interface {
	CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error)
}

// Processor handles the orchestration's queues.
type Processor struct {
	cfg       Config
	queue     ports.Queue
	steps     ports.StepResultStore
	finalizer Finalizer
	enqueuer  Enqueuer
	creator   TaskCreator
	metrics   ports.OrchestrationMetrics
	log       *zap.Logger
	now       func() time.Time
}

// Deps are the Processor's collaborators. Metrics and Log may be nil.
type Deps struct {
	Queue     ports.Queue
	Steps     ports.StepResultStore
	Finalizer Finalizer
	Enqueuer  Enqueuer
	Creator   TaskCreator
	Metrics   ports.OrchestrationMetrics
	Log       *zap.Logger
	// Clock supplies "now" for HTTP-date retry-after headers; nil = system clock.
	Clock ports.Clock
}

// New returns a Processor.
func New(cfg Config, d Deps) *Processor {
	p := &Processor{cfg: cfg.withDefaults(), queue: d.Queue, steps: d.Steps, finalizer: d.Finalizer,
		enqueuer: d.Enqueuer, creator: d.Creator, metrics: d.Metrics, log: d.Log, now: time.Now}
	if p.metrics == nil {
		p.metrics = ports.NopOrchestrationMetrics{}
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if d.Clock != nil {
		p.now = d.Clock.Now
	}
	return p
}

// ProcessStepResult handles one completion message body (§10.3) and reports
// whether it was consumed (deleted or archived). Exposed for tests and for
// callers that read the queue themselves.
func (p *Processor) ProcessStepResult(ctx context.Context, body []byte) bool {
	return p.handleStepResult(ctx, body) != dispLeave
}

func (p *Processor) handleStepResult(ctx context.Context, body []byte) disposition {
	task, d, finalize := p.recordStepResult(ctx, body)
	if !finalize {
		return d
	}
	return p.finalizeAndEnqueue(ctx, task, ports.ConsumedMessages{})
}

// recordStepResult is §10.3 steps 1–3 for one message: parse it, load the
// step and record the backoff (or the handler's "not retryable"). finalize
// says the message now waits for finalization of task (step 4); otherwise d
// is its disposition. Splitting it from finalization lets a batch finalize
// each task once for all of its results.
func (p *Processor) recordStepResult(ctx context.Context, body []byte) (task uuid.UUID, d disposition, finalize bool) {
	var msg domain.SimpleStepMessage
	if err := json.Unmarshal(body, &msg); err != nil || msg.StepUUID == uuid.Nil {
		p.log.Error("unparseable step result message; archiving", zap.ByteString("message", body))
		return uuid.Nil, dispArchive, false
	}
	step, err := p.steps.LoadStepResult(ctx, msg.StepUUID)
	if errors.Is(err, ports.ErrNotFound) {
		p.log.Error("step result for unknown step; archiving", zap.Stringer("step_uuid", msg.StepUUID))
		return uuid.Nil, dispArchive, false
	}
	if err != nil {
		p.log.Warn("load step for result", zap.Stringer("step_uuid", msg.StepUUID), zap.Error(err))
		return uuid.Nil, dispLeave, false
	}
	res, parsed := domain.ParseStepExecutionResult(step.Results)
	if step.State == domain.StepError && step.Retryable && parsed && !res.Success && res.Error != nil && !res.Error.Retryable {
		// The handler said retrying cannot help (§9.2): the step is now
		// permanently failed, so finalization can fail the task (D-e).
		if _, err := p.steps.MarkNotRetryable(ctx, step.StepUUID); err != nil {
			p.log.Warn("mark step not retryable", zap.Stringer("step_uuid", step.StepUUID), zap.Error(err))
			return uuid.Nil, dispLeave, false
		}
		step.Retryable = false
	}
	if step.State == domain.StepError && step.Retryable && step.Attempts < step.RetryLimit {
		if _, err := p.steps.SetBackoff(ctx, step.StepUUID, p.backoffSeconds(step, res, parsed)); err != nil {
			p.log.Warn("set backoff", zap.Stringer("step_uuid", step.StepUUID), zap.Error(err))
			return uuid.Nil, dispLeave, false
		}
	}
	return step.TaskUUID, dispDelete, true
}

// finalizeAndEnqueue runs §10.4 for the task and, if it is still running,
// enqueues whatever became ready, in one transaction that also deletes
// consumed. dispDelete then means those messages are already gone.
func (p *Processor) finalizeAndEnqueue(ctx context.Context, taskUUID uuid.UUID, consumed ports.ConsumedMessages) disposition {
	rep, err := p.finalizer.FinalizeAndEnqueue(ctx, taskUUID, consumed)
	if errors.Is(err, ports.ErrNotFound) {
		return dispArchive
	}
	if err != nil {
		p.log.Warn("finalize task", zap.Stringer("task_uuid", taskUUID), zap.Error(err))
		return dispLeave
	}
	if rep.To != rep.From {
		p.metrics.TaskFinalized(rep.To)
		p.log.Info("task finalized", zap.Stringer("task_uuid", taskUUID), zap.String("state", string(rep.To)))
	}
	return dispDelete
}

// backoffSeconds is §10.3 step 3: a delay the result asked for (retry-after
// header, else backoff hint), else 2^attempts; both capped.
func (p *Processor) backoffSeconds(step ports.StepResultView, res domain.StepExecutionResult, parsed bool) int {
	limit := p.cfg.MaxBackoffSeconds
	if parsed {
		if d, ok := domain.RetryDelay(res, p.now()); ok {
			return min(d, limit)
		}
	}
	d := limit
	if step.Attempts < 30 {
		d = min(1<<max(step.Attempts, 0), limit)
	}
	if p.cfg.Jitter && d > 1 {
		spread := float64(d) * 0.1
		d = int(float64(d) + (rand.Float64()*2-1)*spread)
	}
	return max(d, 0)
}

// taskRequestEnvelope is the orchestration_task_requests message (§4.5).
type taskRequestEnvelope struct {
	RequestID   string              `json:"request_id"`
	TaskRequest *domain.TaskRequest `json:"task_request"`
}

func (p *Processor) handleTaskRequest(ctx context.Context, body []byte) disposition {
	var env taskRequestEnvelope
	if err := json.Unmarshal(body, &env); err != nil || env.TaskRequest == nil {
		p.log.Error("unparseable task request; archiving", zap.ByteString("message", body))
		return dispArchive
	}
	resp, err := p.creator.CreateTask(ctx, *env.TaskRequest)
	if err != nil {
		var ve *domain.ValidationError
		var te *domain.TemplateValidationError
		if errors.As(err, &ve) || errors.As(err, &te) || errors.Is(err, ports.ErrNotFound) {
			p.log.Error("invalid task request; archiving", zap.String("request_id", env.RequestID), zap.Error(err))
			return dispArchive
		}
		p.log.Warn("create task from request", zap.String("request_id", env.RequestID), zap.Error(err))
		return dispLeave
	}
	p.metrics.TaskCreated(env.TaskRequest.Namespace)
	if p.enqueuer != nil {
		if _, err := p.enqueuer.EnqueueTask(ctx, resp.TaskUUID); err != nil {
			p.log.Warn("enqueue new task", zap.Stringer("task_uuid", resp.TaskUUID), zap.Error(err))
		}
	}
	return dispDelete
}

func (p *Processor) handleFinalization(ctx context.Context, body []byte) disposition {
	var msg struct {
		TaskUUID uuid.UUID `json:"task_uuid"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.TaskUUID == uuid.Nil {
		p.log.Error("unparseable finalization request; archiving", zap.ByteString("message", body))
		return dispArchive
	}
	return p.finalizeAndEnqueue(ctx, msg.TaskUUID, ports.ConsumedMessages{})
}
