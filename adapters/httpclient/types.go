package httpclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/tasker-systems/tasker-go/domain"
)

// TaskResponse is GET /v1/tasks/{uuid}, the cancel answer and one item of a
// task list (contract §7.3). Field names and JSON tags follow the contract
// exactly; they are defined here, on the client side, so that the client does
// not depend on the server's packages.
type TaskResponse struct {
	TaskUUID     uuid.UUID       `json:"task_uuid"`
	Name         string          `json:"name"`
	Namespace    string          `json:"namespace"`
	Version      string          `json:"version"`
	Status       string          `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	CompletedAt  *time.Time      `json:"completed_at"`
	Context      json.RawMessage `json:"context"`
	Initiator    string          `json:"initiator"`
	SourceSystem string          `json:"source_system"`
	Reason       string          `json:"reason"`
	Priority     int             `json:"priority"`
	// Tags is [string] or null per the contract; kept raw so that rows
	// written by other producers cannot make the whole task unreadable.
	Tags                 json.RawMessage `json:"tags"`
	TotalSteps           int64           `json:"total_steps"`
	PendingSteps         int64           `json:"pending_steps"`
	InProgressSteps      int64           `json:"in_progress_steps"`
	CompletedSteps       int64           `json:"completed_steps"`
	FailedSteps          int64           `json:"failed_steps"`
	ReadySteps           int64           `json:"ready_steps"`
	ExecutionStatus      string          `json:"execution_status"`
	RecommendedAction    string          `json:"recommended_action"`
	CompletionPercentage float64         `json:"completion_percentage"`
	HealthStatus         string          `json:"health_status"`
	// Steps is ordered by workflow_step_uuid; empty in list results.
	Steps []StepReadiness `json:"steps"`
}

// StepReadiness is one entry of TaskResponse.Steps (contract §7.3). Its
// timestamps are naive on the wire; Timestamp reads them as UTC.
type StepReadiness struct {
	WorkflowStepUUID      uuid.UUID  `json:"workflow_step_uuid"`
	TaskUUID              uuid.UUID  `json:"task_uuid"`
	NamedStepUUID         uuid.UUID  `json:"named_step_uuid"`
	Name                  string     `json:"name"`
	CurrentState          string     `json:"current_state"`
	DependenciesSatisfied bool       `json:"dependencies_satisfied"`
	RetryEligible         bool       `json:"retry_eligible"`
	ReadyForExecution     bool       `json:"ready_for_execution"`
	LastFailureAt         *Timestamp `json:"last_failure_at"`
	NextRetryAt           *Timestamp `json:"next_retry_at"`
	TotalParents          int        `json:"total_parents"`
	CompletedParents      int        `json:"completed_parents"`
	Attempts              int        `json:"attempts"`
	RetryLimit            int        `json:"retry_limit"`
	BackoffRequestSeconds *int       `json:"backoff_request_seconds"`
	LastAttemptedAt       *Timestamp `json:"last_attempted_at"`
}

// StepResponse is one workflow step with its stored result (contract §7.5).
type StepResponse struct {
	StepUUID              uuid.UUID       `json:"step_uuid"`
	TaskUUID              uuid.UUID       `json:"task_uuid"`
	Name                  string          `json:"name"`
	CreatedAt             Timestamp       `json:"created_at"`
	UpdatedAt             Timestamp       `json:"updated_at"`
	CompletedAt           *Timestamp      `json:"completed_at"`
	Results               json.RawMessage `json:"results"`
	CurrentState          string          `json:"current_state"`
	DependenciesSatisfied bool            `json:"dependencies_satisfied"`
	RetryEligible         bool            `json:"retry_eligible"`
	ReadyForExecution     bool            `json:"ready_for_execution"`
	TotalParents          int             `json:"total_parents"`
	CompletedParents      int             `json:"completed_parents"`
	Attempts              int             `json:"attempts"`
	RetryLimit            int             `json:"retry_limit"`
	LastFailureAt         *Timestamp      `json:"last_failure_at"`
	NextRetryAt           *Timestamp      `json:"next_retry_at"`
	LastAttemptedAt       *Timestamp      `json:"last_attempted_at"`
}

// Result returns results.result — the handler's output inside the stored
// StepExecutionResult (contract §5) — or the whole value for rows written by
// older workers that stored only the raw result. It is nil when the step
// has no results yet.
func (s StepResponse) Result() json.RawMessage {
	raw := bytes.TrimSpace(s.Results)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var envelope struct {
		StepUUID *string         `json:"step_uuid"`
		Success  *bool           `json:"success"`
		Result   json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &envelope); err == nil && envelope.Success != nil && envelope.Result != nil {
		return envelope.Result
	}
	return raw
}

// TaskList is GET /v1/tasks (contract §7.3).
type TaskList struct {
	Tasks      []TaskResponse `json:"tasks"`
	Pagination Pagination     `json:"pagination"`
}

// Pagination describes one page of a TaskList (the server's type).
type Pagination = domain.Pagination

// ListTasksOptions filters and pages GET /v1/tasks. Zero values are left
// out of the query so the server's defaults (page 1, 25 per page) apply.
type ListTasksOptions struct {
	Page, PerPage int
	Namespace     string
	Status        string
	Initiator     string
	SourceSystem  string
}

// HealthResponse is GET /health (contract §7.6).
type HealthResponse struct {
	Status    string `json:"status"`
	Timestamp string `json:"timestamp"`
}

// Timestamp reads the API's step timestamps, which are RFC 3339 in
// StepResponse but naive ("2025-08-27T12:00:00.123456", UTC implied) in
// TaskResponse.Steps (contract §7.3, §7.5). It is always UTC and marshals
// as RFC 3339.
type Timestamp struct{ time.Time }

var naiveLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// UnmarshalJSON accepts RFC 3339 and naive timestamps.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	for _, layout := range naiveLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("timestamp %q: neither RFC 3339 nor YYYY-MM-DDTHH:MM:SS[.ffffff]", s)
}

// MarshalJSON writes RFC 3339 in UTC.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// StepResolution is the body of ResolveStep; every field is required by the
// orchestration.
type StepResolution struct {
	// ResolutionData becomes the step's result (a JSON object).
	ResolutionData json.RawMessage `json:"resolution_data"`
	// ResolvedBy names the operator or system resolving the step.
	ResolvedBy string `json:"resolved_by"`
	// Reason says why, for the audit trail.
	Reason string `json:"reason"`
}

// TemplateSummary is one registered template of ListTemplates.
type TemplateSummary struct {
	Namespace   string  `json:"namespace"`
	Name        string  `json:"name"`
	Version     string  `json:"version"`
	Description *string `json:"description"`
	UpdatedAt   string  `json:"updated_at"`
}
