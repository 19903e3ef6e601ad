package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

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
func (s *StepStore) PersistOutcome(ctx context.Context, o ports.StepOutcome) (bool, error) {
	if o.StepUUID == uuid.Nil {
		return false, fmt.Errorf("persist outcome: missing step uuid")
	}
	if o.Result.StepUUID != uuid.Nil && o.Result.StepUUID != o.StepUUID {
		return false, fmt.Errorf("persist outcome of step %s: result is for step %s", o.StepUUID, o.Result.StepUUID)
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
	persisted := false
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		l, err := LockStepTx(ctx, tx, o.StepUUID)
		if err != nil {
			return err
		}
		if o.TaskUUID != uuid.Nil && o.TaskUUID != l.TaskUUID {
			return fmt.Errorf("step belongs to task %s, not %s", l.TaskUUID, o.TaskUUID)
		}
		if l.State == domain.StepInProgress {
			if _, _, err := applyStepTransition(ctx, tx, l, ev, extra); err != nil {
				return err
			}
			msg, err := json.Marshal(domain.SimpleStepMessage{TaskUUID: l.TaskUUID, StepUUID: l.StepUUID})
			if err != nil {
				return fmt.Errorf("encode completion message: %w", err)
			}
			if err := SendMessageTx(ctx, tx, domain.QueueStepResults, msg); err != nil {
				return err
			}
			persisted = true
		}
		if o.Queue != "" {
			if _, err := DeleteMessageTx(ctx, tx, o.Queue, o.MsgID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("persist outcome of step %s: %w", o.StepUUID, err)
	}
	return persisted, nil
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
