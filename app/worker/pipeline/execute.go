package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/app/lifecycle"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// inflight is a claimed step whose outcome is not persisted yet.
type inflight struct {
	eventID     uuid.UUID
	claim       domain.StepClaim
	callable    string
	publishedAt time.Time
	release     func()
	stopHB      chan struct{}
	// headers are the completion message's pgmq headers (the handler span's
	// trace context), set by Complete.
	headers json.RawMessage
	// taken is set (under Pipeline.mu) by the one path that persists the
	// outcome: completion, correlation timeout or shutdown.
	taken bool
}

// start runs after a winning claim: build the execution event, begin the
// vt heartbeat, track the step and publish the event. It does not wait for
// the handler. Anything that fails here after the claim is persisted as a
// failure so the attempt counts (§9.3 step 4).
func (p *Pipeline) start(ctx context.Context, queue string, msg ports.QueueMessage, snap ports.StepSnapshot, release func()) error {
	now := p.clock.Now()
	def, hasDef := p.definition(snap) // a missing definition reaches the dispatcher as configuration_error
	claim := domain.StepClaim{
		TaskUUID:       snap.Step.TaskUUID,
		StepUUID:       snap.Step.WorkflowStepUUID,
		StepName:       snap.Step.Name,
		Namespace:      snap.Task.NamespaceName,
		TaskName:       snap.Task.TaskName,
		Queue:          queue,
		MsgID:          msg.MsgID,
		Attempts:       snap.Step.Attempts,
		RetryLimit:     snap.Step.RetryLimit,
		WorkerID:       p.cfg.WorkerID,
		ClaimedAt:      now,
		TimeoutSeconds: def.TimeoutSeconds,
		TraceContext:   lifecycle.Carrier(ctx),
	}
	ev := domain.StepExecutionEvent{
		EventID:        uuid.Must(uuid.NewV7()),
		Claim:          claim,
		Task:           snap.Task,
		Step:           snap.Step,
		StepDefinition: def,
	}
	if def.TimeoutSeconds != nil {
		ev.Deadline = now.Add(time.Duration(*def.TimeoutSeconds) * time.Second)
	}
	e := &inflight{eventID: ev.EventID, claim: claim, callable: def.Handler.Callable, publishedAt: now, release: release, stopHB: make(chan struct{})}
	p.track(e)

	// The claim usually brought the dependency results along
	// (StepSnapshot.DependencyResults). Otherwise they are queried, except for
	// a root step of its template, which has no ancestors (task
	// initialization creates edges from the same template).
	deps := snap.DependencyResults
	if deps == nil && (!hasDef || len(def.Dependencies) > 0) {
		var err error
		if deps, err = p.steps.DependencyResults(ctx, claim.StepUUID); err != nil {
			return p.failStarted(ctx, e, domain.ErrorTypeConfigurationError,
				fmt.Sprintf("load dependency results: %v", err), fmt.Errorf("load dependency results of %s: %w", claim.StepUUID, err))
		}
	}
	ev.DependencyResults = make(map[string]json.RawMessage, len(deps))
	for name, raw := range deps {
		ev.DependencyResults[name] = domain.UnwrapDependencyResult(raw)
	}
	p.log.Info(lifecycle.StepClaimed, append(claimFields(ctx, claim), zap.Int64("msg_id", claim.MsgID))...)
	if err := p.bus.PublishExecution(ctx, ev); err != nil {
		return p.failStarted(ctx, e, domain.ErrorTypeWorkerShutdown,
			fmt.Sprintf("worker could not hand the step to a handler: %v", err), fmt.Errorf("publish execution of %s: %w", claim.StepUUID, err))
	}
	return nil
}

// claimFields are the lifecycle fields of a claimed step.
func claimFields(ctx context.Context, c domain.StepClaim) []zap.Field {
	return lifecycle.Step(ctx, c.TaskUUID, c.StepUUID, c.Namespace, c.StepName, c.Attempts)
}

// logOutcome writes the step completed / step failed line of a persisted outcome.
func (p *Pipeline) logOutcome(ctx context.Context, c domain.StepClaim, res domain.StepExecutionResult) {
	fields := append(claimFields(ctx, c), zap.Int64("duration_ms", res.Metadata.ExecutionTimeMs))
	if res.Success {
		p.log.Info(lifecycle.StepCompleted, fields...)
		return
	}
	if res.Error != nil {
		fields = append(fields, zap.String("error", res.Error.Message), zap.Bool("retryable", res.Error.Retryable))
		if res.Error.ErrorType != nil {
			fields = append(fields, zap.String("error_type", *res.Error.ErrorType))
		}
	}
	p.log.Warn(lifecycle.StepFailed, fields...)
}

// failStarted persists a failure for a step claimed but never handed to a
// handler, and returns cause for logging by the caller.
func (p *Pipeline) failStarted(ctx context.Context, e *inflight, errorType, message string, cause error) error {
	if !p.take(e) {
		return cause
	}
	res := p.results.WorkerFailure(e.claim.StepUUID, time.Time{}, p.clock.Now(), errorType, message)
	if err := p.persist(context.WithoutCancel(ctx), e, res); err != nil {
		return fmt.Errorf("%w (and persisting the failure: %v)", cause, err)
	}
	return cause
}

// track registers e and starts its heartbeat.
func (p *Pipeline) track(e *inflight) {
	p.mu.Lock()
	p.byStep[e.claim.StepUUID] = e
	p.byEvent[e.eventID] = e
	p.mu.Unlock()
	p.stats.inflight(e.claim.Namespace, 1)
	p.hbWG.Add(1)
	go p.heartbeat(e)
}

// heartbeat keeps the step message invisible while the step is in flight
// (D-g): set_vt(vt) every vt/3, until the outcome is persisted.
func (p *Pipeline) heartbeat(e *inflight) {
	defer p.hbWG.Done()
	interval := time.Duration(p.cfg.VisibilityTimeoutSeconds) * time.Second / 3
	for {
		select {
		case <-e.stopHB:
			return
		case <-p.clock.After(interval):
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		_, err := p.queue.SetVT(ctx, e.claim.Queue, e.claim.MsgID, p.cfg.VisibilityTimeoutSeconds)
		cancel()
		p.stats.tick("heartbeat")
		if err != nil {
			p.log.Warn("vt heartbeat failed", zap.Stringer("step_uuid", e.claim.StepUUID), zap.Int64("msg_id", e.claim.MsgID), zap.Error(err))
		}
	}
}

// take marks e as being finalised by the caller; false if another path did.
func (p *Pipeline) take(e *inflight) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.taken {
		return false
	}
	e.taken = true
	delete(p.byEvent, e.eventID)
	return true
}

// untrack stops tracking a finalised step, stops its heartbeat and frees its slot.
func (p *Pipeline) untrack(e *inflight) {
	p.mu.Lock()
	if cur, ok := p.byStep[e.claim.StepUUID]; ok && cur == e {
		delete(p.byStep, e.claim.StepUUID)
	}
	p.mu.Unlock()
	close(e.stopHB)
	p.stats.inflight(e.claim.Namespace, -1)
	e.release()
}

// WaitHeartbeats blocks until every heartbeat goroutine has stopped; call
// after the last outcome is persisted (goroutine hygiene at shutdown).
func (p *Pipeline) WaitHeartbeats() { p.hbWG.Wait() }

// templateCache memoises parsed, environment-resolved templates by their
// stored configuration, so a burst of steps of one task type parses once.
type templateCache struct {
	mu      sync.Mutex
	entries map[string]domain.TaskTemplate
}

const maxTemplateCacheEntries = 512

func (c *templateCache) resolve(configuration json.RawMessage, env string) (domain.TaskTemplate, error) {
	c.mu.Lock()
	t, ok := c.entries[string(configuration)]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	parsed, err := domain.ParseTemplateJSON(configuration)
	if err != nil {
		return domain.TaskTemplate{}, err
	}
	t = parsed.ResolveForEnvironment(env)
	c.mu.Lock()
	if len(c.entries) >= maxTemplateCacheEntries {
		c.entries = map[string]domain.TaskTemplate{}
	}
	c.entries[string(configuration)] = t
	c.mu.Unlock()
	return t, nil
}

// definition returns the environment-resolved step definition of the
// task's own named task (D-f, D-q), and false when the template is missing,
// unparseable or has no step of that name.
func (p *Pipeline) definition(snap ports.StepSnapshot) (domain.StepDefinition, bool) {
	if len(snap.Configuration) == 0 {
		return domain.StepDefinition{}, false
	}
	t, err := p.tmpl.resolve(snap.Configuration, p.cfg.Environment)
	if err != nil {
		p.log.Warn("cannot parse task template configuration", zap.Stringer("task_uuid", snap.Task.TaskUUID), zap.Error(err))
		return domain.StepDefinition{}, false
	}
	def, ok := t.StepByName(snap.Step.Name)
	if !ok {
		return domain.StepDefinition{}, false
	}
	return def.Clone(), true
}
