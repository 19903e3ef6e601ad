package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Well-known queue names (contract §4.1).
const (
	QueueStepResults       = "orchestration_step_results"
	QueueTaskRequests      = "orchestration_task_requests"
	QueueTaskFinalizations = "orchestration_task_finalizations"
)

// SimpleStepMessage is both the step message (orchestration → {ns}_queue) and
// the completion message (worker → orchestration_step_results) (contract §4.3, §4.4).
type SimpleStepMessage struct {
	TaskUUID uuid.UUID `json:"task_uuid"`
	StepUUID uuid.UUID `json:"step_uuid"`
}

// StepClaim is what a worker holds after winning the claim of a step: the
// step now is in_progress with attempts counted.
type StepClaim struct {
	TaskUUID  uuid.UUID
	StepUUID  uuid.UUID
	StepName  string
	Namespace string
	// TaskName is the task's template name, for logs and metrics.
	TaskName       string
	Queue          string
	MsgID          int64
	Attempts       int
	RetryLimit     int
	WorkerID       string
	ClaimedAt      time.Time
	TimeoutSeconds *uint32
	// TraceContext is the W3C trace context (traceparent, tracestate) of
	// the span that produced this claim or, on a completion event, of the
	// handler's span; empty when tracing is off.
	TraceContext map[string]string
}

// StepExecutionEvent asks the dispatcher to run a handler for a claimed step.
// It carries everything the handler sees (contract §9.1).
type StepExecutionEvent struct {
	EventID           uuid.UUID
	Claim             StepClaim
	Task              TaskInfo
	Step              StepInfo
	StepDefinition    StepDefinition
	DependencyResults map[string]json.RawMessage
	// Deadline is zero when the step has no timeout_seconds.
	Deadline time.Time
}

// StepCompletionEvent is the handler outcome, correlated to its execution event by EventID.
type StepCompletionEvent struct {
	EventID uuid.UUID
	Claim   StepClaim
	Result  StepExecutionResult
}

// TaskInfo is the task as handlers see it.
type TaskInfo struct {
	TaskUUID      uuid.UUID       `json:"task_uuid"`
	NamedTaskUUID uuid.UUID       `json:"named_task_uuid"`
	TaskName      string          `json:"task_name"`
	TaskVersion   string          `json:"task_version"`
	NamespaceName string          `json:"namespace_name"`
	Context       json.RawMessage `json:"context"`
	Initiator     *string         `json:"initiator"`
	SourceSystem  *string         `json:"source_system"`
	Reason        *string         `json:"reason"`
	Tags          json.RawMessage `json:"tags"`
	Priority      int             `json:"priority"`
	RequestedAt   time.Time       `json:"requested_at"`
}

// StepInfo is the workflow step row as handlers see it.
type StepInfo struct {
	WorkflowStepUUID      uuid.UUID       `json:"workflow_step_uuid"`
	TaskUUID              uuid.UUID       `json:"task_uuid"`
	NamedStepUUID         uuid.UUID       `json:"named_step_uuid"`
	Name                  string          `json:"name"`
	Retryable             bool            `json:"retryable"`
	RetryLimit            int             `json:"retry_limit"`
	Attempts              int             `json:"attempts"`
	Inputs                json.RawMessage `json:"inputs"`
	BackoffRequestSeconds *int            `json:"backoff_request_seconds"`
}
