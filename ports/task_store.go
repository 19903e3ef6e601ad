package ports

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
)

// NewStep is one workflow step that task initialization creates (contract
// §10.1 step 3). It is already resolved for the orchestration's environment.
type NewStep struct {
	// Name is the template step name; it becomes the named step's name.
	Name string
	// SystemDependency is the dependent system the named step belongs to:
	// step.system_dependency, else system_dependencies.primary, else "default".
	SystemDependency string
	// Retryable and RetryLimit come from the step's retry configuration.
	Retryable  bool
	RetryLimit int
	// Inputs is handler.initialization, nil when it is empty (stored as NULL).
	Inputs json.RawMessage
	// Dependencies names the parent steps; each becomes a 'provides' edge.
	Dependencies []string
}

// NewTask is everything task initialization writes in its one transaction.
// The request has its defaults applied and has been validated.
type NewTask struct {
	NamedTaskUUID uuid.UUID
	// TaskName is the template's name, echoed as handler_config_name.
	TaskName string
	Request  domain.TaskRequest
	// Context is the request context stored verbatim (D-p); never nil.
	Context json.RawMessage
	// IdentityHash is the lower-case hex SHA-256 of named_task_uuid + canonical context.
	IdentityHash string
	Steps        []NewStep
	// IdempotencyKey, when not empty, makes the creation idempotent: the key
	// is recorded in the task's transaction, and a later (or concurrent)
	// creation with the same key returns the first task instead of a new one.
	IdempotencyKey string
	// RequestHash identifies the request's content (domain.RequestHash); a
	// key reused with another hash is an *IdempotencyConflictError.
	RequestHash string
}

// TaskCreator persists a new task with its steps, edges and initial
// transitions in one transaction, so that a failure leaves no row behind.
type TaskCreator interface {
	CreateTask(ctx context.Context, t NewTask) (domain.TaskCreationResponse, error)
}

// NotFoundError names what was not found; errors.Is(err, ErrNotFound) holds,
// so one HTTP mapping turns every variant into 404 with this message.
type NotFoundError struct {
	What string
}

// Error returns What, the message the API shows.
func (e *NotFoundError) Error() string { return e.What }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ErrUnavailable marks a request refused because the service cannot take
// work right now (shutting down, database down); the HTTP layer maps it to 503.
var ErrUnavailable = errors.New("service unavailable")

// ConflictError is a request that is well formed but not allowed in the
// entity's current state, such as cancelling a terminal task. The HTTP layer
// maps it to 400 BAD_REQUEST with Message.
type ConflictError struct {
	Message string
}

// Error returns Message.
func (e *ConflictError) Error() string { return e.Message }

// IdempotencyConflictError is an Idempotency-Key reused with a different
// request body. The HTTP layer maps it to 409 CONFLICT.
type IdempotencyConflictError struct {
	Key string
}

// Error names the key and why it was refused.
func (e *IdempotencyConflictError) Error() string {
	return "Idempotency-Key " + e.Key + " was already used with a different request body"
}
