package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// CancelTask implements ports.TaskCanceller (contract §10.5): in one
// transaction, lock the task row (terminal → ConflictError), cancel every step
// not complete, cancelled or resolved_manually in workflow_step_uuid order,
// then cancel the task. Workers see the terminal step state and drop queued
// messages; a running handler's outcome then fails its compare-and-set.
func (s *OrchestrationStore) CancelTask(ctx context.Context, taskUUID uuid.UUID) (int, error) {
	cancelled := 0
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		lock, err := LockTaskTx(ctx, tx, taskUUID)
		if err != nil {
			if errors.Is(err, ports.ErrNotFound) {
				return &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
			}
			return err
		}
		if lock.State.IsTerminal() {
			return &ports.ConflictError{Message: fmt.Sprintf("Cannot cancel task in state %s", lock.State)}
		}
		var steps []uuid.UUID
		if err := tx.SelectContext(ctx, &steps, `
SELECT ws.workflow_step_uuid FROM tasker_workflow_steps ws
LEFT JOIN tasker_workflow_step_transitions cur
       ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
WHERE ws.task_uuid = $1
  AND COALESCE(cur.to_state, 'pending') NOT IN ('complete', 'cancelled', 'resolved_manually')
ORDER BY ws.workflow_step_uuid`, taskUUID); err != nil {
			return fmt.Errorf("steps to cancel: %w", err)
		}
		for _, st := range steps {
			l, err := LockStepTx(ctx, tx, st)
			if err != nil {
				return err
			}
			if l.State.IsTerminal() {
				continue // finished between the select and the lock
			}
			if _, _, err := TransitionStepTx(ctx, tx, st, domain.StepEvent{Type: domain.EventCancel}, nil); err != nil {
				return err
			}
			cancelled++
		}
		_, _, err = TransitionTaskTx(ctx, tx, taskUUID, domain.TaskEvent{Type: domain.EventCancel}, nil)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cancel task %s: %w", taskUUID, err)
	}
	return cancelled, nil
}

// ResolveStep implements ports.TaskCanceller (contract §7.5): in one
// transaction, lock the task then the step, fire ResolveManually with the
// resolution as extra metadata, Reset and Start a task in error so
// dependants can run, then evaluate finalization.
func (s *OrchestrationStore) ResolveStep(ctx context.Context, taskUUID, stepUUID uuid.UUID, r ports.ManualResolution) (ports.FinalizationReport, error) {
	var rep ports.FinalizationReport
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		lock, err := LockTaskTx(ctx, tx, taskUUID)
		if err != nil {
			if errors.Is(err, ports.ErrNotFound) {
				return &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
			}
			return err
		}
		step, err := LockStepTx(ctx, tx, stepUUID)
		if err != nil || step.TaskUUID != taskUUID {
			if err == nil || errors.Is(err, ports.ErrNotFound) {
				return &ports.NotFoundError{What: fmt.Sprintf("Step not found: %s", stepUUID)}
			}
			return err
		}
		extra := map[string]any{
			"resolution_data": json.RawMessage(orchJSONOrNull(r.ResolutionData)),
			"resolved_by":     r.ResolvedBy,
			"reason":          r.Reason,
		}
		if _, _, err := TransitionStepTx(ctx, tx, stepUUID, domain.StepEvent{Type: domain.EventResolveManually}, extra); err != nil {
			return asConflict(err)
		}
		if lock.State == domain.TaskError {
			if _, _, err := TransitionTaskTx(ctx, tx, taskUUID, domain.TaskEvent{Type: domain.EventReset}, nil); err != nil {
				return asConflict(err)
			}
			if _, _, err := TransitionTaskTx(ctx, tx, taskUUID, domain.TaskEvent{Type: domain.EventStart}, nil); err != nil {
				return asConflict(err)
			}
		}
		rep, err = s.finalizeLockedTask(ctx, tx, taskUUID)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("resolve step %s of task %s: %w", stepUUID, taskUUID, err)
	}
	return rep, nil
}

// asConflict turns an invalid state transition into the ConflictError the
// API reports as 400; other errors pass through.
func asConflict(err error) error {
	var inv *domain.InvalidTransitionError
	if errors.As(err, &inv) {
		return &ports.ConflictError{Message: inv.Error()}
	}
	return err
}

func orchJSONOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
