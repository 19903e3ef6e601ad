package postgres

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// stepReadyPredicate is rules R1–R8 of contract §2.11 with the D-l waiver,
// evaluated for the step row aliased ws whose current transition row (if any)
// is aliased cur. It is the single definition of readiness: the enqueue
// candidate query, the per-step re-check under lock, the API views and
// finalization all embed it, so they cannot disagree.
//
// R8 is written as "no error transition is younger than the floor": the floor
// depends only on the step, so that is the same as testing the newest error
// row, and it can use the partial (step, created_at) index on error rows.
//
// A parent's current state is read by a scalar subquery, not a join: that is
// a lookup in the unique partial index on (step, most_recent) whatever the
// statistics say. Joined, the planner scanned the whole transitions table per
// step on tables that had grown since their last ANALYZE (every young
// database: 500 diamond tasks cost 5 ms per task read instead of 0.5 ms).
const stepReadyPredicate = `(
	COALESCE(cur.to_state, 'pending') IN ('pending', 'error')
	AND ws.processed IS NOT TRUE
	AND ws.in_process IS NOT TRUE
	AND NOT EXISTS (
		SELECT 1 FROM tasker_workflow_step_edges pe
		WHERE pe.to_step_uuid = ws.workflow_step_uuid
		  AND COALESCE((SELECT pcur.to_state FROM tasker_workflow_step_transitions pcur
		                WHERE pcur.workflow_step_uuid = pe.from_step_uuid AND pcur.most_recent = true),
		               'pending') NOT IN ('complete', 'resolved_manually'))
	AND (COALESCE(ws.attempts, 0) = 0
	     OR (COALESCE(ws.attempts, 0) < COALESCE(ws.retry_limit, 3) AND COALESCE(ws.retryable, true)))
	AND (ws.backoff_request_seconds IS NULL OR ws.last_attempted_at IS NULL
	     OR ws.last_attempted_at + make_interval(secs => ws.backoff_request_seconds) <= NOW())
	AND NOT EXISTS (
		SELECT 1 FROM tasker_workflow_step_transitions fe
		WHERE fe.workflow_step_uuid = ws.workflow_step_uuid AND fe.to_state = 'error'
		  AND fe.created_at + make_interval(secs => LEAST(power(2, COALESCE(ws.attempts, 1)), 30)) > NOW())
)`

// stepViewSQL returns every column of ports.StepView for the steps matching
// where (which may use ws.* and positional parameters), ordered by orderBy.
// Current states are looked up per step (LATERAL … LIMIT 1, scalar
// subqueries) so that the plan is index lookups on any statistics; see
// stepReadyPredicate.
func stepViewSQL(where, orderBy string) string {
	return stepViewFromSQL("tasker_workflow_steps ws", where, orderBy)
}

// stepViewFromSQL is stepViewSQL over the step rows of from, which must
// name them ws (e.g. a LATERAL lookup per task, which stays an index scan
// in a generic plan whatever the table's size was when it was planned).
func stepViewFromSQL(from, where, orderBy string) string {
	return fmt.Sprintf(`
SELECT ws.workflow_step_uuid, ws.task_uuid, ws.named_step_uuid, ns.name,
       COALESCE(cur.to_state, 'pending') AS current_state,
       COALESCE(ws.attempts, 0) AS attempts,
       COALESCE(ws.retry_limit, 3) AS retry_limit,
       COALESCE(ws.retryable, true) AS retryable,
       ws.backoff_request_seconds, ws.last_attempted_at,
       ws.created_at, ws.updated_at, ws.processed_at, ws.results,
       lf.last_failure_at,
       par.total_parents, par.completed_parents,
       %s AS ready_for_execution
FROM %s
JOIN tasker_named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
LEFT JOIN LATERAL (
	SELECT c.to_state FROM tasker_workflow_step_transitions c
	WHERE c.workflow_step_uuid = ws.workflow_step_uuid AND c.most_recent = true LIMIT 1) cur ON true
LEFT JOIN LATERAL (
	SELECT MAX(f.created_at) AS last_failure_at FROM tasker_workflow_step_transitions f
	WHERE f.workflow_step_uuid = ws.workflow_step_uuid AND f.to_state = 'error') lf ON true
LEFT JOIN LATERAL (
	SELECT COUNT(*) AS total_parents,
	       COUNT(*) FILTER (WHERE (SELECT pt.to_state FROM tasker_workflow_step_transitions pt
	                               WHERE pt.workflow_step_uuid = e.from_step_uuid AND pt.most_recent = true)
	                              IN ('complete', 'resolved_manually')) AS completed_parents
	FROM (SELECT DISTINCT d.from_step_uuid FROM tasker_workflow_step_edges d
	      WHERE d.to_step_uuid = ws.workflow_step_uuid) e) par ON true
WHERE %s
ORDER BY %s`, stepReadyPredicate, from, where, orderBy)
}

// stepViewRow is the scan target of stepViewSQL.
type stepViewRow struct {
	WorkflowStepUUID      uuid.UUID        `db:"workflow_step_uuid"`
	TaskUUID              uuid.UUID        `db:"task_uuid"`
	NamedStepUUID         uuid.UUID        `db:"named_step_uuid"`
	Name                  string           `db:"name"`
	CurrentState          string           `db:"current_state"`
	Attempts              int              `db:"attempts"`
	RetryLimit            int              `db:"retry_limit"`
	Retryable             bool             `db:"retryable"`
	BackoffRequestSeconds sql.NullInt64    `db:"backoff_request_seconds"`
	LastAttemptedAt       sql.NullTime     `db:"last_attempted_at"`
	CreatedAt             time.Time        `db:"created_at"`
	UpdatedAt             time.Time        `db:"updated_at"`
	ProcessedAt           sql.NullTime     `db:"processed_at"`
	Results               *json.RawMessage `db:"results"`
	LastFailureAt         sql.NullTime     `db:"last_failure_at"`
	TotalParents          int              `db:"total_parents"`
	CompletedParents      int              `db:"completed_parents"`
	ReadyForExecution     bool             `db:"ready_for_execution"`
}

// view converts the row and derives the §2.11 values computed from it:
// retry_eligible, next_retry_at and the D-e permanent failure.
func (r stepViewRow) view() (ports.StepView, error) {
	state, err := domain.ParseStepState(r.CurrentState)
	if err != nil {
		return ports.StepView{}, fmt.Errorf("step %s: %w", r.WorkflowStepUUID, err)
	}
	v := ports.StepView{
		WorkflowStepUUID:      r.WorkflowStepUUID,
		TaskUUID:              r.TaskUUID,
		NamedStepUUID:         r.NamedStepUUID,
		Name:                  r.Name,
		CurrentState:          state,
		DependenciesSatisfied: r.TotalParents == r.CompletedParents,
		RetryEligible:         r.Attempts < r.RetryLimit,
		ReadyForExecution:     r.ReadyForExecution,
		LastFailureAt:         orchUTCPtr(r.LastFailureAt),
		TotalParents:          r.TotalParents,
		CompletedParents:      r.CompletedParents,
		Attempts:              r.Attempts,
		RetryLimit:            r.RetryLimit,
		Retryable:             r.Retryable,
		LastAttemptedAt:       orchUTCPtr(r.LastAttemptedAt),
		CreatedAt:             r.CreatedAt.UTC(),
		UpdatedAt:             r.UpdatedAt.UTC(),
		ProcessedAt:           orchUTCPtr(r.ProcessedAt),
	}
	if r.Results != nil {
		v.Results = *r.Results
	}
	if r.BackoffRequestSeconds.Valid {
		b := int(r.BackoffRequestSeconds.Int64)
		v.BackoffRequestSeconds = &b
		if v.LastAttemptedAt != nil {
			t := v.LastAttemptedAt.Add(time.Duration(b) * time.Second)
			v.NextRetryAt = &t
		}
	}
	if v.NextRetryAt == nil && v.LastFailureAt != nil {
		t := v.LastFailureAt.Add(orchR8Floor(r.Attempts))
		v.NextRetryAt = &t
	}
	return v, nil
}

// orchR8Floor is the R8 delay LEAST(2^attempts, 30) seconds.
func orchR8Floor(attempts int) time.Duration {
	if attempts < 0 {
		attempts = 0
	}
	if attempts >= 5 {
		return 30 * time.Second
	}
	return time.Duration(1<<attempts) * time.Second
}

func orchUTCPtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// orchCountSteps computes the §2.11 execution-context counts from step views.
func orchCountSteps(steps []ports.StepView) domain.StepCounts {
	facts := make([]domain.StepFacts, len(steps))
	for i, s := range steps {
		facts[i] = s.Facts()
	}
	return domain.CountSteps(facts)
}

// taskStepsSQL reads a task whose row lock the transaction holds (single-task
// finalization: FinalizeTask, manual resolution): the task's current state,
// its namespace and the views of all its steps (rows ordered by
// workflow_step_uuid; the task columns repeat on every row). It runs as its
// own statement after the lock, so under READ COMMITTED its snapshot includes
// everything committed before the lock was granted. The batch path reads many
// tasks at once with batchReadSQL.
var taskStepsSQL = `
WITH hdr AS MATERIALIZED (
	SELECT (SELECT tt.to_state FROM tasker_task_transitions tt
	        WHERE tt.task_uuid = $1 AND tt.most_recent = true) AS task_state,
	       (SELECT n.name FROM tasker_tasks t
	        JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
	        JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
	        WHERE t.task_uuid = $1) AS namespace),
v AS MATERIALIZED (` + stepViewSQL("ws.task_uuid = $1", "ws.workflow_step_uuid") + `)
SELECT h.task_state, h.namespace, false AS locked, v.*
FROM v CROSS JOIN hdr h
ORDER BY v.workflow_step_uuid`

// taskStepsRow is the scan target of taskStepsSQL.
type taskStepsRow struct {
	TaskState sql.NullString `db:"task_state"`
	Namespace sql.NullString `db:"namespace"`
	// TaskName and TaskCreatedAt are read by the batch path only.
	TaskName      sql.NullString `db:"task_name"`
	TaskCreatedAt sql.NullTime   `db:"task_created_at"`
	Locked        bool           `db:"locked"`
	stepViewRow
}
