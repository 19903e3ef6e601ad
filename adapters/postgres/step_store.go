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

// StepStore is the worker's ports.StepStore over PostgreSQL. It is safe for
// concurrent use; every method runs its own statement or transaction.
type StepStore struct {
	db    *sqlx.DB
	stmts *stmtCache
	// ops group-commits claims and outcomes together (stepOp).
	ops commitGroup[stepOp]
}

var _ ports.StepStore = (*StepStore)(nil)

// NewStepStore returns a StepStore on db (opened with Open, so sessions are UTC).
//
// The store prepares its hot-path statements on first use and keeps them for
// the life of db (see stmtCache).
func NewStepStore(db *sqlx.DB) *StepStore { return &StepStore{db: db, stmts: newStmtCache(db)} }

// depsSatisfiedOf is the SQL truth value "every parent of the step is
// complete or resolved_manually" (a parent without a transition row is
// pending), for the step whose uuid is the SQL expression step. The
// parent's state is a correlated scalar subquery, so it stays an index
// lookup per parent whatever the planner's statistics (see claimStepsSQL).
// The worker's snapshot and its claim use it, so the claim's guard is the
// same rule the snapshot reports.
func depsSatisfiedOf(step string) string {
	return `NOT EXISTS (
         SELECT 1 FROM tasker_workflow_step_edges e
         WHERE e.to_step_uuid = ` + step + `
           AND COALESCE((SELECT pt.to_state FROM tasker_workflow_step_transitions pt
                         WHERE pt.workflow_step_uuid = e.from_step_uuid AND pt.most_recent = true),
                        'pending') NOT IN ('complete', 'resolved_manually')
       )`
}

// loadStepSQL reads everything ports.StepSnapshot holds in one round trip.
var loadStepSQL = `
SELECT s.workflow_step_uuid, s.task_uuid, s.named_step_uuid, ns.name AS step_name,
       s.retryable, COALESCE(s.retry_limit, 3) AS retry_limit, COALESCE(s.attempts, 0) AS attempts,
       s.inputs, s.backoff_request_seconds, s.processed, s.last_attempted_at,
       st.to_state AS step_state,
       ` + depsSatisfiedOf("s.workflow_step_uuid") + ` AS deps_satisfied,
       t.named_task_uuid, nt.name AS task_name, nt.version AS task_version, n.name AS namespace_name,
       t.context, t.initiator, t.source_system, t.reason, t.tags, t.priority, t.requested_at,
       tt.to_state AS task_state, nt.configuration
FROM tasker_workflow_steps s
JOIN tasker_named_steps ns ON ns.named_step_uuid = s.named_step_uuid
JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
LEFT JOIN tasker_workflow_step_transitions st
  ON st.workflow_step_uuid = s.workflow_step_uuid AND st.most_recent = true
LEFT JOIN tasker_task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent = true
WHERE s.workflow_step_uuid = $1`

type stepRow struct {
	WorkflowStepUUID      uuid.UUID      `db:"workflow_step_uuid"`
	TaskUUID              uuid.UUID      `db:"task_uuid"`
	NamedStepUUID         uuid.UUID      `db:"named_step_uuid"`
	StepName              string         `db:"step_name"`
	Retryable             bool           `db:"retryable"`
	RetryLimit            int            `db:"retry_limit"`
	Attempts              int            `db:"attempts"`
	Inputs                []byte         `db:"inputs"`
	BackoffRequestSeconds sql.NullInt64  `db:"backoff_request_seconds"`
	Processed             bool           `db:"processed"`
	LastAttemptedAt       sql.NullTime   `db:"last_attempted_at"`
	StepState             sql.NullString `db:"step_state"`
	DepsSatisfied         bool           `db:"deps_satisfied"`
	NamedTaskUUID         uuid.UUID      `db:"named_task_uuid"`
	TaskName              string         `db:"task_name"`
	TaskVersion           string         `db:"task_version"`
	NamespaceName         string         `db:"namespace_name"`
	Context               []byte         `db:"context"`
	Initiator             sql.NullString `db:"initiator"`
	SourceSystem          sql.NullString `db:"source_system"`
	Reason                sql.NullString `db:"reason"`
	Tags                  []byte         `db:"tags"`
	Priority              int            `db:"priority"`
	RequestedAt           time.Time      `db:"requested_at"`
	TaskState             sql.NullString `db:"task_state"`
	Configuration         []byte         `db:"configuration"`
}

func nullStr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

func rawJSON(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(append([]byte(nil), b...))
}

func (r stepRow) snapshot() (ports.StepSnapshot, error) {
	stepState, err := domain.ParseStepState(r.StepState.String)
	if err != nil {
		return ports.StepSnapshot{}, err
	}
	taskState, err := domain.ParseTaskState(r.TaskState.String)
	if err != nil {
		return ports.StepSnapshot{}, err
	}
	snap := ports.StepSnapshot{
		Step: domain.StepInfo{
			WorkflowStepUUID: r.WorkflowStepUUID,
			TaskUUID:         r.TaskUUID,
			NamedStepUUID:    r.NamedStepUUID,
			Name:             r.StepName,
			Retryable:        r.Retryable,
			RetryLimit:       r.RetryLimit,
			Attempts:         r.Attempts,
			Inputs:           rawJSON(r.Inputs),
		},
		State:                 stepState,
		DependenciesSatisfied: r.DepsSatisfied,
		Processed:             r.Processed,
		Task: domain.TaskInfo{
			TaskUUID:      r.TaskUUID,
			NamedTaskUUID: r.NamedTaskUUID,
			TaskName:      r.TaskName,
			TaskVersion:   r.TaskVersion,
			NamespaceName: r.NamespaceName,
			Context:       rawJSON(r.Context),
			Initiator:     nullStr(r.Initiator),
			SourceSystem:  nullStr(r.SourceSystem),
			Reason:        nullStr(r.Reason),
			Tags:          rawJSON(r.Tags),
			Priority:      r.Priority,
			RequestedAt:   r.RequestedAt.UTC(),
		},
		TaskState:     taskState,
		Configuration: rawJSON(r.Configuration),
	}
	if r.BackoffRequestSeconds.Valid {
		v := int(r.BackoffRequestSeconds.Int64)
		snap.Step.BackoffRequestSeconds = &v
	}
	if r.LastAttemptedAt.Valid {
		t := r.LastAttemptedAt.Time.UTC()
		snap.LastAttemptedAt = &t
	}
	return snap, nil
}

// scanSnapshot turns the single-row result of a snapshot query into a
// StepSnapshot; no row means the step (or its task chain) does not exist.
func scanSnapshot(stepUUID uuid.UUID, get func(dest any) error) (ports.StepSnapshot, error) {
	var r stepRow
	if err := get(&r); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ports.StepSnapshot{}, fmt.Errorf("load step %s: %w", stepUUID, ports.ErrNotFound)
		}
		return ports.StepSnapshot{}, fmt.Errorf("load step %s: %w", stepUUID, err)
	}
	snap, err := r.snapshot()
	if err != nil {
		return ports.StepSnapshot{}, fmt.Errorf("load step %s: %w", stepUUID, err)
	}
	return snap, nil
}

// LoadStep returns the step with its current state, dependency guard, task
// and the task's named-task configuration in one query. A missing step (or
// one whose task chain is broken) yields an error wrapping ports.ErrNotFound.
func (s *StepStore) LoadStep(ctx context.Context, stepUUID uuid.UUID) (ports.StepSnapshot, error) {
	st, err := s.stmts.pooled(ctx, loadStepSQL)
	if err != nil {
		return ports.StepSnapshot{}, fmt.Errorf("load step %s: %w", stepUUID, err)
	}
	return scanSnapshot(stepUUID, func(dest any) error { return st.GetContext(ctx, dest, stepUUID) })
}

// ClaimStep is the atomic claim of contract §9.3 step 3 (D-b). In one
// transaction it locks the step row, then compare-and-sets the current state:
// only enqueued, or pending with dependencies satisfied, moves to in_progress
// via Start (attempts + 1, in_process, last_attempted_at; metadata carries
// {"worker_id": workerID}). The returned snapshot is read inside the same
// transaction, so Step.Attempts is the post-claim count (1 on the first run),
// and carries the step's DependencyResults, read by the same statement.
// The read, compare-and-set and writes after the lock are one statement
// (claimStepsSQL), so a lone claim costs four round trips: BEGIN, lock,
// claim, COMMIT; concurrent claims share transactions (see claim).
//
// Of N concurrent claimers exactly one wins: the others block on the row lock,
// then read the winner's committed state. Losers get *domain.NotClaimableError
// with Current (and DependenciesSatisfied) as seen under the lock, and
// nothing is written. A missing step wraps ports.ErrNotFound.
func (s *StepStore) ClaimStep(ctx context.Context, stepUUID uuid.UUID, workerID string) (ports.StepSnapshot, error) {
	snap, claimed, err := s.claim(ctx, stepUUID, nil, nil, workerID)
	if err != nil {
		return ports.StepSnapshot{}, fmt.Errorf("claim step %s: %w", stepUUID, err)
	}
	if !claimed {
		return ports.StepSnapshot{}, fmt.Errorf("claim step %s: %w", stepUUID, &domain.NotClaimableError{
			StepUUID: stepUUID.String(), Current: snap.State, DependenciesSatisfied: snap.DependenciesSatisfied})
	}
	return snap, nil
}
