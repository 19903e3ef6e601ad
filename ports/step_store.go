package ports

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
)

// StepSnapshot is what the worker reads about a step to decide what to do
// with its message (contract §9.3 step 2) and to build the handler payload.
type StepSnapshot struct {
	Step                  domain.StepInfo
	State                 domain.StepState
	DependenciesSatisfied bool
	Processed             bool
	LastAttemptedAt       *time.Time
	Task                  domain.TaskInfo
	TaskState             domain.TaskState
	// Configuration is the task's named task configuration: the unresolved template JSON.
	Configuration json.RawMessage
	// DependencyResults is set on the snapshot of a winning claim (ClaimStep,
	// or LoadAndClaim when claimed): what StepStore.DependencyResults returns
	// for the step (non-nil, empty for a root step), read with the claim so
	// that building the handler payload costs no further round trip. nil
	// otherwise, or when the store does not provide it; the caller then asks
	// DependencyResults.
	DependencyResults map[string]json.RawMessage
}

// StepOutcome is a handler outcome to persist (contract §9.3 step 5).
type StepOutcome struct {
	TaskUUID uuid.UUID
	StepUUID uuid.UUID
	Result   domain.StepExecutionResult
	// Queue and MsgID identify the step message deleted in the same transaction.
	Queue    string
	MsgID    int64
	WorkerID string
	// Headers are the pgmq headers of the completion message (W3C trace
	// context); nil sends headers NULL.
	Headers json.RawMessage
}

// StepStore is the worker's view of workflow steps.
type StepStore interface {
	// LoadStep returns the step, its current state and its task; ErrNotFound if missing.
	LoadStep(ctx context.Context, stepUUID uuid.UUID) (StepSnapshot, error)
	// ClaimStep atomically moves a pending (dependencies satisfied) or enqueued
	// step to in_progress. Losers get *domain.NotClaimableError with the current state.
	// The winner's snapshot may carry DependencyResults.
	ClaimStep(ctx context.Context, stepUUID uuid.UUID, workerID string) (StepSnapshot, error)
	// LoadAndClaim is LoadStep and ClaimStep as one atomic operation, for the
	// common case of a message whose step is claimable (contract §9.3 steps
	// 2–3): under the step's lock it reads the snapshot and, only when the
	// step belongs to taskUUID, its task's namespace is namespace and the
	// state is enqueued or pending with dependencies satisfied, claims it
	// exactly as ClaimStep does. claimed reports whether it did; when false
	// nothing was written and snap is the current state for the caller's
	// decision table (mismatch, stale, in progress, …); when true, snap is the
	// post-claim state and may carry DependencyResults. A missing step wraps
	// ErrNotFound. It is on the port, not an optional extra, so that
	// decorators (metrics) forward it and every worker takes the path that
	// saves the separate LoadStep round trip per message.
	LoadAndClaim(ctx context.Context, stepUUID, taskUUID uuid.UUID, namespace, workerID string) (snap StepSnapshot, claimed bool, err error)
	// DependencyResults maps step name → result over all processed transitive
	// ancestors with results (contract §9.1, D-r).
	DependencyResults(ctx context.Context, stepUUID uuid.UUID) (map[string]json.RawMessage, error)
	// PersistOutcome, in one transaction: compare-and-set in_progress →
	// complete/error with results, send the completion message and delete the
	// step message. It returns false (and still deletes the message, sending
	// nothing) when the step was no longer in_progress.
	PersistOutcome(ctx context.Context, o StepOutcome) (bool, error)
}
