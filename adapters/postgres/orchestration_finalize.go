package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// lockTaskSQL takes the task row lock of finalization (§10.4).
const lockTaskSQL = `SELECT 1 FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE`

// FinalizeTask implements ports.TaskFinalizer.
func (s *OrchestrationStore) FinalizeTask(ctx context.Context, taskUUID uuid.UUID) (ports.FinalizationReport, error) {
	rep, err := s.finalize(ctx, taskUUID)
	if err != nil {
		return rep, fmt.Errorf("finalize task %s: %w", taskUUID, err)
	}
	return rep, nil
}

// FinalizeAndEnqueue implements ports.TaskFinalizer: a batch of one
// (ProcessTasks) that waits for the task lock and deletes consumed in its
// transaction. A missing task is a NotFoundError with nothing deleted.
func (s *OrchestrationStore) FinalizeAndEnqueue(ctx context.Context, taskUUID uuid.UUID, consumed ports.ConsumedMessages) (ports.FinalizationReport, ports.EnqueueReport, error) {
	fin := ports.FinalizationReport{TaskUUID: taskUUID}
	enq := ports.EnqueueReport{TaskUUID: taskUUID}
	batch := ports.TaskBatch{Queue: consumed.Queue, Tasks: []ports.TaskItem{{TaskUUID: taskUUID}}}
	for _, id := range consumed.MsgIDs {
		batch.Tasks = append(batch.Tasks, ports.TaskItem{TaskUUID: taskUUID, MsgID: id})
	}
	rep, err := s.ProcessTasks(ctx, batch)
	if err == nil && len(rep.UnknownTasks) > 0 {
		err = &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
	}
	if len(rep.Finalized) > 0 {
		fin = rep.Finalized[0]
	}
	if err != nil {
		return fin, enq, fmt.Errorf("finalize and enqueue task %s: %w", taskUUID, err)
	}
	if len(rep.Enqueued) > 0 {
		enq = rep.Enqueued[0]
	}
	return fin, enq, nil
}

// finalize runs finalization in one transaction holding the task row lock.
func (s *OrchestrationStore) finalize(ctx context.Context, taskUUID uuid.UUID) (ports.FinalizationReport, error) {
	rep := ports.FinalizationReport{TaskUUID: taskUUID}
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		rep, err = s.finalizeLockedTask(ctx, tx, taskUUID)
		return err
	})
	return rep, err
}

// finalizeLockedTask is §10.4 inside tx: lock the task row, read it and its
// steps, and fire Start+Complete or Fail. Callers that already hold the lock
// (manual resolution) pay nothing for taking it again.
func (s *OrchestrationStore) finalizeLockedTask(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID) (ports.FinalizationReport, error) {
	var one int
	if err := tx.QueryRowxContext(ctx, lockTaskSQL, taskUUID).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ports.FinalizationReport{}, &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
		}
		return ports.FinalizationReport{}, fmt.Errorf("lock task %s: %w", taskUUID, err)
	}
	snap, err := s.readTask(ctx, tx, taskUUID)
	if err != nil {
		return ports.FinalizationReport{}, err
	}
	return s.finalizeLocked(ctx, tx, taskUUID, snap)
}

// taskSnapshot is what taskStepsSQL read about a locked task.
type taskSnapshot struct {
	state     domain.TaskState
	hasState  bool // a transition row exists
	namespace string
	// taskName and createdAt feed logs and the task duration histogram
	// (batch path only).
	taskName  string
	createdAt time.Time
	steps     []ports.StepView
	// locked are the ready steps whose row locks the read took, in
	// workflow_step_uuid order (only with lockReady).
	locked []uuid.UUID
}

// readTask runs taskStepsSQL for a task whose row tx holds.
func (s *OrchestrationStore) readTask(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID) (taskSnapshot, error) {
	var rows []taskStepsRow
	err := tx.SelectContext(ctx, &rows, taskStepsSQL, taskUUID)
	if err != nil {
		return taskSnapshot{}, fmt.Errorf("read task %s and its steps: %w", taskUUID, err)
	}
	var snap taskSnapshot
	var state sql.NullString
	if len(rows) == 0 { // a task without steps: only the state matters
		err := tx.GetContext(ctx, &state, `SELECT (SELECT to_state FROM tasker_task_transitions
			WHERE task_uuid = $1 AND most_recent = true)`, taskUUID)
		if err != nil {
			return snap, fmt.Errorf("read state of task %s: %w", taskUUID, err)
		}
	} else {
		state, snap.namespace = rows[0].TaskState, rows[0].Namespace.String
	}
	if snap.state, err = domain.ParseTaskState(state.String); err != nil {
		return snap, fmt.Errorf("read state of task %s: %w", taskUUID, err)
	}
	snap.hasState = state.Valid
	snap.steps = make([]ports.StepView, len(rows))
	for i, r := range rows {
		if snap.steps[i], err = r.view(); err != nil {
			return snap, err
		}
		if r.Locked {
			snap.locked = append(snap.locked, r.WorkflowStepUUID)
		}
	}
	return snap, nil
}

// finalizeLocked is the decision and action of §10.4 for a task whose row
// tx holds and whose steps snap describes.
func (s *OrchestrationStore) finalizeLocked(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, snap taskSnapshot) (ports.FinalizationReport, error) {
	rep := ports.FinalizationReport{TaskUUID: taskUUID, From: snap.state, To: snap.state}
	events, allDone := finalizationEvents(&snap)
	if len(events) == 0 {
		return rep, nil
	}
	to, err := s.writeTaskTransitions(ctx, tx, taskUUID, snap, events, domain.TaskGuard{AllStepsComplete: allDone})
	if err != nil {
		return rep, err
	}
	rep.To = to
	return rep, nil
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

// taskTransitionsSQL writes a chain of task transitions for a locked task in
// one statement (§3.3): flip the current row, then insert the rows of
// unnest($2 to_state, $3 from_state, $4 metadata) with consecutive sort_keys
// after MAX(sort_key), only the last one most_recent, and apply the §3.1 side
// effects ($5: the chain ends in complete, so complete = true and
// completed_at = NOW()). "(SELECT COUNT(*) FROM flip) >= 0" makes the INSERT
// wait for the flip, as the partial unique index on most_recent requires.
const taskTransitionsSQL = `
WITH flip AS (
	UPDATE tasker_task_transitions SET most_recent = false, updated_at = NOW()
	WHERE task_uuid = $1 AND most_recent = true
	RETURNING 1
),
ins AS (
	INSERT INTO tasker_task_transitions
	  (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT $1, r.to_state, r.from_state, r.metadata::jsonb,
	       (SELECT COALESCE(MAX(x.sort_key), 0) FROM tasker_task_transitions x WHERE x.task_uuid = $1) + r.ord,
	       r.ord = cardinality($2::text[]), NOW(), NOW()
	FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(to_state, from_state, metadata, ord)
	WHERE (SELECT COUNT(*) FROM flip) >= 0
	RETURNING 1
),
upd AS (
	UPDATE tasker_tasks SET complete = complete OR $5::boolean,
	       completed_at = CASE WHEN $5::boolean THEN NOW() ELSE completed_at END, updated_at = NOW()
	WHERE task_uuid = $1
	RETURNING 1
)
SELECT (SELECT COUNT(*) FROM ins) AS inserted, (SELECT COUNT(*) FROM upd) AS updated`

// writeTaskTransitions fires events in order on a task whose row tx holds
// and whose state snap read, validating each against the state machine
// (guard applies to Complete), and returns the final state. Nothing is
// written when an event is invalid.
func (s *OrchestrationStore) writeTaskTransitions(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, snap taskSnapshot, events []domain.TaskEvent, guard domain.TaskGuard) (domain.TaskState, error) {
	from := snap.state
	now := time.Now()
	toStates, fromStates, metas := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
	for i, ev := range events {
		to, err := domain.NextTaskState(from, ev.Type, guard)
		if err != nil {
			return snap.state, fmt.Errorf("transition task %s: %w", taskUUID, err)
		}
		meta, err := domain.TaskEventMetadata(ev, now, nil)
		if err != nil {
			return snap.state, fmt.Errorf("transition task %s: %w", taskUUID, err)
		}
		toStates[i], fromStates[i], metas[i] = string(to), string(from), string(meta)
		from = to
	}
	st, err := s.stmts.inTx(ctx, tx, taskTransitionsSQL)
	if err != nil {
		return snap.state, err
	}
	var n struct {
		Inserted int `db:"inserted"`
		Updated  int `db:"updated"`
	}
	if err := st.GetContext(ctx, &n, taskUUID, pq.Array(toStates), pq.Array(fromStates),
		pq.Array(metas), from == domain.TaskComplete); err != nil {
		return snap.state, fmt.Errorf("transition task %s %s→%s: %w", taskUUID, snap.state, from, err)
	}
	if n.Inserted != len(events) || n.Updated != 1 {
		return snap.state, fmt.Errorf("transition task %s %s→%s: wrote %d rows and updated %d tasks", taskUUID, snap.state, from, n.Inserted, n.Updated)
	}
	return from, nil
}
