package ports

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// StepTransition is one row of a step's state history.
type StepTransition struct {
	StepUUID  uuid.UUID
	FromState *string
	ToState   string
	CreatedAt time.Time
}

// DeadLetterEntry is one row of the dead-letter table (tasker_go_dlq_entries).
type DeadLetterEntry struct {
	EntryUUID uuid.UUID
	TaskUUID  *uuid.UUID
	StepUUID  *uuid.UUID
	Namespace string
	Reason    string
	Queue     *string
	Status    string
	Detail    string
	CreatedAt time.Time
}

// TaskHistory reads what the dashboard shows beyond the API's views: the
// transition history of a task's steps (the waterfall) and the dead letters.
type TaskHistory interface {
	// StepTransitions returns every transition of the task's steps, oldest
	// first (by step, then sort order).
	StepTransitions(ctx context.Context, taskUUID uuid.UUID) ([]StepTransition, error)
	// DeadLetters returns up to limit entries, newest first; ok is false
	// when the database has no dead-letter table (a schema without it).
	DeadLetters(ctx context.Context, limit int) (entries []DeadLetterEntry, ok bool, err error)
}
