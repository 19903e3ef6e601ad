package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

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
	// stmts holds the prepared statements of the hot paths: the readiness
	// queries cost more to plan than to run.
	stmts *stmtCache
}

var (
	_ ports.StepEnqueuer    = (*OrchestrationStore)(nil)
	_ ports.StepResultStore = (*OrchestrationStore)(nil)
	_ ports.TaskFinalizer   = (*OrchestrationStore)(nil)
	_ ports.TaskCanceller   = (*OrchestrationStore)(nil)
)

// NewOrchestrationStore returns the store over db (connections in UTC, see Open).
func NewOrchestrationStore(db *sqlx.DB) *OrchestrationStore {
	return &OrchestrationStore{db: db, stmts: newStmtCache(db)}
}

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
	// Prepared: the readiness subqueries cost more to plan than to run, and
	// the scan repeats every cycle_interval_ms.
	st, err := s.stmts.pooled(ctx, candidateSQL)
	if err != nil {
		return nil, fmt.Errorf("select enqueue candidates: %w", err)
	}
	var ids []uuid.UUID
	if err := st.SelectContext(ctx, &ids, claimerID, limit); err != nil {
		return nil, fmt.Errorf("select enqueue candidates: %w", err)
	}
	return ids, nil
}

// lockTaskSkipSQL takes the task row lock of EnqueueTask without waiting: a
// task locked by another transaction is being enqueued or finalized by it.
const lockTaskSkipSQL = `SELECT complete FROM tasker_tasks WHERE task_uuid = $1 FOR UPDATE SKIP LOCKED`

// EnqueueTask implements ports.StepEnqueuer for one known task (the trigger
// after task creation, the periodic cycle): lock the task row SKIP LOCKED,
// read its state and steps and lock the ready ones (taskStepsSQL), then
// enqueue them with one statement (enqueueSQL). Five round trips in all,
// BEGIN and COMMIT included.
func (s *OrchestrationStore) EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (ports.EnqueueReport, bool, error) {
	rep := ports.EnqueueReport{TaskUUID: taskUUID}
	found := false
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		lockSt, err := s.stmts.inTx(ctx, tx, lockTaskSkipSQL)
		if err != nil {
			return err
		}
		readSt, err := s.stmts.inTx(ctx, tx, taskStepsSQL(true))
		if err != nil {
			return err
		}
		var complete bool
		err = lockSt.QueryRowxContext(ctx, taskUUID).Scan(&complete)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && complete) {
			return nil // missing, complete, or locked by another instance that is enqueueing it
		}
		if err != nil {
			return fmt.Errorf("lock task: %w", err)
		}
		snap, err := s.readTask(ctx, tx, readSt, taskUUID)
		if err != nil {
			return err
		}
		if snap.state != domain.TaskPending && snap.state != domain.TaskInProgress {
			return nil
		}
		found = true
		rep, err = s.enqueueLocked(ctx, tx, taskUUID, snap)
		return err
	})
	if err != nil {
		return rep, found, fmt.Errorf("enqueue task %s: %w", taskUUID, err)
	}
	return rep, found && rep.StepsEnqueued > 0, nil
}

// enqueueSQL is §10.2 step 2 for the steps in $2, which the caller has locked
// in workflow_step_uuid order while holding the task row lock: it re-checks
// readiness under those locks (a new statement, so a new snapshot), then for
// every step still ready, in one statement: fires Retry (error → pending) for
// error steps, sends {"task_uuid","step_uuid"} to the namespace queue $3 in
// workflow_step_uuid order and fires Enqueue (pending → enqueued), with the
// step-row side effects; and, when $7 says the task is pending and at least one
// step was enqueued, fires task Start. Sends and transitions commit together
// (D-m). Transition rows follow §3.3: the current row is flipped (updated_at =
// NOW()) before the new rows are inserted — "(SELECT COUNT(*) FROM flip) >= 0"
// makes the INSERT wait for the flip, which the partial unique index on
// most_recent requires — sort_key continues from MAX(sort_key), from_state is
// the state read, created_at = updated_at = NOW(). A Retry row is written
// already superseded (most_recent false) by the Enqueue row that follows it.
// $4, $5 and $6 are the Retry, Enqueue and Start metadata.
const enqueueSQL = `
WITH ready AS MATERIALIZED (
	SELECT ws.workflow_step_uuid AS id, COALESCE(cur.to_state, 'pending') AS state,
	       (SELECT COALESCE(MAX(x.sort_key), 0) FROM tasker_workflow_step_transitions x
	        WHERE x.workflow_step_uuid = ws.workflow_step_uuid) AS max_sort_key
	FROM tasker_workflow_steps ws
	LEFT JOIN tasker_workflow_step_transitions cur
	       ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true
	WHERE ws.workflow_step_uuid = ANY($2::uuid[]) AND ws.task_uuid = $1
	  AND ` + stepReadyPredicate + `
),
flip AS (
	UPDATE tasker_workflow_step_transitions t SET most_recent = false, updated_at = NOW()
	FROM ready r WHERE t.workflow_step_uuid = r.id AND t.most_recent = true
	RETURNING t.workflow_step_uuid
),
ins AS (
	INSERT INTO tasker_workflow_step_transitions
	  (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT n.id, n.to_state, n.from_state, n.metadata, n.sort_key, n.most_recent, NOW(), NOW()
	FROM (
	  SELECT r.id, 'pending' AS to_state, 'error' AS from_state, $4::jsonb AS metadata,
	         r.max_sort_key + 1 AS sort_key, false AS most_recent
	  FROM ready r WHERE r.state = 'error'
	  UNION ALL
	  SELECT r.id, 'enqueued', 'pending', $5::jsonb,
	         r.max_sort_key + CASE WHEN r.state = 'error' THEN 2 ELSE 1 END, true
	  FROM ready r) n
	WHERE (SELECT COUNT(*) FROM flip) >= 0
	RETURNING 1
),
touch AS (
	UPDATE tasker_workflow_steps SET updated_at = NOW()
	WHERE workflow_step_uuid IN (SELECT r.id FROM ready r)
	RETURNING 1
),
sent AS MATERIALIZED (
	SELECT r.id, r.state, pgmq.send($3::text, jsonb_build_object('task_uuid', $1::uuid, 'step_uuid', r.id), 0::integer) AS msg_id
	FROM (SELECT * FROM ready ORDER BY id) r
),
start AS (
	SELECT 1 AS go WHERE $7::boolean AND EXISTS (SELECT 1 FROM ready)
),
task_flip AS (
	UPDATE tasker_task_transitions SET most_recent = false, updated_at = NOW()
	WHERE task_uuid = $1 AND most_recent = true AND EXISTS (SELECT 1 FROM start)
	RETURNING to_state
),
task_ins AS (
	INSERT INTO tasker_task_transitions
	  (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT $1, 'in_progress', COALESCE((SELECT f.to_state FROM task_flip f), 'pending'), $6::jsonb,
	       (SELECT COALESCE(MAX(x.sort_key), 0) + 1 FROM tasker_task_transitions x WHERE x.task_uuid = $1),
	       true, NOW(), NOW()
	FROM start
	RETURNING 1
),
task_touch AS (
	UPDATE tasker_tasks SET updated_at = NOW() WHERE task_uuid = $1 AND EXISTS (SELECT 1 FROM start)
	RETURNING 1
)
SELECT s.id, s.state, (SELECT COUNT(*) FROM ins) AS transitions, (SELECT COUNT(*) FROM touch) AS touched,
       (SELECT COUNT(*) FROM task_ins) AS started, (SELECT COUNT(*) FROM task_touch) AS task_touched
FROM sent s ORDER BY s.id`

// enqueuedRow is one row of enqueueSQL's result.
type enqueuedRow struct {
	ID          uuid.UUID `db:"id"`
	State       string    `db:"state"`
	Transitions int       `db:"transitions"`
	Touched     int       `db:"touched"`
	Started     int       `db:"started"`
	TaskTouched int       `db:"task_touched"`
}

// Event metadata of the enqueue path, validated once against the state
// machine: error --Retry--> pending --Enqueue--> enqueued, task pending
// --Start--> in_progress. enqueueSQL's readiness predicate (R1, R4) is what
// makes these the only transitions it can write.
func init() {
	to, err := domain.NextStepState(domain.StepError, domain.EventRetry, domain.StepGuard{})
	if err != nil || to != domain.StepPending {
		panic(fmt.Sprintf("state machine: error --Retry--> %q, %v", to, err))
	}
	to, err = domain.NextStepState(domain.StepPending, domain.EventEnqueue, domain.StepGuard{DependenciesSatisfied: true})
	if err != nil || to != domain.StepEnqueued {
		panic(fmt.Sprintf("state machine: pending --Enqueue--> %q, %v", to, err))
	}
	tt, err := domain.NextTaskState(domain.TaskPending, domain.EventStart, domain.TaskGuard{})
	if err != nil || tt != domain.TaskInProgress {
		panic(fmt.Sprintf("state machine: task pending --Start--> %q, %v", tt, err))
	}
}

// enqueueLocked is §10.2 step 2 for a task whose row tx holds and whose
// steps snap describes (read by taskStepsSQL with lockReady, so the ready
// steps are locked too). It returns what it did; a missing namespace queue is
// a *ports.QueueMissingError with nothing written.
func (s *OrchestrationStore) enqueueLocked(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, snap taskSnapshot) (ports.EnqueueReport, error) {
	rep := ports.EnqueueReport{TaskUUID: taskUUID, Namespace: snap.namespace}
	if len(snap.locked) == 0 {
		return rep, nil
	}
	queue := domain.QueueName(snap.namespace)
	if err := s.ensureQueueKnown(ctx, tx, queue); err != nil {
		return rep, err
	}
	st, err := s.stmts.inTx(ctx, tx, enqueueSQL)
	if err != nil {
		return rep, err
	}
	now := time.Now()
	retryMeta, err := domain.StepEventMetadata(domain.StepEvent{Type: domain.EventRetry}, now, nil)
	if err != nil {
		return rep, fmt.Errorf("encode Retry metadata: %w", err)
	}
	enqueueMeta, err := domain.StepEventMetadata(domain.StepEvent{Type: domain.EventEnqueue}, now, nil)
	if err != nil {
		return rep, fmt.Errorf("encode Enqueue metadata: %w", err)
	}
	startMeta, err := domain.TaskEventMetadata(domain.TaskEvent{Type: domain.EventStart}, now, nil)
	if err != nil {
		return rep, fmt.Errorf("encode Start metadata: %w", err)
	}
	var rows []enqueuedRow
	if err := st.SelectContext(ctx, &rows, taskUUID, pq.Array(orchUUIDStrings(snap.locked)), queue,
		string(retryMeta), string(enqueueMeta), string(startMeta), snap.state == domain.TaskPending); err != nil {
		return rep, fmt.Errorf("enqueue ready steps of task %s: %w", taskUUID, err)
	}
	for _, r := range rows {
		rep.StepsEnqueued++
		if r.State == string(domain.StepError) {
			rep.StepsRetried++
		}
	}
	if len(rows) > 0 {
		r := rows[0]
		if r.Transitions != rep.StepsEnqueued+rep.StepsRetried || r.Touched != rep.StepsEnqueued {
			return rep, fmt.Errorf("enqueue ready steps of task %s: %d steps sent but %d transitions and %d step updates written",
				taskUUID, rep.StepsEnqueued, r.Transitions, r.Touched)
		}
		rep.TaskStarted = r.Started == 1
		if rep.TaskStarted != (snap.state == domain.TaskPending) || r.TaskTouched != r.Started {
			return rep, fmt.Errorf("enqueue ready steps of task %s: task start written %d times (task %s)", taskUUID, r.Started, snap.state)
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
