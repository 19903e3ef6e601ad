package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// claimStepTemplate is contract §3.3 steps 2–6 for the Start event in one
// statement, run right after lockStepSQL in the same transaction. Because it
// starts after the row lock was granted, its snapshot (READ COMMITTED takes
// one per statement) sees every transition committed by an earlier lock
// holder, so the compare-and-set below reads the true current state.
//
//   - cur reads the current state and the dependency guard;
//   - cas is the compare-and-set (D-b): one row only when the state is
//     enqueued, or pending (no row counts as pending) with dependencies
//     satisfied, and — in loadAndClaimSQL — the step belongs to task $3 of
//     namespace $4 (the §9.3 mismatch rows win over claiming);
//   - flip clears most_recent on the current row; ins inserts the in_progress
//     row with sort_key = MAX + 1. ins reads flip through an InitPlan, which
//     forces the flip to run first so the partial unique index on
//     (workflow_step_uuid, most_recent) never sees two current rows;
//   - upd applies the in_progress side effects of §3.2;
//   - the final SELECT returns the step snapshot with the post-claim values
//     (attempts, last_attempted_at, state) taken from upd, and claimed.
//
// A loser of the compare-and-set writes nothing and gets the state it lost to.
const claimStepTemplate = `
WITH cur AS (
  SELECT
    (SELECT t.to_state FROM tasker_workflow_step_transitions t
      WHERE t.workflow_step_uuid = $1 AND t.most_recent = true) AS state,
    NOT EXISTS (
      SELECT 1 FROM tasker_workflow_step_edges e
      LEFT JOIN tasker_workflow_step_transitions pt
        ON pt.workflow_step_uuid = e.from_step_uuid AND pt.most_recent = true
      WHERE e.to_step_uuid = $1
        AND COALESCE(pt.to_state, 'pending') NOT IN ('complete', 'resolved_manually')
    ) AS deps_satisfied
),
cas AS (
  SELECT COALESCE(cur.state, 'pending') AS from_state FROM cur
  WHERE (cur.state = 'enqueued' OR (COALESCE(cur.state, 'pending') = 'pending' AND cur.deps_satisfied))
    /*match*/
),
flip AS (
  UPDATE tasker_workflow_step_transitions SET most_recent = false, updated_at = NOW()
  WHERE workflow_step_uuid = $1 AND most_recent = true AND EXISTS (SELECT 1 FROM cas)
  RETURNING 1
),
ins AS (
  INSERT INTO tasker_workflow_step_transitions
    (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
  SELECT $1, 'in_progress', cas.from_state, $2::jsonb,
    (SELECT COALESCE(MAX(x.sort_key), 0) + 1 FROM tasker_workflow_step_transitions x WHERE x.workflow_step_uuid = $1),
    true, NOW(), NOW()
  FROM cas WHERE (SELECT COUNT(*) FROM flip) >= 0
  RETURNING 1
),
upd AS (
  UPDATE tasker_workflow_steps SET in_process = true, attempts = COALESCE(attempts, 0) + 1,
    last_attempted_at = NOW(), updated_at = NOW()
  WHERE workflow_step_uuid = $1 AND EXISTS (SELECT 1 FROM cas)
  RETURNING attempts, last_attempted_at
)
SELECT s.workflow_step_uuid, s.task_uuid, s.named_step_uuid, ns.name AS step_name,
       s.retryable, COALESCE(s.retry_limit, 3) AS retry_limit,
       COALESCE(u.attempts, s.attempts, 0) AS attempts,
       s.inputs, s.backoff_request_seconds, s.processed,
       COALESCE(u.last_attempted_at, s.last_attempted_at) AS last_attempted_at,
       CASE WHEN u.attempts IS NOT NULL THEN 'in_progress' ELSE cur.state END AS step_state,
       cur.deps_satisfied,
       t.named_task_uuid, nt.name AS task_name, nt.version AS task_version, n.name AS namespace_name,
       t.context, t.initiator, t.source_system, t.reason, t.tags, t.priority, t.requested_at,
       tt.to_state AS task_state, nt.configuration,
       (u.attempts IS NOT NULL) AS claimed
FROM tasker_workflow_steps s
JOIN tasker_named_steps ns ON ns.named_step_uuid = s.named_step_uuid
JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
CROSS JOIN cur
LEFT JOIN upd u ON true
LEFT JOIN tasker_task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent = true
WHERE s.workflow_step_uuid = $1`

// claimStepSQL claims any claimable step; loadAndClaimSQL only one of task $3
// in namespace $4. They are two statements rather than one with an
// "$3 IS NULL OR …" test because such a predicate makes every generic plan
// look costlier than a custom one, so PostgreSQL would re-plan the statement
// (about 2 ms) on every execution instead of reusing its plan.
var (
	claimStepSQL    = strings.Replace(claimStepTemplate, "/*match*/", "", 1)
	loadAndClaimSQL = strings.Replace(claimStepTemplate, "/*match*/", `AND EXISTS (
      SELECT 1 FROM tasker_workflow_steps s
      JOIN tasker_tasks t ON t.task_uuid = s.task_uuid
      JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
      JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
      WHERE s.workflow_step_uuid = $1 AND s.task_uuid = $3 AND n.name = $4::text)`, 1)
)

// claimRow is a step snapshot row plus whether the claim was written.
type claimRow struct {
	stepRow
	Claimed bool `db:"claimed"`
}

// claimReq is one claim for claimBatch: its statement, arguments and result.
type claimReq struct {
	step  uuid.UUID
	query string
	args  []any

	row claimRow
	err error
}

// claim runs one claim transaction: lock the step row, then claimStepSQL.
// taskUUID/namespace, when non-nil, restrict the claim to a step of that
// task and namespace (loadAndClaimSQL). It returns the snapshot read under
// the lock (post-claim when claimed) and whether this call won.
//
// Concurrent claims are group-committed like outcomes (commitGroup): a claim
// arriving while another claim transaction runs shares the next one. Each
// keeps its own lock and compare-and-set; two claims of one step in one
// batch run one after the other, so the second sees the first's write and
// loses, exactly as across transactions.
func (s *StepStore) claim(ctx context.Context, stepUUID uuid.UUID, taskUUID *uuid.UUID, namespace *string, workerID string) (ports.StepSnapshot, bool, error) {
	var extra map[string]any
	if workerID != "" {
		extra = map[string]any{"worker_id": workerID}
	}
	meta, err := domain.StepEventMetadata(domain.StepEvent{Type: domain.EventStart}, time.Now(), extra)
	if err != nil {
		return ports.StepSnapshot{}, false, err
	}
	req := &claimReq{step: stepUUID, query: claimStepSQL, args: []any{stepUUID, string(meta)}}
	if taskUUID != nil {
		req.query, req.args = loadAndClaimSQL, append(req.args, *taskUUID, *namespace)
	}
	// Prepare outside any transaction: preparing takes a pool connection.
	for _, q := range []string{lockStepsSQL, req.query} {
		if _, err := s.stmts.get(ctx, q); err != nil {
			return ports.StepSnapshot{}, false, err
		}
	}
	if err := s.claims.submit(ctx, req, s.claimBatch); err != nil {
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

// claimBatch runs reqs in one transaction; when that fails with more than
// one claim, each is retried in its own transaction so one failure cannot
// fail its neighbours.
func (s *StepStore) claimBatch(ctx context.Context, reqs []*claimReq) {
	err := s.claimTx(ctx, reqs)
	if err == nil {
		return
	}
	if len(reqs) == 1 {
		reqs[0].err = err
		return
	}
	for _, r := range reqs {
		r.err = s.claimTx(ctx, []*claimReq{r})
	}
}

// claimTx: BEGIN, lock every step row (workflow_step_uuid order), one claim
// statement per request, COMMIT. A missing step fails alone; a statement
// error or a step whose task chain is broken (its statement may have
// claimed but returned no snapshot) rolls the whole transaction back.
func (s *StepStore) claimTx(ctx context.Context, reqs []*claimReq) error {
	lockSt, err := s.stmts.get(ctx, lockStepsSQL)
	if err != nil {
		return err
	}
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.step.String()
	}
	return WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		locked, err := lockSteps(ctx, tx.StmtxContext(ctx, lockSt), ids)
		if err != nil {
			return err
		}
		for _, r := range reqs {
			r.row, r.err = claimRow{}, nil
			if _, ok := locked[r.step]; !ok {
				r.err = fmt.Errorf("lock step %s: %w", r.step, ports.ErrNotFound)
				continue
			}
			st, err := s.stmts.get(ctx, r.query)
			if err != nil {
				return err
			}
			if err := tx.StmtxContext(ctx, st).GetContext(ctx, &r.row, r.args...); err != nil {
				if errors.Is(err, sql.ErrNoRows) { // task chain broken: the step joins to nothing
					return fmt.Errorf("read step %s: %w", r.step, ports.ErrNotFound)
				}
				return fmt.Errorf("claim statement for step %s: %w", r.step, err)
			}
		}
		return nil
	})
}

// LoadAndClaim is LoadStep and ClaimStep in one transaction, for the common
// case of a message whose step is claimable (contract §9.3 steps 2–3). Under
// the step row lock it reads the snapshot and, only when the step belongs to
// taskUUID, its task's namespace is namespace and the state is enqueued or
// pending with dependencies satisfied, writes the claim exactly as ClaimStep
// does. claimed reports whether it did; when false nothing was written and
// snap is the current state, read under the lock, for the caller's decision
// table (mismatch, stale, in progress, …). A missing step wraps
// ports.ErrNotFound.
func (s *StepStore) LoadAndClaim(ctx context.Context, stepUUID, taskUUID uuid.UUID, namespace, workerID string) (snap ports.StepSnapshot, claimed bool, err error) {
	snap, claimed, err = s.claim(ctx, stepUUID, &taskUUID, &namespace, workerID)
	if err != nil {
		return ports.StepSnapshot{}, false, fmt.Errorf("load and claim step %s: %w", stepUUID, err)
	}
	return snap, claimed, nil
}
