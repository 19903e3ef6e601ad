package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// OrchestrationStore holds the orchestration's transactional SQL: the
// enqueue cycle, result bookkeeping, finalization, cancellation and manual
// resolution. It implements ports.StepEnqueuer, ports.StepResultStore,
// ports.TaskFinalizer and ports.TaskCanceller.
type OrchestrationStore struct {
	db *sqlx.DB
	// knownQueues caches namespace queues seen in pgmq.meta, so the per-task
	// transaction checks a queue's existence once per process, not per send.
	knownQueues sync.Map
	// prepareOnce guards viewsByTask, the prepared step-view query of the
	// finalization hot path (nil if preparing failed).
	prepareOnce sync.Once
	viewsByTask *sqlx.Stmt
}

var (
	_ ports.StepEnqueuer    = (*OrchestrationStore)(nil)
	_ ports.StepResultStore = (*OrchestrationStore)(nil)
	_ ports.TaskFinalizer   = (*OrchestrationStore)(nil)
	_ ports.TaskCanceller   = (*OrchestrationStore)(nil)
)

// NewOrchestrationStore returns the store over db (connections in UTC, see Open).
func NewOrchestrationStore(db *sqlx.DB) *OrchestrationStore { return &OrchestrationStore{db: db} }

// candidateSQL selects the enqueue candidates of §10.2: incomplete, pending
// or in_progress, at least one ready step, no live foreign claim, ordered by
// computed priority then age. The processed/in_process pre-filter lets the
// planner discard finished and running steps before the readiness subqueries.
var candidateSQL = `
SELECT t.task_uuid
FROM tasker_tasks t
LEFT JOIN tasker_task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent = true
WHERE t.complete = false
  AND COALESCE(tt.to_state, 'pending') IN ('pending', 'in_progress')
  AND (t.claimed_at IS NULL
       OR t.claimed_at < NOW() - make_interval(secs => t.claim_timeout_seconds)
       OR t.claimed_by = $1)
  AND EXISTS (
      SELECT 1 FROM tasker_workflow_steps ws
      LEFT JOIN tasker_workflow_step_transitions cur
             ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
      WHERE ws.task_uuid = t.task_uuid AND ws.processed = false AND ws.in_process = false
        AND ` + stepReadyPredicate + `)
ORDER BY (CASE
    WHEN t.priority >= 4 THEN t.priority + LEAST(EXTRACT(EPOCH FROM NOW()::timestamp - t.created_at) / 300, 2)
    WHEN t.priority = 3 THEN t.priority + LEAST(EXTRACT(EPOCH FROM NOW()::timestamp - t.created_at) / 180, 3)
    WHEN t.priority = 2 THEN t.priority + LEAST(EXTRACT(EPOCH FROM NOW()::timestamp - t.created_at) / 120, 4)
    WHEN t.priority = 1 THEN t.priority + LEAST(EXTRACT(EPOCH FROM NOW()::timestamp - t.created_at) / 60, 5)
    ELSE LEAST(EXTRACT(EPOCH FROM NOW()::timestamp - t.created_at) / 30, 6)
  END) DESC, t.created_at ASC
LIMIT $2`

// CandidateTasks implements ports.StepEnqueuer.
func (s *OrchestrationStore) CandidateTasks(ctx context.Context, claimerID string, limit int) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	if err := s.db.SelectContext(ctx, &ids, candidateSQL, claimerID, limit); err != nil {
		return nil, fmt.Errorf("select enqueue candidates: %w", err)
	}
	return ids, nil
}

// EnqueueTask implements ports.StepEnqueuer for one known task (the trigger
// after task creation and after a processed result).
func (s *OrchestrationStore) EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (ports.EnqueueReport, bool, error) {
	rep := ports.EnqueueReport{TaskUUID: taskUUID}
	found := false
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var state sql.NullString
		err := tx.QueryRowxContext(ctx, `
SELECT tt.to_state FROM tasker_tasks t
LEFT JOIN tasker_task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent = true
WHERE t.task_uuid = $1 AND t.complete = false
FOR UPDATE OF t SKIP LOCKED`, taskUUID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // missing, complete, or locked by another instance that is enqueueing it
		}
		if err != nil {
			return fmt.Errorf("lock task: %w", err)
		}
		if !state.Valid {
			state.String = string(domain.TaskPending)
		}
		if st := domain.TaskState(state.String); st != domain.TaskPending && st != domain.TaskInProgress {
			return nil
		}
		found = true
		rep, err = s.enqueueLockedTask(ctx, tx, taskUUID, domain.TaskState(state.String), nil)
		return err
	})
	if err != nil {
		return rep, found, fmt.Errorf("enqueue task %s: %w", taskUUID, err)
	}
	return rep, found && rep.StepsEnqueued > 0, nil
}

// readyStep is a step found ready before its row lock was taken, with the
// state it was seen in.
type readyStep struct {
	StepUUID uuid.UUID `db:"workflow_step_uuid"`
	State    string    `db:"state"`
}

// recheckReadySQL evaluates readiness of one step after its row lock.
var recheckReadySQL = `
SELECT ` + stepReadyPredicate + ` FROM tasker_workflow_steps ws
LEFT JOIN tasker_workflow_step_transitions cur
       ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
WHERE ws.workflow_step_uuid = $1`

// enqueueLockedTask is §10.2 step 2 for a task whose row tx holds: each ready
// step, in workflow_step_uuid order, is locked and re-checked, retried if in
// error, sent and marked enqueued; the task is started if it was pending.
// taskState is the task's current state read under its lock. ready may be
// given by a caller that already evaluated readiness in tx; nil means "query
// it". Transitions reuse the step lock already taken (applyStepTransition),
// which saves two round trips per transition on the hot path.
func (s *OrchestrationStore) enqueueLockedTask(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, taskState domain.TaskState, ready []readyStep) (ports.EnqueueReport, error) {
	rep := ports.EnqueueReport{TaskUUID: taskUUID}
	if ready == nil {
		if err := tx.SelectContext(ctx, &ready, `
SELECT ws.workflow_step_uuid, COALESCE(cur.to_state, 'pending') AS state FROM tasker_workflow_steps ws
LEFT JOIN tasker_workflow_step_transitions cur
       ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
WHERE ws.task_uuid = $1 AND `+stepReadyPredicate+`
ORDER BY ws.workflow_step_uuid`, taskUUID); err != nil {
			return rep, fmt.Errorf("ready steps of task %s: %w", taskUUID, err)
		}
	}
	if len(ready) == 0 {
		return rep, nil
	}
	if err := tx.GetContext(ctx, &rep.Namespace, `
SELECT n.name FROM tasker_tasks t
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
WHERE t.task_uuid = $1`, taskUUID); err != nil {
		return rep, fmt.Errorf("namespace of task %s: %w", taskUUID, err)
	}
	queue := domain.QueueName(rep.Namespace)
	if err := s.ensureQueueKnown(ctx, tx, queue); err != nil {
		return rep, err
	}
	for _, rs := range ready {
		stepUUID := rs.StepUUID
		lock, err := LockStepTx(ctx, tx, stepUUID)
		if err != nil {
			return rep, err
		}
		// Under the lock: if the state is the one readiness was computed
		// for, nothing that readiness depends on can have changed except the
		// parents, which LockStepTx re-read. Otherwise re-evaluate fully.
		stillReady := lock.DependenciesSatisfied && string(lock.State) == rs.State
		if !stillReady && (lock.State == domain.StepPending || lock.State == domain.StepError) {
			if err := tx.GetContext(ctx, &stillReady, recheckReadySQL, stepUUID); err != nil {
				return rep, fmt.Errorf("re-check readiness of step %s: %w", stepUUID, err)
			}
		}
		if !stillReady {
			continue
		}
		if lock.State == domain.StepError {
			if _, _, err := applyStepTransition(ctx, tx, lock, domain.StepEvent{Type: domain.EventRetry}, nil); err != nil {
				return rep, err
			}
			lock.State = domain.StepPending
			rep.StepsRetried++
		}
		msg, err := json.Marshal(domain.SimpleStepMessage{TaskUUID: taskUUID, StepUUID: stepUUID})
		if err != nil {
			return rep, fmt.Errorf("encode step message: %w", err)
		}
		if err := SendMessageTx(ctx, tx, queue, msg); err != nil {
			return rep, err
		}
		if _, _, err := applyStepTransition(ctx, tx, lock, domain.StepEvent{Type: domain.EventEnqueue}, nil); err != nil {
			return rep, err
		}
		rep.StepsEnqueued++
	}
	if rep.StepsEnqueued > 0 {
		if taskState == domain.TaskPending {
			if _, _, err := TransitionTaskTx(ctx, tx, taskUUID, domain.TaskEvent{Type: domain.EventStart}, nil); err != nil {
				return rep, err
			}
			rep.TaskStarted = true
		}
	}
	return rep, nil
}

// ensureQueueKnown returns *ports.QueueMissingError when queue is not in
// pgmq.meta. Sending to a missing queue would abort the transaction, and
// creating it is DDL that belongs outside the business transaction (§4.1).
func (s *OrchestrationStore) ensureQueueKnown(ctx context.Context, tx *sqlx.Tx, queue string) error {
	if _, ok := s.knownQueues.Load(queue); ok {
		return nil
	}
	var exists bool
	if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1)`, queue); err != nil {
		return fmt.Errorf("check queue %s: %w", queue, err)
	}
	if !exists {
		return &ports.QueueMissingError{Queue: queue}
	}
	s.knownQueues.Store(queue, struct{}{})
	return nil
}
