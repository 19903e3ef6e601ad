// Package outcome turns handler outcomes and worker-detected failures into
// the full StepExecutionResult stored in tasker_workflow_steps.results
// (contract §5, §9.2, D-a) via the domain constructors, adding the SDK
// error mapping and the worker hostname. Both the dispatcher (handler outcomes) and the
// pipeline (worker_lost, worker_shutdown, correlation timeouts) build
// results here so the two can never disagree on shape.
package outcome

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
)

// ErrorTypeSerialization marks a success whose result cannot be encoded as
// JSON; it is permanent because the same handler will produce it again.
const ErrorTypeSerialization = "serialization_error"

// Builder stamps results with the worker's identity.
type Builder struct {
	// WorkerID goes to metadata.worker_id.
	WorkerID string
	// Hostname goes to metadata.worker_hostname; empty writes null.
	Hostname string
}

func (b Builder) stamp(r domain.StepExecutionResult) domain.StepExecutionResult {
	if b.Hostname != "" {
		h := b.Hostname
		r.Metadata.WorkerHostname = &h
	}
	return r
}

// Success builds the result of a handler that returned s. A result that
// cannot be marshalled becomes a permanent serialization_error failure.
func (b Builder) Success(stepUUID uuid.UUID, started, completed time.Time, s handler.Success) domain.StepExecutionResult {
	raw, err := marshalResult(s.Result)
	if err != nil {
		return b.Failure(stepUUID, started, completed,
			handler.Permanent(ErrorTypeSerialization, "encode handler result: %v", err))
	}
	custom := make(map[string]any, len(s.Metadata))
	for k, v := range s.Metadata {
		custom[k] = v
	}
	if _, err := json.Marshal(custom); err != nil {
		return b.Failure(stepUUID, started, completed,
			handler.Permanent(ErrorTypeSerialization, "encode handler metadata: %v", err))
	}
	return b.stamp(domain.NewSuccessResult(stepUUID, raw, custom, started, completed, b.WorkerID))
}

func marshalResult(v any) (json.RawMessage, error) {
	switch r := v.(type) {
	case json.RawMessage:
		if len(r) == 0 {
			return json.RawMessage("null"), nil
		}
		if !json.Valid(r) {
			_, err := json.Marshal(r) // produces the descriptive error
			return nil, err
		}
		return r, nil
	default:
		return json.Marshal(v)
	}
}

// Failure builds the result of a failed execution from he (contract §9.2):
// result {}, error{message,error_type,backtrace,retryable}, the same
// retryable/error_type/error_code/context in metadata, and the retry-after
// header and backoff hint in orchestration_metadata when the handler asked
// for a delay.
func (b Builder) Failure(stepUUID uuid.UUID, started, completed time.Time, he *handler.Error) domain.StepExecutionResult {
	f := domain.StepFailure{
		Message:           he.Message,
		Retryable:         he.Retryable,
		ErrorType:         he.Type,
		ErrorCode:         he.Code,
		Backtrace:         he.Backtrace,
		RetryAfterSeconds: he.RetryAfterSeconds,
	}
	if len(he.Context) > 0 {
		f.Context = make(map[string]any, len(he.Context))
		for k, v := range he.Context {
			f.Context[k] = v
		}
		if _, err := json.Marshal(f.Context); err != nil {
			f.Context = map[string]any{"context_encoding_error": err.Error()}
		}
	}
	if he.Backoff != nil {
		hint := &domain.BackoffHint{BackoffType: he.Backoff.Type, DelaySeconds: he.Backoff.DelaySeconds}
		if hint.BackoffType == "" {
			hint.BackoffType = domain.BackoffCustom
		}
		if he.Backoff.Context != "" {
			c := he.Backoff.Context
			hint.Context = &c
		}
		f.BackoffHint = hint
	}
	return b.stamp(domain.NewFailureResult(stepUUID, f, started, completed, b.WorkerID))
}

// WorkerFailure builds a retryable failure the worker itself detected
// (handler_panic, timeout, handler_not_found, configuration_error,
// worker_lost, worker_shutdown): attempts were counted at the claim, so the
// orchestration's retry policy decides what happens next.
func (b Builder) WorkerFailure(stepUUID uuid.UUID, started, completed time.Time, errorType, message string) domain.StepExecutionResult {
	return b.Failure(stepUUID, started, completed, &handler.Error{Message: message, Type: errorType, Retryable: true})
}
