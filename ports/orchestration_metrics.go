package ports

import (
	"time"

	"github.com/tasker-systems/tasker-go/domain"
)

// OrchestrationMetrics records what the orchestration loops do, so the
// Prometheus adapter (or a test) can observe it without the app importing
// any metrics library.
type OrchestrationMetrics interface {
	// TaskCreated counts a task created in namespace.
	TaskCreated(namespace string)
	// TaskFinalized counts a task that reached state (complete or error) by finalization.
	TaskFinalized(state domain.TaskState)
	// StepsEnqueued counts step messages sent to namespace's queue.
	StepsEnqueued(namespace string, n int)
	// ResultProcessed counts one message of queue handled with outcome
	// ("processed", "archived", "failed").
	ResultProcessed(queue, outcome string)
	// EnqueueCycle observes the duration of one enqueue cycle.
	EnqueueCycle(d time.Duration)
	// DeadLettered counts one DLQ entry recorded with reason.
	DeadLettered(reason domain.DLQReason)
	// StepRetried counts one step of namespace, named step, sent again after
	// an error (its retry): the number an operator watches for flaky handlers.
	StepRetried(namespace, step string)
	// TaskDuration observes the time from a task's creation to its
	// finalization in state, by namespace and template (task) name.
	TaskDuration(namespace, template string, state domain.TaskState, d time.Duration)
	// Leader records whether this instance leads, i.e. consumes the
	// orchestration queues (ports.Leadership), or stands by.
	Leader(leading bool)
}

// NopOrchestrationMetrics discards every observation.
type NopOrchestrationMetrics struct{}

// TaskCreated does nothing.
func (NopOrchestrationMetrics) TaskCreated(string) {}

// TaskFinalized does nothing.
func (NopOrchestrationMetrics) TaskFinalized(domain.TaskState) {}

// StepsEnqueued does nothing.
func (NopOrchestrationMetrics) StepsEnqueued(string, int) {}

// ResultProcessed does nothing.
func (NopOrchestrationMetrics) ResultProcessed(string, string) {}

// EnqueueCycle does nothing.
func (NopOrchestrationMetrics) EnqueueCycle(time.Duration) {}

// DeadLettered does nothing.
func (NopOrchestrationMetrics) DeadLettered(domain.DLQReason) {}

// StepRetried does nothing.
func (NopOrchestrationMetrics) StepRetried(string, string) {}

// TaskDuration does nothing.
func (NopOrchestrationMetrics) TaskDuration(string, string, domain.TaskState, time.Duration) {}

// Leader does nothing.
func (NopOrchestrationMetrics) Leader(bool) {}
