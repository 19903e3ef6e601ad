package result

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/domain/sqlstate"
	"github.com/tasker-systems/tasker-go/ports"
)

// Batches runs the set-based task batches (ports.TaskBatch) that record
// results, finalize tasks and enqueue what became ready, creating a missing
// namespace queue when needed (the enqueue service).
type Batches interface {
	ProcessBatch(ctx context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error)
}

// TaskCreator creates a task from a request (the taskinit service).
type TaskCreator interface {
	CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error)
}

// Leader tells the consumers whether this instance consumes the
// orchestration queues now (the leader package's Election).
type Leader interface {
	// Leading reports whether the consumers read: a standby's do not.
	Leading() bool
	// Gained is closed when this instance next becomes the leader.
	Gained() <-chan struct{}
}

// Processor handles the orchestration's queues.
type Processor struct {
	cfg     Config
	leader  Leader
	queue   ports.Queue
	batches Batches
	creator TaskCreator
	dlq     ports.DeadLetterRecorder
	metrics ports.OrchestrationMetrics
	log     *zap.Logger
	now     func() time.Time
}

// Deps are the Processor's collaborators. Metrics and Log may be nil.
type Deps struct {
	Queue   ports.Queue
	Batches Batches
	Creator TaskCreator
	// DeadLetters records poison messages; nil archives them without an entry.
	DeadLetters ports.DeadLetterRecorder
	Metrics     ports.OrchestrationMetrics
	Log         *zap.Logger
	// Clock supplies "now" for HTTP-date retry-after headers; nil = system clock.
	Clock ports.Clock
	// Leader gates reading: nil means always read (one instance, tests).
	Leader Leader
}

// New returns a Processor.
func New(cfg Config, d Deps) *Processor {
	p := &Processor{cfg: cfg.withDefaults(), leader: d.Leader, queue: d.Queue, batches: d.Batches, creator: d.Creator,
		dlq: d.DeadLetters, metrics: d.Metrics, log: d.Log, now: time.Now}
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

// bookkeeping is §10.3 step 3 for the step of a completion message, read
// under its task's lock by the batch: a handler that said retrying cannot
// help (§9.2) makes the step not retryable, so it is permanently failed and
// finalization can fail the task (D-e); a step in error that will be retried
// gets its backoff.
func (p *Processor) bookkeeping(step ports.StepResultView) ports.ResultBookkeeping {
	var bk ports.ResultBookkeeping
	if step.State != domain.StepError {
		return bk
	}
	res, parsed := domain.ParseStepExecutionResult(step.Results)
	if step.Retryable && parsed && !res.Success && res.Error != nil && !res.Error.Retryable {
		bk.NotRetryable = true
		step.Retryable = false
	}
	if step.Retryable && step.Attempts < step.RetryLimit {
		d := p.backoffSeconds(step, res, parsed)
		bk.BackoffSeconds = &d
	}
	return bk
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

// createTask is §4.5 for one task request: create the task (§10.1). The
// created task is returned for the batch that enqueues it. A request that
// cannot be parsed, is invalid, names an unknown template, or that the
// database refuses for its content (sqlstate.Permanent: a value out of
// range, a constraint) fails the same way on every redelivery, so it is
// poison at once: archived and dead-lettered (dispPoison) with the cause.
func (p *Processor) createTask(ctx context.Context, body []byte) (uuid.UUID, disposition, error) {
	var env taskRequestEnvelope
	if err := json.Unmarshal(body, &env); err != nil || env.TaskRequest == nil {
		return uuid.Nil, dispPoison, errors.New("unparseable task request: not a {request_id, task_request} object")
	}
	resp, err := p.creator.CreateTask(ctx, *env.TaskRequest)
	if err != nil {
		var ve *domain.ValidationError
		var te *domain.TemplateValidationError
		if errors.As(err, &ve) || errors.As(err, &te) || errors.Is(err, ports.ErrNotFound) {
			return uuid.Nil, dispPoison, fmt.Errorf("invalid task request %s: %w", env.RequestID, err)
		}
		if sqlstate.Permanent(err) {
			return uuid.Nil, dispPoison, fmt.Errorf("task request %s: permanent database error: %w", env.RequestID, err)
		}
		p.log.Warn("create task from request", zap.String("request_id", env.RequestID), zap.Error(err))
		return uuid.Nil, dispLeave, nil
	}
	p.metrics.TaskCreated(env.TaskRequest.Namespace)
	p.log.Info(lifecycle.TaskCreated, append(lifecycle.Task(ctx, resp.TaskUUID, env.TaskRequest.Namespace),
		zap.String("template", env.TaskRequest.Name), zap.String("version", env.TaskRequest.Version),
		zap.String("request_id", env.RequestID))...)
	return resp.TaskUUID, dispDelete, nil
}
