package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// LoadStepResult implements ports.StepResultStore.
func (s *OrchestrationStore) LoadStepResult(ctx context.Context, stepUUID uuid.UUID) (ports.StepResultView, error) {
	var row struct {
		TaskUUID   uuid.UUID      `db:"task_uuid"`
		State      sql.NullString `db:"state"`
		Retryable  bool           `db:"retryable"`
		Attempts   int            `db:"attempts"`
		RetryLimit int            `db:"retry_limit"`
		Results    []byte         `db:"results"`
	}
	err := s.db.GetContext(ctx, &row, `
SELECT ws.task_uuid, cur.to_state AS state, COALESCE(ws.retryable, true) AS retryable,
       COALESCE(ws.attempts, 0) AS attempts, COALESCE(ws.retry_limit, 3) AS retry_limit, ws.results
FROM tasker_workflow_steps ws
LEFT JOIN tasker_workflow_step_transitions cur
       ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
WHERE ws.workflow_step_uuid = $1`, stepUUID)
	if errors.Is(err, sql.ErrNoRows) {
		return ports.StepResultView{}, &ports.NotFoundError{What: fmt.Sprintf("Step not found: %s", stepUUID)}
	}
	if err != nil {
		return ports.StepResultView{}, fmt.Errorf("load step %s: %w", stepUUID, err)
	}
	state, err := domain.ParseStepState(row.State.String)
	if err != nil {
		return ports.StepResultView{}, fmt.Errorf("load step %s: %w", stepUUID, err)
	}
	return ports.StepResultView{
		TaskUUID: row.TaskUUID, StepUUID: stepUUID, State: state, Retryable: row.Retryable,
		Attempts: row.Attempts, RetryLimit: row.RetryLimit, Results: row.Results,
	}, nil
}

// SetBackoff implements ports.StepResultStore. The state condition makes a
// late or duplicate result harmless once the step has been retried.
func (s *OrchestrationStore) SetBackoff(ctx context.Context, stepUUID uuid.UUID, seconds int) (bool, error) {
	return s.updateErrorStep(ctx, "set backoff of", stepUUID, "backoff_request_seconds = $2", seconds)
}

// MarkNotRetryable implements ports.StepResultStore.
func (s *OrchestrationStore) MarkNotRetryable(ctx context.Context, stepUUID uuid.UUID) (bool, error) {
	return s.updateErrorStep(ctx, "mark not retryable", stepUUID, "retryable = false")
}

// updateErrorStep applies set to a step whose current state is error.
func (s *OrchestrationStore) updateErrorStep(ctx context.Context, what string, stepUUID uuid.UUID, set string, args ...any) (bool, error) {
	res, err := s.db.ExecContext(ctx, `
UPDATE tasker_workflow_steps ws SET `+set+`, updated_at = NOW()
WHERE ws.workflow_step_uuid = $1
  AND EXISTS (SELECT 1 FROM tasker_workflow_step_transitions cur
              WHERE cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
                AND cur.to_state = 'error')`, append([]any{stepUUID}, args...)...)
	if err != nil {
		return false, fmt.Errorf("%s step %s: %w", what, stepUUID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s step %s: %w", what, stepUUID, err)
	}
	return n == 1, nil
}

// FinalizeTask implements ports.TaskFinalizer.
func (s *OrchestrationStore) FinalizeTask(ctx context.Context, taskUUID uuid.UUID) (ports.FinalizationReport, error) {
	var rep ports.FinalizationReport
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		rep, err = s.finalizeLockedTask(ctx, tx, taskUUID)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("finalize task %s: %w", taskUUID, err)
	}
	return rep, nil
}

// FinalizeAndEnqueue implements ports.TaskFinalizer: finalization and, for
// a task that stays active, the enqueueing of its ready steps, in one
// transaction with one task lock and one readiness evaluation (the result
// processor's hot path, §10.2 step 3).
func (s *OrchestrationStore) FinalizeAndEnqueue(ctx context.Context, taskUUID uuid.UUID) (ports.FinalizationReport, ports.EnqueueReport, error) {
	var rep ports.FinalizationReport
	enq := ports.EnqueueReport{TaskUUID: taskUUID}
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var steps []ports.StepView
		var err error
		rep, steps, err = s.finalizeLockedTaskSteps(ctx, tx, taskUUID)
		if err != nil || rep.To != rep.From || (rep.To != domain.TaskPending && rep.To != domain.TaskInProgress) {
			return err
		}
		ready := []readyStep{}
		for _, st := range steps {
			if st.ReadyForExecution {
				ready = append(ready, readyStep{StepUUID: st.WorkflowStepUUID, State: string(st.CurrentState)})
			}
		}
		enq, err = s.enqueueLockedTask(ctx, tx, taskUUID, rep.To, ready)
		return err
	})
	if err != nil {
		return rep, enq, fmt.Errorf("finalize and enqueue task %s: %w", taskUUID, err)
	}
	return rep, enq, nil
}

// finalizeLockedTask is §10.4 inside tx: lock the task row, classify the
// steps with the shared readiness SQL and fire Start+Complete or Fail.
func (s *OrchestrationStore) finalizeLockedTask(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID) (ports.FinalizationReport, error) {
	rep, _, err := s.finalizeLockedTaskSteps(ctx, tx, taskUUID)
	return rep, err
}

// finalizeLockedTaskSteps is finalizeLockedTask that also returns the step
// views it evaluated (nil for a terminal or error task).
func (s *OrchestrationStore) finalizeLockedTaskSteps(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID) (ports.FinalizationReport, []ports.StepView, error) {
	lock, err := LockTaskTx(ctx, tx, taskUUID)
	if err != nil {
		if errors.Is(err, ports.ErrNotFound) {
			return ports.FinalizationReport{}, nil, &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
		}
		return ports.FinalizationReport{}, nil, err
	}
	rep := ports.FinalizationReport{TaskUUID: taskUUID, From: lock.State, To: lock.State}
	if lock.State.IsTerminal() || lock.State == domain.TaskError {
		return rep, nil, nil // nothing to evaluate; skip the step query
	}
	steps, err := s.taskStepViews(ctx, tx, taskUUID)
	if err != nil {
		return rep, nil, err
	}
	facts := make([]domain.StepFacts, len(steps))
	for i, st := range steps {
		facts[i] = st.Facts()
	}
	switch domain.DecideFinalization(lock.State, facts) {
	case domain.FinalizeComplete:
		if lock.State == domain.TaskPending {
			if _, _, err := TransitionTaskTx(ctx, tx, taskUUID, domain.TaskEvent{Type: domain.EventStart}, nil); err != nil {
				return rep, nil, err
			}
		}
		if _, _, err := TransitionTaskTx(ctx, tx, taskUUID, domain.TaskEvent{Type: domain.EventComplete}, nil); err != nil {
			return rep, nil, err
		}
		rep.To = domain.TaskComplete
	case domain.FinalizeFail:
		if _, _, err := TransitionTaskTx(ctx, tx, taskUUID,
			domain.TaskEvent{Type: domain.EventFail, Message: domain.FinalizationFailMessage}, nil); err != nil {
			return rep, nil, err
		}
		rep.To = domain.TaskError
	}
	return rep, steps, nil
}

// taskStepViews loads the views of one task's steps with a prepared
// statement: the readiness query costs about a millisecond to plan and a
// fraction of that to run, and it is on the result processor's hot path.
// Preparation failures fall back to the plain query.
func (s *OrchestrationStore) taskStepViews(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID) ([]ports.StepView, error) {
	const where, order = "ws.task_uuid = $1", "ws.workflow_step_uuid"
	s.prepareOnce.Do(func() {
		if st, err := s.db.PreparexContext(context.WithoutCancel(ctx), stepViewSQL(where, order)); err == nil {
			s.viewsByTask = st
		}
	})
	if s.viewsByTask == nil {
		return loadStepViews(ctx, tx, where, order, taskUUID)
	}
	var rows []stepViewRow
	if err := tx.StmtxContext(ctx, s.viewsByTask).SelectContext(ctx, &rows, taskUUID); err != nil {
		return nil, fmt.Errorf("load steps of task %s: %w", taskUUID, err)
	}
	return stepViews(rows)
}

// loadStepViews runs stepViewSQL with one filter.
func loadStepViews(ctx context.Context, q sqlx.QueryerContext, where, orderBy string, args ...any) ([]ports.StepView, error) {
	var rows []stepViewRow
	if err := sqlx.SelectContext(ctx, q, &rows, stepViewSQL(where, orderBy), args...); err != nil {
		return nil, fmt.Errorf("load steps: %w", err)
	}
	return stepViews(rows)
}

func stepViews(rows []stepViewRow) ([]ports.StepView, error) {
	out := make([]ports.StepView, len(rows))
	for i, r := range rows {
		v, err := r.view()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
