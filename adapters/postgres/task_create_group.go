package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
)

// createReq is one task creation waiting in the creation group. run stores
// the outcome in createdAt and err.
type createReq struct {
	rows      taskRows
	named     []uuid.UUID
	createdAt time.Time
	err       error
}

// createGroup is the group commit of task creation: concurrent creations
// (a burst of POST /v1/tasks, a batch of task request messages) share one
// insert statement and one commit. Each commit is a WAL flush, and a
// statement costs a round trip plus its executor start-up in the backend,
// so a burst of N creations costs about N/batch of each. A lone creation
// finds the group idle and runs at once: it waits for nothing.
type createGroup = commitGroup[*createReq]

// insertOrGroup writes r through the creation group: alone, or in one
// statement with the creations that arrived meanwhile. It returns ctx.Err()
// when ctx ends before r was written (nothing was).
func (s *TaskStore) insertOrGroup(ctx context.Context, rows taskRows, named []uuid.UUID) (time.Time, error) {
	req := &createReq{rows: rows, named: named}
	if err := s.group.submit(ctx, req, s.runCreates); err != nil {
		return time.Time{}, err
	}
	if req.err != nil && ctx.Err() != nil && errors.Is(req.err, context.Canceled) {
		// The batch was cancelled because its callers gave up (batchContext):
		// report this caller's own reason, e.g. its request deadline (408),
		// rather than the batch's cancellation.
		return time.Time{}, fmt.Errorf("%w: %w", ctx.Err(), req.err)
	}
	return req.createdAt, req.err
}

// runCreates writes a batch of creations. Several share one statement; when
// it fails (one task's row breaks a constraint, say) nothing of it was
// written, and each half of the batch is run again the same way, down to
// creations alone, so that one bad task fails only its own request while
// its neighbours still share statements.
func (s *TaskStore) runCreates(ctx context.Context, reqs []*createReq) {
	if len(reqs) == 1 {
		r := reqs[0]
		r.createdAt, r.err = s.insertTaskRows(ctx, nil, r.rows, r.named)
		return
	}
	at, written, err := s.insertTasksRows(ctx, reqs)
	if err == nil || written || ctx.Err() != nil {
		for _, r := range reqs {
			r.createdAt, r.err = at[r.rows.taskUUID], err
		}
		return
	}
	half := len(reqs) / 2
	s.runCreates(ctx, reqs[:half])
	s.runCreates(ctx, reqs[half:])
}

// insertTasksSQL is insertTaskSQL over many tasks: one row per task in the
// task arrays ($1–$12), steps of every task in task then template order
// ($13–$19, each step naming its task), edges of every task ($20–$22).
const insertTasksSQL = `
WITH task AS (
	INSERT INTO tasker_tasks (task_uuid, named_task_uuid, complete, requested_at, initiator, source_system, reason,
	                          bypass_steps, tags, context, identity_hash, priority, claim_timeout_seconds,
	                          created_at, updated_at)
	SELECT t.id, t.named, false, NOW(), t.initiator, t.source, t.reason, t.bypass::json, t.tags::jsonb, t.context::jsonb,
	       t.hash, t.priority, t.claim_timeout, NOW(), NOW()
	FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
	            $10::integer[], $11::integer[]) WITH ORDINALITY
	     AS t(id, named, initiator, source, reason, bypass, tags, context, hash, priority, claim_timeout, ord)
	ORDER BY t.ord
	RETURNING task_uuid, created_at
),
steps AS (
	INSERT INTO tasker_workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid, retryable, retry_limit,
	                                   in_process, processed, attempts, inputs, skippable, created_at, updated_at)
	SELECT s.id, s.task, s.named, s.retryable, s.lim, false, false, 0, s.inputs::jsonb, false, NOW(), NOW()
	FROM unnest($13::uuid[], $14::uuid[], $15::uuid[], $16::boolean[], $17::integer[], $18::text[])
	     WITH ORDINALITY AS s(id, task, named, retryable, lim, inputs, ord)
	ORDER BY s.ord
	RETURNING 1
),
edges AS (
	INSERT INTO tasker_workflow_step_edges (workflow_step_edge_uuid, from_step_uuid, to_step_uuid, name, created_at, updated_at)
	SELECT e.id, e.f, e.t, 'provides', NOW(), NOW()
	FROM unnest($20::uuid[], $21::uuid[], $22::uuid[]) AS e(id, f, t)
	RETURNING 1
),
task_transitions AS (
	INSERT INTO tasker_task_transitions (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key,
	                                     most_recent, created_at, updated_at)
	SELECT t.id, t.task, 'pending', NULL, $23::jsonb, 1, true, NOW(), NOW()
	FROM unnest($12::uuid[], $1::uuid[]) AS t(id, task)
	RETURNING 1
),
step_transitions AS (
	INSERT INTO tasker_workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state,
	                                              metadata, sort_key, most_recent, created_at, updated_at)
	SELECT s.id, s.step, 'pending', NULL, $23::jsonb, 1, true, NOW(), NOW()
	FROM unnest($19::uuid[], $13::uuid[]) AS s(id, step)
	RETURNING 1
)
SELECT task.task_uuid, task.created_at, (SELECT COUNT(*) FROM steps) AS steps, (SELECT COUNT(*) FROM edges) AS edges,
       (SELECT COUNT(*) FROM task_transitions) + (SELECT COUNT(*) FROM step_transitions) AS transitions
FROM task`

// taskArrays are the parameters of insertTasksSQL.
type taskArrays struct {
	ids, named, initiators, sources, reasons, bypass, tags, contexts, hashes, transIDs []string
	priorities, claimTimeouts                                                          []int64
	stepIDs, stepTasks, stepNamed, stepTransIDs                                        []string
	retryable                                                                          []bool
	limits                                                                             []int64
	inputs                                                                             []sql.NullString
	edgeIDs, edgeFrom, edgeTo                                                          []string
}

func newTaskArrays(reqs []*createReq) taskArrays {
	var a taskArrays
	for _, q := range reqs {
		r := q.rows
		id := r.taskUUID.String()
		a.ids = append(a.ids, id)
		a.named = append(a.named, r.named.String())
		a.initiators = append(a.initiators, r.initiator)
		a.sources = append(a.sources, r.sourceSystem)
		a.reasons = append(a.reasons, r.reason)
		a.bypass = append(a.bypass, r.bypass)
		a.tags = append(a.tags, r.tags)
		a.contexts = append(a.contexts, r.context)
		a.hashes = append(a.hashes, r.identityHash)
		a.priorities = append(a.priorities, int64(r.priority))
		a.claimTimeouts = append(a.claimTimeouts, int64(r.claimTimeout))
		a.transIDs = append(a.transIDs, r.taskTransID.String())
		for i, sid := range r.stepIDs {
			a.stepIDs = append(a.stepIDs, sid)
			a.stepTasks = append(a.stepTasks, id)
			a.stepNamed = append(a.stepNamed, q.named[i].String())
			a.retryable = append(a.retryable, r.retryable[i])
			a.limits = append(a.limits, r.limits[i])
			a.inputs = append(a.inputs, r.inputs[i])
			a.stepTransIDs = append(a.stepTransIDs, r.stepTransIDs[i])
		}
		a.edgeIDs = append(a.edgeIDs, r.edgeIDs...)
		a.edgeFrom = append(a.edgeFrom, r.edgeFrom...)
		a.edgeTo = append(a.edgeTo, r.edgeTo...)
	}
	return a
}

// insertTasksRows writes every task of reqs with insertTasksSQL, checks
// every row was written, and returns each task's created_at. written is true
// when the statement committed but wrote other rows than expected (the
// creations must not be tried again).
func (s *TaskStore) insertTasksRows(ctx context.Context, reqs []*createReq) (at map[uuid.UUID]time.Time, written bool, err error) {
	st, err := s.stmts.pooled(ctx, insertTasksSQL)
	if err != nil {
		return nil, false, err
	}
	a := newTaskArrays(reqs)
	var out []struct {
		TaskUUID    uuid.UUID `db:"task_uuid"`
		CreatedAt   time.Time `db:"created_at"`
		Steps       int       `db:"steps"`
		Edges       int       `db:"edges"`
		Transitions int       `db:"transitions"`
	}
	err = st.SelectContext(ctx, &out, pq.Array(a.ids), pq.Array(a.named), pq.Array(a.initiators), pq.Array(a.sources),
		pq.Array(a.reasons), pq.Array(a.bypass), pq.Array(a.tags), pq.Array(a.contexts), pq.Array(a.hashes),
		pq.Array(a.priorities), pq.Array(a.claimTimeouts), pq.Array(a.transIDs),
		pq.Array(a.stepIDs), pq.Array(a.stepTasks), pq.Array(a.stepNamed), pq.Array(a.retryable), pq.Array(a.limits),
		pq.Array(a.inputs), pq.Array(a.stepTransIDs),
		pq.Array(a.edgeIDs), pq.Array(a.edgeFrom), pq.Array(a.edgeTo),
		string(domain.InitialTransitionMetadata))
	if err != nil {
		return nil, false, fmt.Errorf("insert %d tasks: %w", len(reqs), err)
	}
	if len(out) != len(reqs) || out[0].Steps != len(a.stepIDs) || out[0].Edges != len(a.edgeIDs) ||
		out[0].Transitions != len(a.stepIDs)+len(reqs) {
		return nil, true, fmt.Errorf("insert %d tasks: wrote %d tasks", len(reqs), len(out))
	}
	at = make(map[uuid.UUID]time.Time, len(out))
	for _, o := range out {
		at[o.TaskUUID] = o.CreatedAt.UTC()
	}
	return at, false, nil
}
