package orchestrationapi

import (
	"encoding/json"
	"time"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Timestamp layouts of §7.3/§7.5: task timestamps are RFC 3339 UTC with Z;
// step readiness timestamps inside TaskResponse are naive (UTC implied);
// StepResponse timestamps carry Z.
const (
	layoutUTC   = "2006-01-02T15:04:05.000000Z"
	layoutNaive = "2006-01-02T15:04:05.000000"
)

func ts(t time.Time, layout string) string { return t.UTC().Format(layout) }

func tsPtr(t *time.Time, layout string) *string {
	if t == nil {
		return nil
	}
	s := ts(*t, layout)
	return &s
}

// taskResponse is TaskResponse (§7.3).
type taskResponse struct {
	TaskUUID             string          `json:"task_uuid"`
	Name                 string          `json:"name"`
	Namespace            string          `json:"namespace"`
	Version              string          `json:"version"`
	Status               string          `json:"status"`
	CreatedAt            string          `json:"created_at"`
	UpdatedAt            string          `json:"updated_at"`
	CompletedAt          *string         `json:"completed_at"`
	Context              json.RawMessage `json:"context"`
	Initiator            string          `json:"initiator"`
	SourceSystem         string          `json:"source_system"`
	Reason               string          `json:"reason"`
	Priority             int             `json:"priority"`
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
	Steps                []stepReadiness `json:"steps"`
}

// stepReadiness is one entry of TaskResponse.steps (naive timestamps).
type stepReadiness struct {
	WorkflowStepUUID      string  `json:"workflow_step_uuid"`
	TaskUUID              string  `json:"task_uuid"`
	NamedStepUUID         string  `json:"named_step_uuid"`
	Name                  string  `json:"name"`
	CurrentState          string  `json:"current_state"`
	DependenciesSatisfied bool    `json:"dependencies_satisfied"`
	RetryEligible         bool    `json:"retry_eligible"`
	ReadyForExecution     bool    `json:"ready_for_execution"`
	LastFailureAt         *string `json:"last_failure_at"`
	NextRetryAt           *string `json:"next_retry_at"`
	TotalParents          int     `json:"total_parents"`
	CompletedParents      int     `json:"completed_parents"`
	Attempts              int     `json:"attempts"`
	RetryLimit            int     `json:"retry_limit"`
	BackoffRequestSeconds *int    `json:"backoff_request_seconds"`
	LastAttemptedAt       *string `json:"last_attempted_at"`
}

// stepResponse is StepResponse (§7.5).
type stepResponse struct {
	StepUUID              string          `json:"step_uuid"`
	TaskUUID              string          `json:"task_uuid"`
	Name                  string          `json:"name"`
	CreatedAt             string          `json:"created_at"`
	UpdatedAt             string          `json:"updated_at"`
	CompletedAt           *string         `json:"completed_at"`
	Results               json.RawMessage `json:"results"`
	CurrentState          string          `json:"current_state"`
	DependenciesSatisfied bool            `json:"dependencies_satisfied"`
	RetryEligible         bool            `json:"retry_eligible"`
	ReadyForExecution     bool            `json:"ready_for_execution"`
	TotalParents          int             `json:"total_parents"`
	CompletedParents      int             `json:"completed_parents"`
	Attempts              int             `json:"attempts"`
	RetryLimit            int             `json:"retry_limit"`
	LastFailureAt         *string         `json:"last_failure_at"`
	NextRetryAt           *string         `json:"next_retry_at"`
	LastAttemptedAt       *string         `json:"last_attempted_at"`
}

// taskListResponse is the GET /v1/tasks body.
type taskListResponse struct {
	Tasks      []taskResponse    `json:"tasks"`
	Pagination domain.Pagination `json:"pagination"`
}

func orUnknown(s *string) string {
	if s == nil {
		return "unknown"
	}
	return *s
}

func jsonOr(raw json.RawMessage, fallback string) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(fallback)
	}
	return raw
}

func newTaskResponse(v ports.TaskView) taskResponse {
	ec := domain.DeriveExecutionContext(v.Counts)
	r := taskResponse{
		TaskUUID: v.TaskUUID.String(), Name: v.Name, Namespace: v.Namespace, Version: v.Version,
		Status: string(v.State), CreatedAt: ts(v.CreatedAt, layoutUTC), UpdatedAt: ts(v.UpdatedAt, layoutUTC),
		CompletedAt: tsPtr(v.CompletedAt, layoutUTC), Context: jsonOr(v.Context, "{}"),
		Initiator: orUnknown(v.Initiator), SourceSystem: orUnknown(v.SourceSystem), Reason: orUnknown(v.Reason),
		Priority: v.Priority, Tags: jsonOr(v.Tags, "null"),
		TotalSteps: v.Counts.Total, PendingSteps: v.Counts.Pending, InProgressSteps: v.Counts.InProgress,
		CompletedSteps: v.Counts.Completed, FailedSteps: v.Counts.Failed, ReadySteps: v.Counts.Ready,
		ExecutionStatus: ec.ExecutionStatus, RecommendedAction: ec.RecommendedAction,
		CompletionPercentage: ec.CompletionPercentage, HealthStatus: ec.HealthStatus,
		Steps: make([]stepReadiness, 0, len(v.Steps)),
	}
	for _, s := range v.Steps {
		r.Steps = append(r.Steps, stepReadiness{
			WorkflowStepUUID: s.WorkflowStepUUID.String(), TaskUUID: s.TaskUUID.String(),
			NamedStepUUID: s.NamedStepUUID.String(), Name: s.Name, CurrentState: string(s.CurrentState),
			DependenciesSatisfied: s.DependenciesSatisfied, RetryEligible: s.RetryEligible,
			ReadyForExecution: s.ReadyForExecution, LastFailureAt: tsPtr(s.LastFailureAt, layoutNaive),
			NextRetryAt: tsPtr(s.NextRetryAt, layoutNaive), TotalParents: s.TotalParents,
			CompletedParents: s.CompletedParents, Attempts: s.Attempts, RetryLimit: s.RetryLimit,
			BackoffRequestSeconds: s.BackoffRequestSeconds, LastAttemptedAt: tsPtr(s.LastAttemptedAt, layoutNaive),
		})
	}
	return r
}

func newStepResponse(s ports.StepView) stepResponse {
	return stepResponse{
		StepUUID: s.WorkflowStepUUID.String(), TaskUUID: s.TaskUUID.String(), Name: s.Name,
		CreatedAt: ts(s.CreatedAt, layoutUTC), UpdatedAt: ts(s.UpdatedAt, layoutUTC),
		CompletedAt: tsPtr(s.ProcessedAt, layoutUTC), Results: jsonOr(s.Results, "null"),
		CurrentState: string(s.CurrentState), DependenciesSatisfied: s.DependenciesSatisfied,
		RetryEligible: s.RetryEligible, ReadyForExecution: s.ReadyForExecution,
		TotalParents: s.TotalParents, CompletedParents: s.CompletedParents, Attempts: s.Attempts,
		RetryLimit: s.RetryLimit, LastFailureAt: tsPtr(s.LastFailureAt, layoutUTC),
		NextRetryAt: tsPtr(s.NextRetryAt, layoutUTC), LastAttemptedAt: tsPtr(s.LastAttemptedAt, layoutUTC),
	}
}

// templateSummary is one entry of GET /v1/templates.
type templateSummary struct {
	Namespace   string  `json:"namespace"`
	Name        string  `json:"name"`
	Version     string  `json:"version"`
	Description *string `json:"description"`
	UpdatedAt   string  `json:"updated_at"`
}

// templateDetail is GET /v1/templates/{ns}/{name}/{version}: the summary and
// the stored (unresolved) template.
type templateDetail struct {
	templateSummary
	Configuration json.RawMessage `json:"configuration"`
}

func newTemplateSummary(t ports.RegisteredTemplate) templateSummary {
	return templateSummary{Namespace: t.Namespace, Name: t.Name, Version: t.Version,
		Description: t.Description, UpdatedAt: ts(t.UpdatedAt, layoutUTC)}
}
