package handler

import (
	"errors"
	"fmt"

	"github.com/tasker-systems/tasker-go/domain"
)

// Error types used by the SDK when a handler does not choose one.
const (
	// ErrorTypeHandler is the error_type of a plain (non-*Error) error.
	ErrorTypeHandler = "handler_error"
	// ErrorTypeValidation is the conventional error_type of bad input; such
	// failures are usually permanent because retrying cannot fix the input.
	ErrorTypeValidation = "validation"
)

// BackoffType names who asked for a retry delay (contract §5 backoff_hint).
// It is the domain's type, so the values a handler picks are the ones the
// result carries, with no second list to keep in step.
type BackoffType = domain.BackoffType

// Backoff hint types accepted by the orchestration.
const (
	BackoffServerRequested    = domain.BackoffServerRequested
	BackoffRateLimit          = domain.BackoffRateLimit
	BackoffServiceUnavailable = domain.BackoffServiceUnavailable
	BackoffCustom             = domain.BackoffCustom
)

// BackoffHint asks the orchestration to wait DelaySeconds before retrying.
type BackoffHint struct {
	// Type says who asked for the delay (Custom when empty).
	Type BackoffType
	// DelaySeconds is the requested wait before the retry.
	DelaySeconds uint32
	// Context is free text for operators.
	Context string
}

// Error is a handler failure with the fields the StepExecutionResult records
// (contract §9.2). Build it with Permanent or Retryable and the With* methods.
type Error struct {
	// Message is the human-readable failure (error.message).
	Message string
	// Retryable says whether the orchestration may run the step again.
	Retryable bool
	// Type is error_type (e.g. "validation", "rate_limited").
	Type string
	// Code is the optional error_code.
	Code string
	// Context is free-form detail stored in metadata.context.
	Context map[string]any
	// Backtrace is optional frames stored in error.backtrace.
	Backtrace []string
	// RetryAfterSeconds, when set, becomes orchestration_metadata.headers["retry-after"].
	RetryAfterSeconds *uint32
	// Backoff, when set, becomes orchestration_metadata.backoff_hint.
	Backoff *BackoffHint
	// Cause is the wrapped error, if any.
	Cause error
}

// Permanent returns a non-retryable failure: the step will not run again.
func Permanent(errorType, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Type: errorType}
}

// Retryable returns a failure the orchestration retries (within retry.limit).
func Retryable(errorType, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Type: errorType, Retryable: true}
}

// Error implements error.
func (e *Error) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// Unwrap exposes Cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.Cause }

// WithCode sets error_code.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// WithContext adds a key to metadata.context.
func (e *Error) WithContext(key string, value any) *Error {
	if e.Context == nil {
		e.Context = map[string]any{}
	}
	e.Context[key] = value
	return e
}

// WithCause records the underlying error.
func (e *Error) WithCause(err error) *Error { e.Cause = err; return e }

// WithBacktrace records stack frames for error.backtrace.
func (e *Error) WithBacktrace(frames ...string) *Error { e.Backtrace = frames; return e }

// RetryAfter asks the orchestration to wait at least seconds before the retry
// (stored as the retry-after header the orchestration reads first, §10.3).
func (e *Error) RetryAfter(seconds uint32) *Error { e.RetryAfterSeconds = &seconds; return e }

// WithBackoffHint attaches a typed backoff hint.
func (e *Error) WithBackoffHint(t BackoffType, delaySeconds uint32, context string) *Error {
	e.Backoff = &BackoffHint{Type: t, DelaySeconds: delaySeconds, Context: context}
	return e
}

// AsError converts any handler error into an *Error: an *Error anywhere in
// the chain is returned as is; anything else becomes a retryable
// "handler_error" carrying err's message.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var he *Error
	if errors.As(err, &he) {
		return he
	}
	return &Error{Message: err.Error(), Type: ErrorTypeHandler, Retryable: true, Cause: err}
}
