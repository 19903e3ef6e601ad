package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Result status values written by this project (contract §5, D-a). Readers
// also accept "success" and "error"; the step state, not the status, decides.
const (
	ResultStatusCompleted = "completed"
	ResultStatusFailed    = "failed"
)

// Error types the worker itself assigns (contract §9.2, §9.3).
const (
	ErrorTypeHandlerPanic       = "handler_panic"
	ErrorTypeTimeout            = "timeout"
	ErrorTypeHandlerNotFound    = "handler_not_found"
	ErrorTypeConfigurationError = "configuration_error"
	ErrorTypeWorkerLost         = "worker_lost"
	ErrorTypeWorkerShutdown     = "worker_shutdown"
)

// StepExecutionResult is the full object stored in tasker_workflow_steps.results
// on success and on failure (contract §5, D-a). Writers emit every field,
// absent values as explicit null.
type StepExecutionResult struct {
	StepUUID              uuid.UUID              `json:"step_uuid"`
	Success               bool                   `json:"success"`
	Result                json.RawMessage        `json:"result"`
	Metadata              StepExecutionMetadata  `json:"metadata"`
	Status                string                 `json:"status"`
	Error                 *StepExecutionError    `json:"error"`
	OrchestrationMetadata *OrchestrationMetadata `json:"orchestration_metadata"`
}

// StepExecutionMetadata is the metadata object of a StepExecutionResult.
// Custom and Context are required objects and marshal as {} when nil.
type StepExecutionMetadata struct {
	ExecutionTimeMs int64          `json:"execution_time_ms"`
	HandlerVersion  *string        `json:"handler_version"`
	Retryable       bool           `json:"retryable"`
	CompletedAt     time.Time      `json:"completed_at"`
	WorkerID        *string        `json:"worker_id"`
	WorkerHostname  *string        `json:"worker_hostname"`
	StartedAt       *time.Time     `json:"started_at"`
	Custom          map[string]any `json:"custom"`
	ErrorCode       *string        `json:"error_code"`
	ErrorType       *string        `json:"error_type"`
	Context         map[string]any `json:"context"`
}

// MarshalJSON writes required objects as {} instead of null and timestamps in UTC.
func (m StepExecutionMetadata) MarshalJSON() ([]byte, error) {
	type plain StepExecutionMetadata
	p := plain(m)
	if p.Custom == nil {
		p.Custom = map[string]any{}
	}
	if p.Context == nil {
		p.Context = map[string]any{}
	}
	p.CompletedAt = p.CompletedAt.UTC()
	if p.StartedAt != nil {
		t := p.StartedAt.UTC()
		p.StartedAt = &t
	}
	return json.Marshal(p)
}

// StepExecutionError describes a failed execution.
type StepExecutionError struct {
	Message   string   `json:"message"`
	ErrorType *string  `json:"error_type"`
	Backtrace []string `json:"backtrace"`
	Retryable bool     `json:"retryable"`
}

// BackoffType names who asked for a retry delay.
type BackoffType string

// Backoff hint types (contract §5).
const (
	BackoffServerRequested    BackoffType = "ServerRequested"
	BackoffRateLimit          BackoffType = "RateLimit"
	BackoffServiceUnavailable BackoffType = "ServiceUnavailable"
	BackoffCustom             BackoffType = "Custom"
)

// BackoffHint is a handler's request for a retry delay.
type BackoffHint struct {
	BackoffType  BackoffType `json:"backoff_type"`
	DelaySeconds uint32      `json:"delay_seconds"`
	Context      *string     `json:"context"`
}

// OrchestrationMetadata carries hints for the orchestration (retry-after headers, backoff).
type OrchestrationMetadata struct {
	Headers      map[string]string `json:"headers"`
	ErrorContext *string           `json:"error_context"`
	BackoffHint  *BackoffHint      `json:"backoff_hint"`
	Custom       map[string]any    `json:"custom"`
}

// MarshalJSON writes required objects as {} instead of null.
func (o OrchestrationMetadata) MarshalJSON() ([]byte, error) {
	type plain OrchestrationMetadata
	p := plain(o)
	if p.Headers == nil {
		p.Headers = map[string]string{}
	}
	if p.Custom == nil {
		p.Custom = map[string]any{}
	}
	return json.Marshal(p)
}

// MarshalJSON writes result as {} on failure when absent and null fields explicitly.
func (r StepExecutionResult) MarshalJSON() ([]byte, error) {
	type plain StepExecutionResult
	p := plain(r)
	if len(p.Result) == 0 {
		if p.Success {
			p.Result = json.RawMessage("null")
		} else {
			p.Result = json.RawMessage("{}")
		}
	}
	return json.Marshal(p)
}
