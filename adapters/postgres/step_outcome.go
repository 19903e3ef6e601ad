package postgres

import (
	"bytes"
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

// dependencyResultsOf walks the edges upwards from the step whose uuid is
// the SQL expression step: all transitive ancestors (UNION dedupes, so
// diamonds are visited once and a corrupt cyclic graph still terminates),
// keeping those processed with non-NULL results, as rows (name, results).
// The per-step lookups are LATERAL subqueries fenced by OFFSET 0 so they stay
// index lookups when the planner's statistics lag (as joins they were planned
// as scans of every edge and step of a young database: ~5 ms per call).
// DependencyResults runs it for $1; the claim statement embeds it for each
// claimed step, so a claim returns what the handler payload needs.
func dependencyResultsOf(step string) string {
	return `
WITH RECURSIVE ancestors(step_uuid) AS (
  SELECT e.from_step_uuid FROM tasker_workflow_step_edges e WHERE e.to_step_uuid = ` + step + `
  UNION
  SELECT e.from_step_uuid FROM ancestors a
  CROSS JOIN LATERAL (SELECT x.from_step_uuid FROM tasker_workflow_step_edges x
                      WHERE x.to_step_uuid = a.step_uuid OFFSET 0) e
)
SELECT x.name, x.results
FROM ancestors a
CROSS JOIN LATERAL (
  SELECT ns.name, s.results FROM tasker_workflow_steps s
  JOIN tasker_named_steps ns ON ns.named_step_uuid = s.named_step_uuid
  WHERE s.workflow_step_uuid = a.step_uuid AND s.processed = true AND s.results IS NOT NULL
  OFFSET 0) x`
}

// dependencyResultsSQL is DependencyResults' statement.
var dependencyResultsSQL = dependencyResultsOf("$1")

// DependencyResults maps step name → result over every transitive ancestor
// with processed = true and non-NULL results (contract §9.1). Each value is
// unwrapped per D-r: the stored object's "result" when it is a
// StepExecutionResult, otherwise the raw stored JSON (rows written by older
// reference workers). A step without ancestors yields an empty map.
func (s *StepStore) DependencyResults(ctx context.Context, stepUUID uuid.UUID) (map[string]json.RawMessage, error) {
	st, err := s.stmts.pooled(ctx, dependencyResultsSQL)
	if err != nil {
		return nil, fmt.Errorf("dependency results of step %s: %w", stepUUID, err)
	}
	rows, err := st.QueryxContext(ctx, stepUUID)
	if err != nil {
		return nil, fmt.Errorf("dependency results of step %s: %w", stepUUID, err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var name string
		var results []byte
		if err := rows.Scan(&name, &results); err != nil {
			return nil, fmt.Errorf("dependency results of step %s: %w", stepUUID, err)
		}
		out[name] = domain.UnwrapDependencyResult(json.RawMessage(results))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dependency results of step %s: %w", stepUUID, err)
	}
	return out, nil
}

// persistOutcomesSQL is contract §9.3 step 5 for a set of distinct steps,
// in one statement run after the step row locks (its READ COMMITTED
// snapshot starts after the locks were granted, so it reads the true current
// states). One statement per batch, with one pgmq.send_batch and one
// pgmq.delete per queue, is what makes persisting cheap: pgmq's functions
// plan their SQL on every call, so calling them per outcome cost more than
// the outcome's own writes.
//
// The parameters are parallel arrays, one element per outcome: step ($1),
// target state complete|error ($2), transition metadata ($3), results ($4),
// the step message's queue ($5, ” = no message to delete), msg_id ($6) and
// the completion message's pgmq headers ($7, NULL = none: trace context).
//
//   - cas is the compare-and-set: the outcomes whose step is in_progress
//     (a correlated scalar subquery, so it is an index lookup per outcome
//     whatever the planner's statistics say; as a join it was planned as a
//     sequential scan of the transitions when they were stale);
//   - flip/ins/upd write the transition to to_state with its metadata
//     exactly as §3.3 prescribes (ins reads flip through an InitPlan so the
//     old current rows are cleared before the new ones are inserted) and the
//     §3.2 side effects with results;
//   - sent sends one completion message per persisted outcome to
//     orchestration_step_results, in input order; del deletes every outcome's
//     message whether or not cas holds (a stale outcome still acknowledges
//     its message). Both are plain SELECTs of volatile functions, which
//     PostgreSQL evaluates only as far as the outer query reads them, so the
//     outer query counts their rows;
//   - the result is one row per outcome, in input order (ord), saying
//     whether it was persisted, plus the batch's sent and deleted counts.
const persistOutcomesSQL = `
WITH req AS (
  SELECT r.step, r.to_state, r.meta, r.results, r.queue, r.msg_id, r.hdr, r.ord
  FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[], $5::text[], $6::bigint[], $7::jsonb[])
    WITH ORDINALITY AS r(step, to_state, meta, results, queue, msg_id, hdr, ord)
),
cas AS (
  SELECT r.step, r.to_state, r.meta, r.results, r.hdr, r.ord FROM req r
  WHERE (SELECT t.to_state FROM tasker_workflow_step_transitions t
          WHERE t.workflow_step_uuid = r.step AND t.most_recent = true) = 'in_progress'
),
flip AS (
  UPDATE tasker_workflow_step_transitions t SET most_recent = false, updated_at = NOW()
  FROM cas WHERE t.workflow_step_uuid = cas.step AND t.most_recent = true
  RETURNING 1
),
ins AS (
  INSERT INTO tasker_workflow_step_transitions
    (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
  SELECT cas.step, cas.to_state, 'in_progress', cas.meta,
    (SELECT COALESCE(MAX(x.sort_key), 0) + 1 FROM tasker_workflow_step_transitions x WHERE x.workflow_step_uuid = cas.step),
    true, NOW(), NOW()
  FROM cas WHERE (SELECT COUNT(*) FROM flip) >= 0
  RETURNING 1
),
upd AS (
  UPDATE tasker_workflow_steps s SET in_process = false,
    processed = CASE WHEN cas.to_state = 'complete' THEN true ELSE s.processed END,
    processed_at = CASE WHEN cas.to_state = 'complete' THEN NOW() ELSE s.processed_at END,
    results = cas.results, updated_at = NOW()
  FROM cas WHERE s.workflow_step_uuid = cas.step
  RETURNING s.task_uuid, s.workflow_step_uuid, cas.hdr, cas.ord
),
msgs AS (
  SELECT array_agg(jsonb_build_object('task_uuid', u.task_uuid, 'step_uuid', u.workflow_step_uuid) ORDER BY u.ord) AS m,
         array_agg(u.hdr ORDER BY u.ord) AS h
  FROM upd u
),
sent AS (
  SELECT pgmq.send_batch('` + domain.QueueStepResults + `'::text, msgs.m, msgs.h, 0::integer) AS msg_id
  FROM msgs WHERE msgs.m IS NOT NULL
),
del AS (
  SELECT pgmq.delete(d.queue, d.ids) AS msg_id
  FROM (SELECT r.queue, array_agg(r.msg_id ORDER BY r.ord) AS ids FROM req r WHERE r.queue <> '' GROUP BY r.queue) d
)
SELECT r.ord, EXISTS (SELECT 1 FROM cas c WHERE c.ord = r.ord) AS persisted,
       (SELECT COUNT(*) FROM sent) AS sent,
       (SELECT COUNT(*) FROM del) AS deleted
FROM req r ORDER BY r.ord`

// PersistOutcome is contract §9.3 step 5 (D-g). In one transaction it locks
// the step row and compare-and-sets in_progress: a successful result fires
// Complete(result) → complete, a failed one Fail(error.message) → error, both
// storing the full StepExecutionResult in results; it then sends the
// completion message {"task_uuid","step_uuid"} to orchestration_step_results
// and deletes o.MsgID from o.Queue, and commits. Deleting the step message in
// the same transaction means a crash before commit leaves the message to be
// redelivered instead of stranding the step.
//
// When the step is no longer in_progress (cancelled, or failed as abandoned
// by another worker) the outcome is discarded: the message is still deleted,
// nothing is sent, and it returns false. o.Queue == "" skips the delete (no
// message to acknowledge). A failure result doubles as the worker_lost path:
// pass a result with error_type "worker_lost" and retryable true.
//
// Concurrent calls are group-committed (see commitGroup and stepOp): outcomes
// and claims arriving while another batch commits share the next transaction, each
// with its own lock, compare-and-set, transition, send and delete. This
// matters because PostgreSQL serialises the commits of transactions that
// issued NOTIFY (the completion queue's message-ready trigger, §4.6), WAL
// flush included, so one outcome per transaction caps a worker at one
// outcome per flush.
func (s *StepStore) PersistOutcome(ctx context.Context, o ports.StepOutcome) (bool, error) {
	req, err := newOutcomeReq(o)
	if err != nil {
		return false, err
	}
	err = s.ops.submit(ctx, req, s.runOps)
	if err == nil {
		err = req.err
	}
	if err != nil {
		return false, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	return req.persisted, nil
}

// outcomeReq is one validated outcome, encoded for persistOutcomesSQL.
type outcomeReq struct {
	step    uuid.UUID
	task    uuid.UUID // uuid.Nil: not checked
	to      domain.StepState
	meta    string
	results string
	queue   string
	msgID   int64
	headers sql.NullString

	// set by the batch that persisted it
	persisted bool
	err       error
}

func newOutcomeReq(o ports.StepOutcome) (*outcomeReq, error) {
	if o.StepUUID == uuid.Nil {
		return nil, fmt.Errorf("persist outcome: missing step uuid")
	}
	if o.Result.StepUUID != uuid.Nil && o.Result.StepUUID != o.StepUUID {
		return nil, fmt.Errorf("persist outcome of step %s: result is for step %s", o.StepUUID, o.Result.StepUUID)
	}
	res := o.Result
	res.StepUUID = o.StepUUID
	// The result is encoded once, without HTML escaping (the encoding the
	// Complete event's metadata uses), and the Complete metadata embeds those
	// bytes: encoding the result twice was a tenth of the worker's CPU per
	// outcome. The results column is jsonb, so the escaping makes no
	// difference there.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		return nil, fmt.Errorf("persist outcome of step %s: encode result: %w", o.StepUUID, err)
	}
	results := bytes.TrimRight(buf.Bytes(), "\n")
	evType, data := domain.EventComplete, any(json.RawMessage(results))
	if !res.Success {
		msg := "step failed"
		if res.Error != nil && res.Error.Message != "" {
			msg = res.Error.Message
		}
		evType, data = domain.EventFail, msg
	}
	var extra map[string]any
	if o.WorkerID != "" {
		extra = map[string]any{"worker_id": o.WorkerID}
	}
	to, err := domain.NextStepState(domain.StepInProgress, evType, domain.StepGuard{})
	if err != nil {
		return nil, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	// What domain.StepEventMetadata writes for this event (the data is the
	// result for Complete, the message for Fail).
	meta, err := domain.TransitionMetadata(evType, data, true, time.Now(), extra)
	if err != nil {
		return nil, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	return &outcomeReq{step: o.StepUUID, task: o.TaskUUID, to: to, meta: string(meta), results: string(results),
		queue: o.Queue, msgID: o.MsgID, headers: sql.NullString{String: string(o.Headers), Valid: len(o.Headers) > 0}}, nil
}

// lockStepsSQL locks several step rows in workflow_step_uuid order (the
// contract's lock order: each row is locked by a lookup of its own, in the
// order of the sorted ids) and returns their tasks. The lookup per id is a
// LATERAL primary-key scan whatever the statistics or the table size when
// the statement was planned: as "= ANY($1)" on a young table the plan was a
// sequential scan, kept by the cached plan while the table grew.
// It runs after batchPlansSQL, like the claim and outcome statements that
// follow it.
const lockStepsSQL = `SELECT l.workflow_step_uuid, l.task_uuid
FROM (SELECT DISTINCT k.id FROM unnest($1::uuid[]) AS k(id) ORDER BY k.id) k
CROSS JOIN LATERAL (SELECT ws.workflow_step_uuid, ws.task_uuid FROM tasker_workflow_steps ws
                    WHERE ws.workflow_step_uuid = k.id FOR UPDATE) l`

// lockSteps runs lockStepsSQL (prepared, bound to the transaction) for ids
// and maps each locked step to its task.
func lockSteps(ctx context.Context, lock *sqlx.Stmt, ids []string) (map[uuid.UUID]uuid.UUID, error) {
	rows, err := lock.QueryxContext(ctx, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("lock steps: %w", err)
	}
	defer rows.Close()
	owners := make(map[uuid.UUID]uuid.UUID, len(ids))
	for rows.Next() {
		var step, task uuid.UUID
		if err := rows.Scan(&step, &task); err != nil {
			return nil, fmt.Errorf("lock steps: %w", err)
		}
		owners[step] = task
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock steps: %w", err)
	}
	return owners, nil
}

func (r *outcomeReq) stepID() uuid.UUID { return r.step }

// admit: an outcome whose step is missing or belongs to another task fails
// alone (its statement is not run).
func (r *outcomeReq) admit(owner uuid.UUID, locked bool) error {
	r.persisted = false
	switch {
	case !locked:
		return notLocked(r.step)
	case r.task != uuid.Nil && owner != r.task:
		return fmt.Errorf("step belongs to task %s, not %s", owner, r.task)
	}
	return nil
}

func (r *outcomeReq) setErr(err error) { r.err = err }

// persistRound runs persistOutcomesSQL for round (distinct steps) and
// records which outcomes were persisted; the completion messages sent must
// match them one for one.
func persistRound(ctx context.Context, st *sqlx.Stmt, round []*outcomeReq) error {
	n := len(round)
	steps, tos, metas, results, queues := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	msgIDs := make([]int64, n)
	hdrs := make([]sql.NullString, n)
	for i, r := range round {
		steps[i], tos[i], metas[i], results[i], queues[i], msgIDs[i] = r.step.String(), string(r.to), r.meta, r.results, r.queue, r.msgID
		hdrs[i] = r.headers
	}
	rows, err := st.QueryxContext(ctx, pq.Array(steps), pq.Array(tos), pq.Array(metas), pq.Array(results), pq.Array(queues), pq.Array(msgIDs), pq.Array(hdrs))
	if err != nil {
		return fmt.Errorf("outcome statement for %d steps: %w", n, err)
	}
	defer rows.Close()
	var persisted, sent, got int
	for rows.Next() {
		var out struct {
			Ord       int  `db:"ord"`
			Persisted bool `db:"persisted"`
			Sent      int  `db:"sent"`
			Deleted   int  `db:"deleted"`
		}
		if err := rows.StructScan(&out); err != nil {
			return fmt.Errorf("outcome statement for %d steps: %w", n, err)
		}
		if out.Ord < 1 || out.Ord > n {
			return fmt.Errorf("outcome statement for %d steps: unexpected row %d", n, out.Ord)
		}
		round[out.Ord-1].persisted = out.Persisted
		if out.Persisted {
			persisted++
		}
		sent = out.Sent
		got++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("outcome statement for %d steps: %w", n, err)
	}
	if got != n || persisted != sent {
		return fmt.Errorf("outcome statement for %d steps: %d rows, %d persisted but %d completion messages sent", n, got, persisted, sent)
	}
	return nil
}

// SendMessageTx sends msg to queue with delay 0 inside tx, so the send
// commits or rolls back with the business transaction (contract §4.2; the
// parameters are cast because pgmq.send is overloaded).
func SendMessageTx(ctx context.Context, tx *sqlx.Tx, queue string, msg json.RawMessage) error {
	var id int64
	if err := tx.QueryRowxContext(ctx, `SELECT pgmq.send($1::text, $2::jsonb, $3::integer)`, queue, string(msg), 0).Scan(&id); err != nil {
		return fmt.Errorf("send to %s: %w", queue, err)
	}
	return nil
}

// DeleteMessageTx deletes msgID from queue inside tx; false when the message
// no longer exists (already deleted by a previous attempt).
func DeleteMessageTx(ctx context.Context, tx *sqlx.Tx, queue string, msgID int64) (bool, error) {
	var ok bool
	if err := tx.QueryRowxContext(ctx, `SELECT pgmq.delete($1::text, $2::bigint)`, queue, msgID).Scan(&ok); err != nil {
		return false, fmt.Errorf("delete message %d from %s: %w", msgID, queue, err)
	}
	return ok, nil
}
