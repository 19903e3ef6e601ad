package ports

import (
	"context"

	"github.com/tasker-systems/tasker-go/domain"
)

// EventBus decouples claiming a step from running its handler: the command
// processor publishes execution events and returns at once; a dispatcher
// runs handlers and publishes completion events back.
//
// It is safe for concurrent use by any number of publishers. Each published
// event is received exactly once from its own subscription; a publish that
// returns an error published nothing. The contract suite
// adapters/eventbus/eventbustest pins this behaviour.
type EventBus interface {
	// PublishExecution hands a claimed step to the dispatcher. It blocks while
	// the buffer is full (back-pressure) until ctx is done.
	PublishExecution(ctx context.Context, ev domain.StepExecutionEvent) error
	// Executions is the dispatcher's subscription: the same channel on every call.
	Executions() <-chan domain.StepExecutionEvent
	// PublishCompletion returns a handler outcome. Like PublishExecution it
	// blocks while its buffer is full until ctx is done.
	PublishCompletion(ctx context.Context, ev domain.StepCompletionEvent) error
	// Completions is the outcome persister's subscription: the same channel on every call.
	Completions() <-chan domain.StepCompletionEvent
}
