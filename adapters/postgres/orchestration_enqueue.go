package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// OrchestrationStore holds the orchestration's transactional SQL: the
// enqueue cycle, result bookkeeping, finalization, cancellation and manual
// resolution. It implements ports.StepEnqueuer, ports.TaskBatchProcessor,
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
	_ ports.StepEnqueuer  = (*OrchestrationStore)(nil)
	_ ports.TaskFinalizer = (*OrchestrationStore)(nil)
	_ ports.TaskCanceller = (*OrchestrationStore)(nil)
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

// EnqueueTask implements ports.StepEnqueuer for one known task: a batch
// of one (ProcessTasks) with SKIP LOCKED, so a task another transaction holds
// is left to it. Finalization is evaluated too; for a task with a ready step
// it never changes anything.
func (s *OrchestrationStore) EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (ports.EnqueueReport, bool, error) {
	rep := ports.EnqueueReport{TaskUUID: taskUUID}
	b, err := s.ProcessTasks(ctx, ports.TaskBatch{Tasks: []ports.TaskItem{{TaskUUID: taskUUID}}, SkipLocked: true})
	if err != nil {
		return rep, false, fmt.Errorf("enqueue task %s: %w", taskUUID, err)
	}
	if len(b.Enqueued) == 0 {
		return rep, false, nil
	}
	return b.Enqueued[0], b.Enqueued[0].StepsEnqueued > 0, nil
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

// ensureQueueKnown returns *ports.QueueMissingError when queue is not in
// pgmq.meta. Sending to a missing queue would abort the transaction, and
// creating it is DDL that belongs outside the business transaction (§4.1).
func (s *OrchestrationStore) ensureQueueKnown(ctx context.Context, tx sqlx.QueryerContext, queue string) error {
	if _, ok := s.knownQueues.Load(queue); ok {
		return nil
	}
	var exists bool
	if err := sqlx.GetContext(ctx, tx, &exists, `SELECT EXISTS (SELECT 1 FROM pgmq.meta WHERE queue_name = $1)`, queue); err != nil {
		return fmt.Errorf("check queue %s: %w", queue, err)
	}
	if !exists {
		return &ports.QueueMissingError{Queue: queue}
	}
	s.knownQueues.Store(queue, struct{}{})
	return nil
}
