package ports

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
)

// StepView is one workflow step with its readiness (contract §2.11, §7.3, §7.5).
// Timestamps are UTC.
type StepView struct {
	WorkflowStepUUID      uuid.UUID
	TaskUUID              uuid.UUID
	NamedStepUUID         uuid.UUID
	Name                  string
	CurrentState          domain.StepState
	DependenciesSatisfied bool
	RetryEligible         bool
	ReadyForExecution     bool
	LastFailureAt         *time.Time
	NextRetryAt           *time.Time
	TotalParents          int
	CompletedParents      int
	Attempts              int
	RetryLimit            int
	Retryable             bool
	BackoffRequestSeconds *int
	LastAttemptedAt       *time.Time
	CreatedAt             time.Time
	UpdatedAt             time.Time
	ProcessedAt           *time.Time
	Results               json.RawMessage
}

// TaskView is a task with its template identity, state and step readiness.
type TaskView struct {
	TaskUUID      uuid.UUID
	NamedTaskUUID uuid.UUID
	Name          string
	Namespace     string
	Version       string
	State         domain.TaskState
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CompletedAt   *time.Time
	Context       json.RawMessage
	Initiator     *string
	SourceSystem  *string
	Reason        *string
	Priority      int
	Tags          json.RawMessage
	// Steps is ordered by workflow_step_uuid; empty in list results.
	Steps []StepView
	// Counts are the execution-context counts of §2.11.
	Counts domain.StepCounts
}

// TaskFilter selects a page of tasks (GET /v1/tasks). Empty strings do not filter.
type TaskFilter struct {
	Page, PerPage int
	Namespace     string
	Status        domain.TaskState
	Initiator     string
	SourceSystem  string
}

// TaskPage is one page of tasks, newest created_at first.
type TaskPage struct {
	Tasks      []TaskView
	TotalCount int64
}

// TaskQuery reads tasks and steps for the API.
type TaskQuery interface {
	// GetTask returns the task with its steps; NotFoundError if missing.
	GetTask(ctx context.Context, taskUUID uuid.UUID) (TaskView, error)
	// ListTasks returns one page of tasks without steps (counts included).
	ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error)
	// ListSteps returns the task's steps ordered by created_at; NotFoundError for an unknown task.
	ListSteps(ctx context.Context, taskUUID uuid.UUID) ([]StepView, error)
	// GetStep returns one step of the task; NotFoundError if missing or of another task.
	GetStep(ctx context.Context, taskUUID, stepUUID uuid.UUID) (StepView, error)
}

// Facts returns what finalization and the §2.11 counts need about the step.
func (v StepView) Facts() domain.StepFacts {
	return domain.StepFacts{State: v.CurrentState, Retryable: v.Retryable, Attempts: v.Attempts,
		RetryLimit: v.RetryLimit, Ready: v.ReadyForExecution}
}
