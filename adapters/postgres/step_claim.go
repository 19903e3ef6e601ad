package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// claimStepsSQL is contract §3.3 steps 2–6 for the Start event, for a set of
// distinct steps in one statement, run right after lockStepsSQL in the same
// transaction. Because it starts after the row locks were granted, its
// snapshot (READ COMMITTED takes one per statement) sees every transition
// committed by an earlier lock holder, so the compare-and-set below reads the
// true current state. One statement per batch rather than per step is what
// makes claiming cheap: the executor start-up, the plan and the round trip
// are paid once for the whole batch.
//
// The parameters are parallel arrays, one element per claim: step ($1),
// transition metadata ($2) and, for LoadAndClaim, the task ($3) and
// namespace ($4) the message named (NULL elements: any task).
//
//   - cur reads each step's current state, the dependency guard and whether
//     the step belongs to the named task of the named namespace (the §9.3
//     mismatch rows win over claiming);
//   - cas is the compare-and-set (D-b): a row only when the state is
//     enqueued, or pending (no row counts as pending) with dependencies
//     satisfied, and the step matches;
//   - flip clears most_recent on the current rows; ins inserts the
//     in_progress rows with sort_key = MAX + 1. ins reads flip through an
//     InitPlan, which forces every flip to run first so the partial unique
//     index on (workflow_step_uuid, most_recent) never sees two current rows;
//   - upd applies the in_progress side effects of §3.2;
//   - the final SELECT returns one step snapshot per claim, in input order
//     (ord), with the post-claim values (attempts, last_attempted_at, state)
//     taken from upd, and claimed; for a claimed step also its dependency
//     results (dependencyResultsOf, aggregated to one JSON object), which the
//     handler payload needs, so a claimed step costs no further round trip.
//     Only claimed rows evaluate it (CASE), and the claim does not change any
//     ancestor's processed or results, so it reads what DependencyResults
//     would read right after the commit.
//
// Every per-step lookup is a correlated scalar subquery or a LATERAL
// subquery fenced by OFFSET 0, so each runs as an index lookup per claim.
// Written as joins or EXISTS, the planner may instead hash whole tables when
// its statistics lag behind the tables' growth (seen: 9 ms per batch
// scanning every step of a freshly filled database).
//
// A loser of the compare-and-set writes nothing and gets the state it lost
// to. The steps must be distinct (stepBatch runs repeats in a later round).
var claimStepsSQL = `
WITH req AS (
  SELECT r.step, r.meta, r.task, r.ns, r.ord
  FROM unnest($1::uuid[], $2::jsonb[], $3::uuid[], $4::text[]) WITH ORDINALITY AS r(step, meta, task, ns, ord)
),
cur AS (
  SELECT r.step, r.meta, r.ord,
    (SELECT t.to_state FROM tasker_workflow_step_transitions t
      WHERE t.workflow_step_uuid = r.step AND t.most_recent = true) AS state,
    ` + depsSatisfiedOf("r.step") + ` AS deps_satisfied,
    (r.task IS NULL OR COALESCE((
      SELECT s.task_uuid = r.task AND n.name = r.ns FROM tasker_workflow_steps s
      JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
      JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
      WHERE s.workflow_step_uuid = r.step), false)) AS matches
  FROM req r
),
cas AS (
  SELECT cur.step, cur.meta, COALESCE(cur.state, 'pending') AS from_state FROM cur
  WHERE (cur.state = 'enqueued' OR (COALESCE(cur.state, 'pending') = 'pending' AND cur.deps_satisfied))
    AND cur.matches
),
flip AS (
  UPDATE tasker_workflow_step_transitions t SET most_recent = false, updated_at = NOW()
  FROM cas WHERE t.workflow_step_uuid = cas.step AND t.most_recent = true
  RETURNING 1
),
ins AS (
  INSERT INTO tasker_workflow_step_transitions
    (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
  SELECT cas.step, 'in_progress', cas.from_state, cas.meta,
    (SELECT COALESCE(MAX(x.sort_key), 0) + 1 FROM tasker_workflow_step_transitions x WHERE x.workflow_step_uuid = cas.step),
    true, NOW(), NOW()
  FROM cas WHERE (SELECT COUNT(*) FROM flip) >= 0
  RETURNING 1
),
upd AS (
  UPDATE tasker_workflow_steps s SET in_process = true, attempts = COALESCE(s.attempts, 0) + 1,
    last_attempted_at = NOW(), updated_at = NOW()
  FROM cas WHERE s.workflow_step_uuid = cas.step
  RETURNING s.workflow_step_uuid, s.attempts, s.last_attempted_at
)
SELECT cur.ord, x.workflow_step_uuid, x.task_uuid, x.named_step_uuid, x.step_name,
       x.retryable, x.retry_limit,
       COALESCE(u.attempts, x.attempts, 0) AS attempts,
       x.inputs, x.backoff_request_seconds, x.processed,
       COALESCE(u.last_attempted_at, x.last_attempted_at) AS last_attempted_at,
       CASE WHEN u.attempts IS NOT NULL THEN 'in_progress' ELSE cur.state END AS step_state,
       cur.deps_satisfied,
       x.named_task_uuid, x.task_name, x.task_version, x.namespace_name,
       x.context, x.initiator, x.source_system, x.reason, x.tags, x.priority, x.requested_at,
       x.task_state, x.configuration,
       (u.attempts IS NOT NULL) AS claimed,
       CASE WHEN u.attempts IS NOT NULL THEN (
         SELECT COALESCE(jsonb_object_agg(d.name, d.results), '{}'::jsonb)
         FROM (` + dependencyResultsOf("cur.step") + `) d(name, results)
       ) END AS dependency_results
FROM cur
CROSS JOIN LATERAL (
  SELECT s.workflow_step_uuid, s.task_uuid, s.named_step_uuid, ns.name AS step_name,
         s.retryable, COALESCE(s.retry_limit, 3) AS retry_limit, s.attempts,
         s.inputs, s.backoff_request_seconds, s.processed, s.last_attempted_at,
         t.named_task_uuid, nt.name AS task_name, nt.version AS task_version, n.name AS namespace_name,
         t.context, t.initiator, t.source_system, t.reason, t.tags, t.priority, t.requested_at,
         (SELECT tt.to_state FROM tasker_task_transitions tt
           WHERE tt.task_uuid = t.task_uuid AND tt.most_recent = true) AS task_state,
         nt.configuration
  FROM tasker_workflow_steps s
  JOIN tasker_named_steps ns ON ns.named_step_uuid = s.named_step_uuid
  JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
  JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
  JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
  WHERE s.workflow_step_uuid = cur.step
  OFFSET 0) x
LEFT JOIN upd u ON u.workflow_step_uuid = cur.step
ORDER BY cur.ord`

// claimRow is a step snapshot row plus whether the claim was written and,
// when it was, the step's dependency results as one JSON object.
type claimRow struct {
	Ord int `db:"ord"`
	stepRow
	Claimed           bool   `db:"claimed"`
	DependencyResults []byte `db:"dependency_results"`
}

// snapshot is the step row's snapshot plus, for a claimed step, its
// DependencyResults: the claim's JSON object decoded and each value
// unwrapped per D-r, exactly as DependencyResults does.
func (r claimRow) snapshot() (ports.StepSnapshot, error) {
	snap, err := r.stepRow.snapshot()
	if err != nil || !r.Claimed {
		return snap, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(r.DependencyResults, &raw); err != nil {
		return ports.StepSnapshot{}, fmt.Errorf("dependency results of step %s: %w", r.WorkflowStepUUID, err)
	}
	snap.DependencyResults = make(map[string]json.RawMessage, len(raw))
	for name, v := range raw {
		snap.DependencyResults[name] = domain.UnwrapDependencyResult(v)
	}
	return snap, nil
}

// claimReq is one claim for claimBatch: its step, metadata, optional task
// and namespace match, and its result.
type claimReq struct {
	step uuid.UUID
	meta string
	task *uuid.UUID // nil: any task (ClaimStep)
	ns   *string

	row claimRow
	err error
}

// claim runs one claim: lock the step row, then claimStepsSQL, in a
// transaction. taskUUID/namespace, when non-nil, restrict the claim to a
// step of that task and namespace (LoadAndClaim). It returns the snapshot
// read under the lock (post-claim when claimed) and whether this call won.
//
// Concurrent claims are group-committed with outcomes (commitGroup, stepOp):
// a claim arriving while another claim or outcome transaction runs shares
// the next one. Each keeps its own compare-and-set; two claims of one step
// in one batch run one after the other (opsTx rounds), so the second sees
// the first's write and loses, exactly as across transactions.
func (s *StepStore) claim(ctx context.Context, stepUUID uuid.UUID, taskUUID *uuid.UUID, namespace *string, workerID string) (ports.StepSnapshot, bool, error) {
	var extra map[string]any
	if workerID != "" {
		extra = map[string]any{"worker_id": workerID}
	}
	meta, err := domain.StepEventMetadata(domain.StepEvent{Type: domain.EventStart}, time.Now(), extra)
	if err != nil {
		return ports.StepSnapshot{}, false, err
	}
	req := &claimReq{step: stepUUID, meta: string(meta), task: taskUUID, ns: namespace}
	if err := s.ops.submit(ctx, req, s.runOps); err != nil {
		return ports.StepSnapshot{}, false, err
	}
	if req.err != nil {
		return ports.StepSnapshot{}, false, req.err
	}
	snap, err := req.row.snapshot()
	if err != nil {
		return ports.StepSnapshot{}, false, err
	}
	return snap, req.row.Claimed, nil
}

func (r *claimReq) stepID() uuid.UUID { return r.step }

// admit: a claim of a missing step fails alone. A statement error or a step
// whose task chain is broken (its statement may have claimed but returned no
// snapshot) rolls the transaction back, and then each request is retried
// alone (runOps).
func (r *claimReq) admit(_ uuid.UUID, locked bool) error {
	r.row = claimRow{}
	if !locked {
		return notLocked(r.step)
	}
	return nil
}

func (r *claimReq) setErr(err error) { r.err = err }

// claimRound runs claimStepsSQL for round (distinct steps) and stores each
// claim's row.
func claimRound(ctx context.Context, st *sqlx.Stmt, round []*claimReq) error {
	steps := make([]string, len(round))
	metas := make([]string, len(round))
	tasks := make([]sql.NullString, len(round))
	nss := make([]sql.NullString, len(round))
	for i, r := range round {
		steps[i], metas[i] = r.step.String(), r.meta
		if r.task != nil {
			tasks[i] = sql.NullString{String: r.task.String(), Valid: true}
			nss[i] = sql.NullString{String: *r.ns, Valid: true}
		}
	}
	rows, err := st.QueryxContext(ctx, pq.Array(steps), pq.Array(metas), pq.Array(tasks), pq.Array(nss))
	if err != nil {
		return fmt.Errorf("claim statement for %d steps: %w", len(round), err)
	}
	defer rows.Close()
	seen := make([]bool, len(round))
	for rows.Next() {
		var row claimRow
		if err := rows.StructScan(&row); err != nil {
			return fmt.Errorf("claim statement for %d steps: %w", len(round), err)
		}
		i := row.Ord - 1
		if i < 0 || i >= len(round) || seen[i] {
			return fmt.Errorf("claim statement for %d steps: unexpected row %d", len(round), row.Ord)
		}
		seen[i], round[i].row = true, row
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("claim statement for %d steps: %w", len(round), err)
	}
	for i, ok := range seen {
		if !ok { // task chain broken: the step joins to nothing
			return fmt.Errorf("read step %s: %w", round[i].step, ports.ErrNotFound)
		}
	}
	return nil
}

// LoadAndClaim is LoadStep and ClaimStep in one transaction, for the common
// case of a message whose step is claimable (contract §9.3 steps 2–3). Under
// the step row lock it reads the snapshot and, only when the step belongs to
// taskUUID, its task's namespace is namespace and the state is enqueued or
// pending with dependencies satisfied, writes the claim exactly as ClaimStep
// does. claimed reports whether it did; when false nothing was written and
// snap is the current state, read under the lock, for the caller's decision
// table (mismatch, stale, in progress, …). When claimed, snap also carries
// the step's DependencyResults, read by the claim statement, so the caller
// needs no further round trip to build the handler payload. A missing step
// wraps ports.ErrNotFound.
func (s *StepStore) LoadAndClaim(ctx context.Context, stepUUID, taskUUID uuid.UUID, namespace, workerID string) (snap ports.StepSnapshot, claimed bool, err error) {
	snap, claimed, err = s.claim(ctx, stepUUID, &taskUUID, &namespace, workerID)
	if err != nil {
		return ports.StepSnapshot{}, false, fmt.Errorf("load and claim step %s: %w", stepUUID, err)
	}
	return snap, claimed, nil
}
