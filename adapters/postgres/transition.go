package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// StepLock is what LockStepTx read about a step while holding its row lock.
type StepLock struct {
	StepUUID uuid.UUID
	TaskUUID uuid.UUID
	// State is the current state (to_state of the most_recent row; pending when
	// the step has no transition row, in which case HasTransition is false).
	State         domain.StepState
	HasTransition bool
	// DependenciesSatisfied is true when every parent is complete or
	// resolved_manually (true without parents), read after the lock was taken.
	DependenciesSatisfied bool
}

// TaskLock is what LockTaskTx read about a task while holding its row lock.
type TaskLock struct {
	TaskUUID      uuid.UUID
	State         domain.TaskState
	HasTransition bool
}

const lockStepSQL = `SELECT task_uuid FROM tasker_workflow_steps WHERE workflow_step_uuid = $1 FOR UPDATE`

// stepFactsSQL runs as a separate statement after the lock: under READ
// COMMITTED a statement's snapshot predates a lock wait, so reading the state
// in the locking statement would miss a transition committed by the lock holder.
const stepFactsSQL = `
SELECT
  (SELECT t.to_state FROM tasker_workflow_step_transitions t
    WHERE t.workflow_step_uuid = $1 AND t.most_recent = true) AS state,
  NOT EXISTS (
    SELECT 1 FROM tasker_workflow_step_edges e
    LEFT JOIN tasker_workflow_step_transitions pt
      ON pt.workflow_step_uuid = e.from_step_uuid AND pt.most_recent = true
    WHERE e.to_step_uuid = $1
      AND COALESCE(pt.to_state, 'pending') NOT IN ('complete', 'resolved_manually')
  ) AS deps_satisfied`

// LockStepTx locks the step row FOR UPDATE in tx and then reads its current
// state and whether its dependencies are satisfied (contract §3.3 steps 1–2).
// Locking a row tx already holds is a no-op, so callers may lock first to
// inspect the step and then call TransitionStepTx. A missing step yields an
// error wrapping ports.ErrNotFound. Lock order: task row before step rows,
// step rows in workflow_step_uuid order.
func LockStepTx(ctx context.Context, tx *sqlx.Tx, stepUUID uuid.UUID) (StepLock, error) {
	l := StepLock{StepUUID: stepUUID}
	if err := tx.QueryRowxContext(ctx, lockStepSQL, stepUUID).Scan(&l.TaskUUID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return l, fmt.Errorf("lock step %s: %w", stepUUID, ports.ErrNotFound)
		}
		return l, fmt.Errorf("lock step %s: %w", stepUUID, err)
	}
	var state sql.NullString
	if err := tx.QueryRowxContext(ctx, stepFactsSQL, stepUUID).Scan(&state, &l.DependenciesSatisfied); err != nil {
		return l, fmt.Errorf("read state of step %s: %w", stepUUID, err)
	}
	s, err := domain.ParseStepState(state.String)
	if err != nil {
		return l, fmt.Errorf("read state of step %s: %w", stepUUID, err)
	}
	l.State, l.HasTransition = s, state.Valid
	return l, nil
}

// LockTaskTx locks the task row FOR UPDATE in tx and reads its current state.
// A missing task yields an error wrapping ports.ErrNotFound.
func LockTaskTx(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID) (TaskLock, error) {
	l := TaskLock{TaskUUID: taskUUID}
	var one int
	err := tx.QueryRowxContext(ctx, `SELECT 1 FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE`, taskUUID).Scan(&one)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return l, fmt.Errorf("lock task %s: %w", taskUUID, ports.ErrNotFound)
		}
		return l, fmt.Errorf("lock task %s: %w", taskUUID, err)
	}
	var state sql.NullString
	err = tx.QueryRowxContext(ctx, `SELECT to_state FROM tasker_task_transitions
		WHERE task_uuid = $1 AND most_recent = true`, taskUUID).Scan(&state)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("read state of task %s: %w", taskUUID, err)
	}
	s, err := domain.ParseTaskState(state.String)
	if err != nil {
		return l, fmt.Errorf("read state of task %s: %w", taskUUID, err)
	}
	l.State, l.HasTransition = s, state.Valid
	return l, nil
}

// TransitionStepTx fires ev on a step inside the caller's transaction tx,
// following contract §3.3: lock the step row (LockStepTx), read the current
// state and the dependency guard, validate with domain.NextStepState, write the
// transition row (sort_key = MAX+1, previous most_recent row flipped with
// updated_at = NOW(), from_state = the old state or 'pending' when none,
// metadata = domain.StepEventMetadata(ev, now, extra)) and apply the step-row
// side effects of §3.2. For Complete and Fail, results is set to the JSON of
// ev.Result when it is non-nil and left unchanged otherwise (D-a).
//
// An invalid event returns the *domain.InvalidTransitionError wrapped with %w
// (use errors.As) having written nothing; the caller should roll back, as any
// error leaves tx in an undefined state. from and to are the states before
// and after the transition. extra adds top-level metadata keys (e.g.
// {"worker_id": id}); it must not contain "event" or "timestamp".
func TransitionStepTx(ctx context.Context, tx *sqlx.Tx, stepUUID uuid.UUID, ev domain.StepEvent, extra map[string]any) (from, to domain.StepState, err error) {
	l, err := LockStepTx(ctx, tx, stepUUID)
	if err != nil {
		return "", "", err
	}
	return applyStepTransition(ctx, tx, l, ev, extra)
}

// applyStepTransition writes ev for a step already locked and read into l.
func applyStepTransition(ctx context.Context, tx *sqlx.Tx, l StepLock, ev domain.StepEvent, extra map[string]any) (domain.StepState, domain.StepState, error) {
	to, err := domain.NextStepState(l.State, ev.Type, domain.StepGuard{DependenciesSatisfied: l.DependenciesSatisfied})
	if err != nil {
		return l.State, "", fmt.Errorf("transition step %s: %w", l.StepUUID, err)
	}
	meta, err := domain.StepEventMetadata(ev, time.Now(), extra)
	if err != nil {
		return l.State, "", fmt.Errorf("transition step %s: %w", l.StepUUID, err)
	}
	if err := writeTransitionRow(ctx, tx, stepTransitions, l.StepUUID, string(l.State), string(to), meta); err != nil {
		return l.State, "", fmt.Errorf("transition step %s %s→%s: %w", l.StepUUID, l.State, to, err)
	}
	if err := applyStepSideEffects(ctx, tx, l.StepUUID, to, ev.Result); err != nil {
		return l.State, "", fmt.Errorf("transition step %s %s→%s: %w", l.StepUUID, l.State, to, err)
	}
	return l.State, to, nil
}

// TransitionTaskTx fires ev on a task inside tx, like TransitionStepTx: lock
// the task row, read its state, compute the AllStepsComplete guard in SQL
// (every step's current state is complete or resolved_manually; a step
// without a transition row counts as pending), validate with
// domain.NextTaskState, write the row with domain.TaskEventMetadata and apply
// the side effects of §3.1 (→ complete sets complete = true and completed_at =
// NOW(); every target sets updated_at = NOW()). Invalid events return the
// wrapped *domain.InvalidTransitionError having written nothing.
func TransitionTaskTx(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, ev domain.TaskEvent, extra map[string]any) (from, to domain.TaskState, err error) {
	l, err := LockTaskTx(ctx, tx, taskUUID)
	if err != nil {
		return "", "", err
	}
	var guard domain.TaskGuard
	if ev.Type == domain.EventComplete {
		err = tx.QueryRowxContext(ctx, `SELECT NOT EXISTS (
			SELECT 1 FROM tasker_workflow_steps s
			LEFT JOIN tasker_workflow_step_transitions t
			  ON t.workflow_step_uuid = s.workflow_step_uuid AND t.most_recent = true
			WHERE s.task_uuid = $1 AND COALESCE(t.to_state, 'pending') NOT IN ('complete', 'resolved_manually'))`,
			taskUUID).Scan(&guard.AllStepsComplete)
		if err != nil {
			return l.State, "", fmt.Errorf("transition task %s: read step states: %w", taskUUID, err)
		}
	}
	to, err = domain.NextTaskState(l.State, ev.Type, guard)
	if err != nil {
		return l.State, "", fmt.Errorf("transition task %s: %w", taskUUID, err)
	}
	meta, err := domain.TaskEventMetadata(ev, time.Now(), extra)
	if err != nil {
		return l.State, "", fmt.Errorf("transition task %s: %w", taskUUID, err)
	}
	if err := writeTransitionRow(ctx, tx, taskTransitions, taskUUID, string(l.State), string(to), meta); err != nil {
		return l.State, "", fmt.Errorf("transition task %s %s→%s: %w", taskUUID, l.State, to, err)
	}
	q := `UPDATE tasker_tasks SET updated_at = NOW() WHERE task_uuid = $1`
	if to == domain.TaskComplete {
		q = `UPDATE tasker_tasks SET complete = true, completed_at = NOW(), updated_at = NOW() WHERE task_uuid = $1`
	}
	if _, err := tx.ExecContext(ctx, q, taskUUID); err != nil {
		return l.State, "", fmt.Errorf("transition task %s: side effects: %w", taskUUID, err)
	}
	return l.State, to, nil
}

// transitionTable names the transition table of one entity kind.
type transitionTable struct{ table, entityCol string }

var (
	stepTransitions = transitionTable{"tasker_workflow_step_transitions", "workflow_step_uuid"}
	taskTransitions = transitionTable{"tasker_task_transitions", "task_uuid"}
)

// writeTransitionRow performs contract §3.3 steps 3–5 for a locked entity:
// flip the current row, then insert the new one with sort_key = MAX + 1
// computed in the INSERT itself (the entity row lock serialises writers).
func writeTransitionRow(ctx context.Context, tx *sqlx.Tx, tt transitionTable, id uuid.UUID, from, to string, meta json.RawMessage) error {
	q := `UPDATE ` + tt.table + ` SET most_recent = false, updated_at = NOW() WHERE ` + tt.entityCol + ` = $1 AND most_recent = true`
	if _, err := tx.ExecContext(ctx, q, id); err != nil {
		return fmt.Errorf("clear most_recent: %w", err)
	}
	q = `INSERT INTO ` + tt.table + ` (` + tt.entityCol + `, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
		SELECT $1, $2, $3, $4::jsonb, COALESCE(MAX(sort_key), 0) + 1, true, NOW(), NOW()
		FROM ` + tt.table + ` WHERE ` + tt.entityCol + ` = $1`
	if _, err := tx.ExecContext(ctx, q, id, to, from, string(meta)); err != nil {
		return fmt.Errorf("insert transition: %w", err)
	}
	return nil
}

// applyStepSideEffects updates tasker_workflow_steps for the target state (contract §3.2).
func applyStepSideEffects(ctx context.Context, tx *sqlx.Tx, stepUUID uuid.UUID, to domain.StepState, result *domain.StepExecutionResult) error {
	var resultsJSON any // nil keeps results unchanged via COALESCE
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		resultsJSON = string(b)
	}
	var q string
	args := []any{stepUUID}
	switch to {
	case domain.StepPending, domain.StepEnqueued:
		q = `UPDATE tasker_workflow_steps SET updated_at = NOW() WHERE workflow_step_uuid = $1`
	case domain.StepInProgress:
		q = `UPDATE tasker_workflow_steps SET in_process = true, attempts = COALESCE(attempts, 0) + 1,
			last_attempted_at = NOW(), updated_at = NOW() WHERE workflow_step_uuid = $1`
	case domain.StepComplete:
		q = `UPDATE tasker_workflow_steps SET processed = true, in_process = false, processed_at = NOW(),
			results = COALESCE($2::jsonb, results), updated_at = NOW() WHERE workflow_step_uuid = $1`
		args = append(args, resultsJSON)
	case domain.StepError:
		q = `UPDATE tasker_workflow_steps SET in_process = false,
			results = COALESCE($2::jsonb, results), updated_at = NOW() WHERE workflow_step_uuid = $1`
		args = append(args, resultsJSON)
	case domain.StepCancelled, domain.StepResolvedManually:
		q = `UPDATE tasker_workflow_steps SET in_process = false, processed = true, processed_at = NOW(),
			updated_at = NOW() WHERE workflow_step_uuid = $1`
	default:
		return fmt.Errorf("no side effects defined for state %q", to)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("side effects: %w", err)
	}
	return nil
}

// CurrentStepState returns the current state of a step outside any lock:
// to_state of its most_recent row, pending when it has none. It does not
// check that the step exists.
func CurrentStepState(ctx context.Context, q sqlx.QueryerContext, stepUUID uuid.UUID) (domain.StepState, error) {
	return currentState(ctx, q, "tasker_workflow_step_transitions", "workflow_step_uuid", "step", stepUUID, domain.ParseStepState)
}

// CurrentTaskState returns the current state of a task, pending when it has
// no transition row. It does not check that the task exists.
func CurrentTaskState(ctx context.Context, q sqlx.QueryerContext, taskUUID uuid.UUID) (domain.TaskState, error) {
	return currentState(ctx, q, "tasker_task_transitions", "task_uuid", "task", taskUUID, domain.ParseTaskState)
}

// currentState reads to_state of the most_recent row of table for the step
// or task whose key column is id. No row is read as "", which parse takes
// for the initial state (pending), as the contract does for a step or task
// without transitions. kind names the entity in errors.
func currentState[S any](ctx context.Context, q sqlx.QueryerContext, table, key, kind string, id uuid.UUID,
	parse func(string) (S, error)) (S, error) {
	var zero S
	var s string
	err := sqlx.GetContext(ctx, q, &s, `SELECT to_state FROM `+table+`
		WHERE `+key+` = $1 AND most_recent = true`, id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return zero, fmt.Errorf("current state of %s %s: %w", kind, id, err)
	}
	st, err := parse(s)
	if err != nil {
		return zero, fmt.Errorf("current state of %s %s: %w", kind, id, err)
	}
	return st, nil
}
