package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/ports"
)

// TaskHistory implements ports.TaskHistory for the dashboard.
type TaskHistory struct {
	db *sqlx.DB
}

var _ ports.TaskHistory = (*TaskHistory)(nil)

// NewTaskHistory returns the reader.
func NewTaskHistory(db *sqlx.DB) *TaskHistory { return &TaskHistory{db: db} }

// StepTransitions implements ports.TaskHistory. Timestamps are stored as UTC
// without a zone (§3) and returned as UTC.
func (h *TaskHistory) StepTransitions(ctx context.Context, taskUUID uuid.UUID) ([]ports.StepTransition, error) {
	var rows []struct {
		StepUUID  uuid.UUID `db:"workflow_step_uuid"`
		FromState *string   `db:"from_state"`
		ToState   string    `db:"to_state"`
		CreatedAt time.Time `db:"created_at"`
	}
	err := h.db.SelectContext(ctx, &rows, `
SELECT t.workflow_step_uuid, t.from_state, t.to_state, t.created_at
FROM tasker_workflow_step_transitions t
JOIN tasker_workflow_steps s ON s.workflow_step_uuid = t.workflow_step_uuid
WHERE s.task_uuid = $1
ORDER BY t.workflow_step_uuid, t.sort_key`, taskUUID)
	if err != nil {
		return nil, fmt.Errorf("step transitions of task %s: %w", taskUUID, err)
	}
	out := make([]ports.StepTransition, len(rows))
	for i, r := range rows {
		out[i] = ports.StepTransition{StepUUID: r.StepUUID, FromState: r.FromState, ToState: r.ToState, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, nil
}

// DeadLetters implements ports.TaskHistory.
func (h *TaskHistory) DeadLetters(ctx context.Context, limit int) ([]ports.DeadLetterEntry, bool, error) {
	var exists bool
	if err := h.db.GetContext(ctx, &exists, `SELECT to_regclass('tasker_go_dlq_entries') IS NOT NULL`); err != nil {
		return nil, false, fmt.Errorf("dead-letter table: %w", err)
	}
	if !exists {
		return nil, false, nil
	}
	var rows []struct {
		EntryUUID uuid.UUID  `db:"entry_uuid"`
		TaskUUID  *uuid.UUID `db:"task_uuid"`
		StepUUID  *uuid.UUID `db:"step_uuid"`
		Namespace string     `db:"namespace"`
		Reason    string     `db:"reason"`
		Queue     *string    `db:"queue_name"`
		Status    string     `db:"status"`
		Detail    string     `db:"detail"`
		CreatedAt time.Time  `db:"created_at"`
	}
	if err := h.db.SelectContext(ctx, &rows, `
SELECT entry_uuid, task_uuid, step_uuid, namespace, reason, queue_name, status, detail, created_at
FROM tasker_go_dlq_entries ORDER BY created_at DESC LIMIT $1`, limit); err != nil {
		return nil, true, fmt.Errorf("dead letters: %w", err)
	}
	out := make([]ports.DeadLetterEntry, len(rows))
	for i, r := range rows {
		out[i] = ports.DeadLetterEntry{EntryUUID: r.EntryUUID, TaskUUID: r.TaskUUID, StepUUID: r.StepUUID, Namespace: r.Namespace,
			Reason: r.Reason, Queue: r.Queue, Status: r.Status, Detail: r.Detail, CreatedAt: r.CreatedAt.UTC()}
	}
	return out, true, nil
}
