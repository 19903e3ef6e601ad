package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// enqueueNewSQL enqueues the root steps of tasks just created, in one
// statement that commits on its own: one round trip and one commit for a
// whole group of new tasks, where the batch path (ProcessTasks) takes a
// transaction of five, reading every step of every task back to plan what
// is already known: a new task's root steps are its ready steps.
//
// Each task is locked SKIP LOCKED in task_uuid order, like the batch path,
// so a task the enqueue cycle holds is left to it. Every write is a
// compare-and-set on the current transition: the task's (pending, most
// recent) and each root step's (pending, most recent). A row that another
// transaction changed after this statement's snapshot was taken is re-read
// at its latest version when updated, so a task that was started, cancelled
// or enqueued meanwhile fails its CAS and is left; nothing is enqueued
// twice. Steps are flipped only for tasks whose own flip succeeded, and the
// new transitions are numbered after the rows they replace. What is written
// is what batchEnqueueSQL writes for these steps: pending → enqueued with
// the Enqueue metadata, task pending → in_progress with the Start metadata,
// updated_at touched, one pgmq.send_batch per queue with the messages'
// trace headers.
const enqueueNewSQL = `
WITH task AS MATERIALIZED (
	SELECT x.task_uuid, x.ctid AS kctid
	FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, ord)
	CROSS JOIN LATERAL (SELECT t.task_uuid, t.ctid FROM tasker_tasks t WHERE t.task_uuid = k.id
	                    FOR UPDATE SKIP LOCKED) x
	ORDER BY k.ord
),
task_flip AS (
	UPDATE tasker_task_transitions tt SET most_recent = false, updated_at = NOW()
	FROM task WHERE tt.task_uuid = task.task_uuid AND tt.most_recent = true AND tt.to_state = 'pending'
	RETURNING tt.task_uuid, tt.sort_key
),
step_flip AS (
	UPDATE tasker_workflow_step_transitions st SET most_recent = false, updated_at = NOW()
	FROM unnest($2::uuid[], $3::uuid[]) AS r(step, task)
	WHERE st.workflow_step_uuid = r.step AND st.most_recent = true AND st.to_state = 'pending'
	  AND r.task IN (SELECT f.task_uuid FROM task_flip f)
	RETURNING st.workflow_step_uuid AS id, r.task AS task_uuid, st.sort_key
),
ins AS (
	INSERT INTO tasker_workflow_step_transitions
	  (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT f.id, 'enqueued', 'pending', $6::jsonb, f.sort_key + 1, true, NOW(), NOW() FROM step_flip f
	RETURNING 1
),
touch AS (
	UPDATE tasker_workflow_steps s SET updated_at = NOW()
	FROM step_flip f WHERE s.workflow_step_uuid = f.id
	RETURNING 1
),
task_ins AS (
	INSERT INTO tasker_task_transitions
	  (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT f.task_uuid, 'in_progress', 'pending', $7::jsonb, f.sort_key + 1, true, NOW(), NOW() FROM task_flip f
	RETURNING 1
),
task_touch AS (
	UPDATE tasker_tasks t SET updated_at = NOW()
	FROM task k JOIN task_flip f ON f.task_uuid = k.task_uuid WHERE t.ctid = k.kctid
	RETURNING 1
),
sent AS MATERIALIZED (
	SELECT g.queue, pgmq.send_batch(g.queue, g.msgs, g.hdrs, 0::integer) AS msg_id
	FROM (SELECT q.queue,
	             array_agg(jsonb_build_object('task_uuid', f.task_uuid, 'step_uuid', f.id) ORDER BY f.task_uuid, f.id)::jsonb[] AS msgs,
	             array_agg(q.hdr ORDER BY f.task_uuid, f.id)::jsonb[] AS hdrs
	      FROM step_flip f JOIN unnest($1::uuid[], $4::text[], $5::jsonb[]) AS q(task_uuid, queue, hdr) ON q.task_uuid = f.task_uuid
	      GROUP BY q.queue ORDER BY q.queue) g
)
SELECT f.task_uuid, f.step_uuid,
       (SELECT COUNT(*) FROM ins) AS transitions, (SELECT COUNT(*) FROM touch) AS touched,
       (SELECT COUNT(*) FROM sent) AS sent, (SELECT COUNT(*) FROM task_ins) AS started,
       (SELECT COUNT(*) FROM task_touch) AS task_touched
FROM (SELECT f.task_uuid, NULL::uuid AS step_uuid FROM task_flip f
      UNION ALL SELECT s.task_uuid, s.id FROM step_flip s) f`

// EnqueueNewTasks implements ports.StepEnqueuer with enqueueNewSQL.
func (s *OrchestrationStore) EnqueueNewTasks(ctx context.Context, tasks []ports.NewTaskRoots,
	traceHeaders func(uuid.UUID) json.RawMessage) ([]ports.EnqueueReport, []uuid.UUID, error) {
	if len(tasks) == 0 {
		return nil, nil, nil
	}
	tasks = slices.Clone(tasks)
	slices.SortFunc(tasks, func(a, b ports.NewTaskRoots) int { return slices.Compare(a.TaskUUID[:], b.TaskUUID[:]) })
	ids, queues, hdrs := make([]string, len(tasks)), make([]string, len(tasks)), make([]sql.NullString, len(tasks))
	var steps, stepTasks []string
	for i, t := range tasks {
		queue := domain.QueueName(t.Namespace)
		if err := s.ensureQueueKnown(ctx, s.db, queue); err != nil {
			return nil, nil, err
		}
		ids[i], queues[i] = t.TaskUUID.String(), queue
		if traceHeaders != nil && len(t.Roots) > 0 {
			if h := traceHeaders(t.TaskUUID); h != nil {
				hdrs[i] = sql.NullString{String: string(h), Valid: true}
			}
		}
		for _, r := range t.Roots {
			steps, stepTasks = append(steps, r.StepUUID.String()), append(stepTasks, t.TaskUUID.String())
		}
	}
	meta, err := enqueueMetadata(time.Now())
	if err != nil {
		return nil, nil, err
	}
	st, err := s.stmts.pooled(ctx, enqueueNewSQL)
	if err != nil {
		return nil, nil, fmt.Errorf("enqueue new tasks: %w", err)
	}
	var rows []struct {
		TaskUUID    uuid.UUID     `db:"task_uuid"`
		StepUUID    uuid.NullUUID `db:"step_uuid"`
		Transitions int           `db:"transitions"`
		Touched     int           `db:"touched"`
		Sent        int           `db:"sent"`
		Started     int           `db:"started"`
		TaskTouched int           `db:"task_touched"`
	}
	if err := st.SelectContext(ctx, &rows, pq.Array(ids), pq.Array(nonNilStrings(steps)), pq.Array(nonNilStrings(stepTasks)),
		pq.Array(queues), pq.Array(hdrs), meta.enqueue, meta.start); err != nil {
		return nil, nil, fmt.Errorf("enqueue new tasks: %w", err)
	}
	started := map[uuid.UUID]bool{}
	sent := map[uuid.UUID]map[uuid.UUID]bool{}
	nSteps := 0
	for _, r := range rows {
		if !r.StepUUID.Valid {
			started[r.TaskUUID] = true
			continue
		}
		if sent[r.TaskUUID] == nil {
			sent[r.TaskUUID] = map[uuid.UUID]bool{}
		}
		sent[r.TaskUUID][r.StepUUID.UUID] = true
		nSteps++
	}
	if len(rows) > 0 {
		r := rows[0]
		if r.Transitions != nSteps || r.Touched != nSteps || r.Sent != nSteps || r.Started != len(started) || r.TaskTouched != len(started) {
			// The statement has committed; this is a bug, not a state to retry.
			return nil, nil, fmt.Errorf("enqueue new tasks: %d steps and %d tasks flipped but %d transitions, %d step updates, %d messages, %d task starts (%d touched) written",
				nSteps, len(started), r.Transitions, r.Touched, r.Sent, r.Started, r.TaskTouched)
		}
	}
	var out []ports.EnqueueReport
	var left []uuid.UUID
	for _, t := range tasks {
		if !started[t.TaskUUID] {
			left = append(left, t.TaskUUID)
			continue
		}
		rep := ports.EnqueueReport{TaskUUID: t.TaskUUID, Namespace: t.Namespace, TaskStarted: true}
		for _, r := range t.Roots {
			if sent[t.TaskUUID][r.StepUUID] {
				rep.Steps = append(rep.Steps, ports.EnqueuedStep{StepUUID: r.StepUUID, Name: r.Name})
			}
		}
		slices.SortFunc(rep.Steps, func(a, b ports.EnqueuedStep) int { return slices.Compare(a.StepUUID[:], b.StepUUID[:]) })
		rep.StepsEnqueued = len(rep.Steps)
		if rep.StepsEnqueued < len(t.Roots) {
			// Started, but a root step was no longer pending: the batch
			// path looks at the task as a whole.
			left = append(left, t.TaskUUID)
		}
		out = append(out, rep)
	}
	return out, left, nil
}
