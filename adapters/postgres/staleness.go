package postgres

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DefaultStaleLimit caps the findings of one ScanStale per kind.
const DefaultStaleLimit = 100

// archiveLookback is how far back ScanStale looks in the step queues'
// archive tables: archived_at is indexed, so the scan stays cheap however
// large the archive grows, and a day covers any orchestration downtime
// worth planning for.
const archiveLookback = 24 * time.Hour

// staleCandidate is one piece of stale work found by a scan, with its task
// row locked.
type staleCandidate struct {
	TaskUUID  uuid.UUID     `db:"task_uuid"`
	StepUUID  uuid.NullUUID `db:"step_uuid"`
	Namespace string        `db:"namespace"`
	Since     time.Time     `db:"since"`
}

// staleEnqueuedSQL finds steps whose current state is enqueued since before
// the threshold, with no open entry yet, and locks their tasks, skipping
// tasks another instance (or a batch) holds.
const staleEnqueuedSQL = `
SELECT t.task_uuid, ws.workflow_step_uuid AS step_uuid, ns.name AS namespace, cur.created_at AS since
FROM tasker_workflow_step_transitions cur
JOIN tasker_workflow_steps ws ON ws.workflow_step_uuid = cur.workflow_step_uuid
JOIN tasker_tasks t ON t.task_uuid = ws.task_uuid
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
WHERE cur.most_recent AND cur.to_state = 'enqueued'
  AND cur.created_at < NOW() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM ` + DLQTable + ` d WHERE d.task_uuid = t.task_uuid AND d.step_uuid = ws.workflow_step_uuid
                  AND d.reason = 'enqueued_timeout' AND d.status = 'open')
ORDER BY cur.created_at
LIMIT $2
FOR UPDATE OF t SKIP LOCKED`

// staleTasksSQL finds tasks in_progress whose own newest transition and
// every step transition are older than the threshold.
const staleTasksSQL = `
SELECT t.task_uuid, NULL::uuid AS step_uuid, ns.name AS namespace, cur.created_at AS since
FROM tasker_task_transitions cur
JOIN tasker_tasks t ON t.task_uuid = cur.task_uuid
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
WHERE cur.most_recent AND cur.to_state = 'in_progress'
  AND cur.created_at < NOW() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM tasker_workflow_steps ws
                  JOIN tasker_workflow_step_transitions st ON st.workflow_step_uuid = ws.workflow_step_uuid
                  WHERE ws.task_uuid = t.task_uuid AND st.created_at >= NOW() - make_interval(secs => $1))
  AND NOT EXISTS (SELECT 1 FROM ` + DLQTable + ` d WHERE d.task_uuid = t.task_uuid AND d.step_uuid IS NULL
                  AND d.reason = 'task_timeout' AND d.status = 'open')
ORDER BY cur.created_at
LIMIT $2
FOR UPDATE OF t SKIP LOCKED`

// archivedStepsSQL (formatted with the queue's two table names) finds
// steps, not terminal, whose message was archived recently and which have no
// message left in the queue: nothing will ever run them.
const archivedStepsSQL = `
SELECT t.task_uuid, ws.workflow_step_uuid AS step_uuid, ns.name AS namespace, a.archived_at AS since
FROM (SELECT DISTINCT ON (message->>'step_uuid') (message->>'step_uuid')::uuid AS step_uuid, archived_at
      FROM pgmq.%[1]s
      WHERE archived_at > NOW() - make_interval(secs => $1)
        AND message->>'step_uuid' ~ '^[0-9a-fA-F-]{36}$'
      ORDER BY message->>'step_uuid', archived_at DESC) a
JOIN tasker_workflow_steps ws ON ws.workflow_step_uuid = a.step_uuid
JOIN tasker_workflow_step_transitions cur ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent
JOIN tasker_tasks t ON t.task_uuid = ws.task_uuid
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
WHERE cur.to_state IN ('pending', 'enqueued', 'in_progress')
  AND cur.created_at <= a.archived_at
  AND NOT EXISTS (SELECT 1 FROM pgmq.%[2]s q WHERE q.message->>'step_uuid' = a.step_uuid::text)
  AND NOT EXISTS (SELECT 1 FROM ` + DLQTable + ` d WHERE d.task_uuid = t.task_uuid AND d.step_uuid = ws.workflow_step_uuid
                  AND d.reason = 'message_archived' AND d.status = 'open')
LIMIT $2
FOR UPDATE OF t SKIP LOCKED`

var stepQueuePattern = regexp.MustCompile(`^[a-z0-9_]{1,41}_queue$`)

// ScanStale implements ports.StalenessScanner in one transaction: find each
// kind of stale work with its task row locked (SKIP LOCKED, so concurrent
// scanners split the work and never wait on the hot paths), record a DLQ
// entry (the partial unique index turns a concurrent duplicate into a
// no-op) and, when p.FailTask, fail the stale step and the task with the
// reason in the transition metadata. A task already terminal or in error
// gets the entry but no transition.
func (s *DLQStore) ScanStale(ctx context.Context, p ports.StalenessPolicy) ([]domain.DLQEntry, error) {
	if err := s.available(ctx); err != nil {
		return nil, err
	}
	if p.Limit <= 0 {
		p.Limit = DefaultStaleLimit
	}
	queues, err := s.stepQueues(ctx)
	if err != nil {
		return nil, err
	}
	var out []domain.DLQEntry
	err = WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		out = out[:0]
		kinds := []struct {
			reason domain.DLQReason
			query  string
			secs   float64
		}{
			{domain.DLQEnqueuedTimeout, staleEnqueuedSQL, p.EnqueuedTimeout.Seconds()},
			{domain.DLQTaskTimeout, staleTasksSQL, p.TaskTimeout.Seconds()},
		}
		for _, q := range queues {
			kinds = append(kinds, struct {
				reason domain.DLQReason
				query  string
				secs   float64
			}{domain.DLQMessageArchived, fmt.Sprintf(archivedStepsSQL, "a_"+q, "q_"+q), archiveLookback.Seconds()})
		}
		for _, k := range kinds {
			if k.secs <= 0 {
				continue
			}
			var found []staleCandidate
			if err := tx.SelectContext(ctx, &found, k.query, k.secs, p.Limit); err != nil {
				return fmt.Errorf("find %s: %w", k.reason, err)
			}
			for _, c := range found {
				e, ok, err := s.deadLetter(ctx, tx, k.reason, c, p)
				if err != nil {
					return err
				}
				if ok {
					out = append(out, e)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan stale work: %w", err)
	}
	return out, nil
}

// stepQueues lists the namespace step queues that exist.
func (s *DLQStore) stepQueues(ctx context.Context) ([]string, error) {
	var names []string
	if err := s.db.SelectContext(ctx, &names, `SELECT queue_name FROM pgmq.meta ORDER BY queue_name`); err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	out := names[:0]
	for _, n := range names {
		if stepQueuePattern.MatchString(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// deadLetter records one finding and applies the policy. The step is
// re-checked under its lock: a claim may have won since the scan's snapshot.
func (s *DLQStore) deadLetter(ctx context.Context, tx *sqlx.Tx, reason domain.DLQReason, c staleCandidate, p ports.StalenessPolicy) (domain.DLQEntry, bool, error) {
	detail := staleDetail(reason, c, p)
	var step StepLock
	if c.StepUUID.Valid {
		l, err := LockStepTx(ctx, tx, c.StepUUID.UUID)
		if err != nil {
			return domain.DLQEntry{}, false, err
		}
		if (reason == domain.DLQEnqueuedTimeout && l.State != domain.StepEnqueued) || l.State.IsTerminal() || l.State == domain.StepError {
			return domain.DLQEntry{}, false, nil
		}
		step = l
	}
	e, inserted, err := insertEntry(ctx, tx, domain.DLQEntry{TaskUUID: c.TaskUUID, StepUUID: c.StepUUID.UUID,
		Namespace: c.Namespace, Reason: reason, Detail: detail})
	if err != nil || !inserted || !p.FailTask {
		return e, inserted, err
	}
	meta := map[string]any{"dlq_reason": string(reason), "dlq_entry_uuid": e.EntryUUID.String()}
	if c.StepUUID.Valid && step.State != domain.StepInProgress {
		// An in_progress step may still finish on a live worker; only the
		// task is failed then, and the worker's outcome is kept.
		if _, _, err := applyStepTransition(ctx, tx, step, domain.StepEvent{Type: domain.EventFail, Message: detail}, meta); err != nil {
			return domain.DLQEntry{}, false, err
		}
	}
	task, err := LockTaskTx(ctx, tx, c.TaskUUID)
	if err != nil {
		return domain.DLQEntry{}, false, err
	}
	if task.State == domain.TaskPending || task.State == domain.TaskInProgress {
		if _, _, err := TransitionTaskTx(ctx, tx, c.TaskUUID, domain.TaskEvent{Type: domain.EventFail, Message: detail}, meta); err != nil {
			return domain.DLQEntry{}, false, err
		}
	}
	return e, true, nil
}

func staleDetail(reason domain.DLQReason, c staleCandidate, p ports.StalenessPolicy) string {
	switch reason {
	case domain.DLQEnqueuedTimeout:
		return fmt.Sprintf("step %s enqueued since %s (more than %s) with no claim: does any worker serve namespace %s?",
			c.StepUUID.UUID, c.Since.UTC().Format(time.RFC3339), p.EnqueuedTimeout, c.Namespace)
	case domain.DLQTaskTimeout:
		return fmt.Sprintf("task in_progress with no task or step transition since %s (more than %s)",
			c.Since.UTC().Format(time.RFC3339), p.TaskTimeout)
	default:
		return fmt.Sprintf("the message of step %s was archived at %s (receive limit reached) and no other message can run it",
			c.StepUUID.UUID, c.Since.UTC().Format(time.RFC3339))
	}
}
