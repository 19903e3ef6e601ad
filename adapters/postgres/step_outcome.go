package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// dependencyResultsSQL walks the edges upwards from the step: all transitive
// ancestors (UNION dedupes, so diamonds are visited once and a corrupt cyclic
// graph still terminates), keeping those processed with non-NULL results.
const dependencyResultsSQL = `
WITH RECURSIVE ancestors(step_uuid) AS (
  SELECT e.from_step_uuid FROM tasker_workflow_step_edges e WHERE e.to_step_uuid = $1
  UNION
  SELECT e.from_step_uuid FROM tasker_workflow_step_edges e
  JOIN ancestors a ON e.to_step_uuid = a.step_uuid
)
SELECT ns.name, s.results
FROM ancestors a
JOIN tasker_workflow_steps s ON s.workflow_step_uuid = a.step_uuid
JOIN tasker_named_steps ns ON ns.named_step_uuid = s.named_step_uuid
WHERE s.processed = true AND s.results IS NOT NULL`

// DependencyResults maps step name → result over every transitive ancestor
// with processed = true and non-NULL results (contract §9.1). Each value is
// unwrapped per D-r: the stored object's "result" when it is a
// StepExecutionResult, otherwise the raw stored JSON (rows written by older
// reference workers). A step without ancestors yields an empty map.
func (s *StepStore) DependencyResults(ctx context.Context, stepUUID uuid.UUID) (map[string]json.RawMessage, error) {
	rows, err := s.db.QueryxContext(ctx, dependencyResultsSQL, stepUUID)
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

// persistOutcomeSQL is contract §9.3 step 5 after the step row lock, in one
// statement (its READ COMMITTED snapshot starts after the lock was granted,
// so it reads the true current state):
//
//   - cas is the compare-and-set: one row only when the current state is
//     in_progress;
//   - flip/ins/upd write the transition to $2 (complete or error, with
//     metadata $3) exactly as §3.3 prescribes (ins reads flip through an
//     InitPlan so the old current row is cleared before the new one is
//     inserted) and the §3.2 side effects with results = $4;
//   - sent sends the completion message to orchestration_step_results, only
//     when cas holds; del deletes message $6 from queue $5 whether or not
//     cas holds (a stale outcome still acknowledges its message), skipped
//     when $5 is empty. Both are plain SELECTs of volatile functions, which
//     PostgreSQL evaluates only as far as the outer query reads them, so the
//     outer query counts their rows.
const persistOutcomeSQL = `
WITH cas AS (
  SELECT 1 FROM tasker_workflow_step_transitions t
  WHERE t.workflow_step_uuid = $1 AND t.most_recent = true AND t.to_state = 'in_progress'
),
flip AS (
  UPDATE tasker_workflow_step_transitions SET most_recent = false, updated_at = NOW()
  WHERE workflow_step_uuid = $1 AND most_recent = true AND EXISTS (SELECT 1 FROM cas)
  RETURNING 1
),
ins AS (
  INSERT INTO tasker_workflow_step_transitions
    (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
  SELECT $1, $2::text, 'in_progress', $3::jsonb,
    (SELECT COALESCE(MAX(x.sort_key), 0) + 1 FROM tasker_workflow_step_transitions x WHERE x.workflow_step_uuid = $1),
    true, NOW(), NOW()
  FROM cas WHERE (SELECT COUNT(*) FROM flip) >= 0
  RETURNING 1
),
upd AS (
  UPDATE tasker_workflow_steps SET in_process = false,
    processed = CASE WHEN $2::text = 'complete' THEN true ELSE processed END,
    processed_at = CASE WHEN $2::text = 'complete' THEN NOW() ELSE processed_at END,
    results = $4::jsonb, updated_at = NOW()
  WHERE workflow_step_uuid = $1 AND EXISTS (SELECT 1 FROM cas)
  RETURNING task_uuid
),
sent AS (
  SELECT pgmq.send('` + domain.QueueStepResults + `'::text,
    jsonb_build_object('task_uuid', u.task_uuid, 'step_uuid', $1::uuid), 0::integer) AS msg_id
  FROM upd u
),
del AS (
  SELECT pgmq.delete($5::text, $6::bigint) AS ok WHERE $5::text <> ''
)
SELECT EXISTS (SELECT 1 FROM cas) AS persisted,
       (SELECT COUNT(*) FROM sent) AS sent,
       (SELECT COUNT(*) FROM del) AS deleted`

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
// Concurrent calls are group-committed (see outcomeGroup): outcomes arriving
// while another outcome transaction commits share the next transaction, each
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
	// Prepare outside any transaction: preparing takes a pool connection.
	if _, err := s.stmts.get(ctx, lockStepsSQL); err != nil {
		return false, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	if _, err := s.stmts.get(ctx, persistOutcomeSQL); err != nil {
		return false, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	err = s.outcomes.submit(ctx, req, s.persistBatch)
	if err == nil {
		err = req.err
	}
	if err != nil {
		return false, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	return req.persisted, nil
}

// outcomeReq is one validated outcome, encoded for persistOutcomeSQL.
type outcomeReq struct {
	step    uuid.UUID
	task    uuid.UUID // uuid.Nil: not checked
	to      domain.StepState
	meta    string
	results string
	queue   string
	msgID   int64

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
	ev := domain.StepEvent{Type: domain.EventComplete, Result: &res}
	if !res.Success {
		msg := "step failed"
		if res.Error != nil && res.Error.Message != "" {
			msg = res.Error.Message
		}
		ev = domain.StepEvent{Type: domain.EventFail, Message: msg, Result: &res}
	}
	var extra map[string]any
	if o.WorkerID != "" {
		extra = map[string]any{"worker_id": o.WorkerID}
	}
	to, err := domain.NextStepState(domain.StepInProgress, ev.Type, domain.StepGuard{})
	if err != nil {
		return nil, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	meta, err := domain.StepEventMetadata(ev, time.Now(), extra)
	if err != nil {
		return nil, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	results, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("persist outcome of step %s: encode result: %w", o.StepUUID, err)
	}
	return &outcomeReq{step: o.StepUUID, task: o.TaskUUID, to: to, meta: string(meta), results: string(results),
		queue: o.Queue, msgID: o.MsgID}, nil
}

// lockStepsSQL locks several step rows in workflow_step_uuid order (the
// contract's lock order: LockRows sits above the sort) and returns their tasks.
const lockStepsSQL = `SELECT workflow_step_uuid, task_uuid FROM tasker_workflow_steps
WHERE workflow_step_uuid = ANY($1::uuid[]) ORDER BY workflow_step_uuid FOR UPDATE`

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

// persistBatch persists reqs in one transaction: BEGIN, one statement
// locking every step row, then persistOutcomeSQL per outcome, COMMIT. An
// outcome whose step is missing or belongs to another task fails alone (its
// statement is not run). When the transaction itself fails and holds more
// than one outcome, each is retried in its own transaction, so one bad
// outcome cannot fail its neighbours.
func (s *StepStore) persistBatch(ctx context.Context, reqs []*outcomeReq) {
	err := s.persistTx(ctx, reqs)
	if err == nil {
		return
	}
	if len(reqs) == 1 {
		reqs[0].err = err
		return
	}
	for _, r := range reqs {
		r.err = nil
		if err := s.persistTx(ctx, []*outcomeReq{r}); err != nil {
			r.err = err
		}
	}
}

func (s *StepStore) persistTx(ctx context.Context, reqs []*outcomeReq) error {
	lockSt, err := s.stmts.get(ctx, lockStepsSQL)
	if err != nil {
		return err
	}
	outcomeSt, err := s.stmts.get(ctx, persistOutcomeSQL)
	if err != nil {
		return err
	}
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = r.step.String()
	}
	return WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		owners, err := lockSteps(ctx, tx.StmtxContext(ctx, lockSt), ids)
		if err != nil {
			return err
		}
		st := tx.StmtxContext(ctx, outcomeSt)
		for _, r := range reqs {
			r.persisted, r.err = false, nil
			owner, ok := owners[r.step]
			switch {
			case !ok:
				r.err = fmt.Errorf("lock step %s: %w", r.step, ports.ErrNotFound)
				continue
			case r.task != uuid.Nil && owner != r.task:
				r.err = fmt.Errorf("step belongs to task %s, not %s", owner, r.task)
				continue
			}
			var out struct {
				Persisted bool `db:"persisted"`
				Sent      int  `db:"sent"`
				Deleted   int  `db:"deleted"`
			}
			if err := st.GetContext(ctx, &out, r.step, string(r.to), r.meta, r.results, r.queue, r.msgID); err != nil {
				return fmt.Errorf("outcome statement for step %s: %w", r.step, err)
			}
			if out.Persisted != (out.Sent == 1) {
				return fmt.Errorf("outcome statement for step %s: persisted=%v but %d completion messages sent", r.step, out.Persisted, out.Sent)
			}
			r.persisted = out.Persisted
		}
		return nil
	})
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
