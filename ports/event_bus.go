package ports

import (
	"context"

	"github.com/tasker-systems/tasker-go/domain"
)

// EventBus decouples claiming a step from running its handler: the command
// processor publishes execution events and returns at once; a dispatcher
// runs handlers and publishes completion events back.
type EventBus interface {
	// PublishExecution hands a claimed step to the dispatcher. It blocks while
	// the buffer is full (back-pressure) until ctx is done.
	PublishExecution(ctx context.Context, ev domain.StepExecutionEvent) error
	// Executions is the dispatcher's subscription.
	Executions() <-chan domain.StepExecutionEvent
	// PublishCompletion returns a handler outcome.
	PublishCompletion(ctx context.Context, ev domain.StepCompletionEvent) error
	// Completions is the outcome persister's subscription.
	Completions() <-chan domain.StepCompletionEvent
}
