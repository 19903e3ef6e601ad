package postgres

import (
	"regexp"
	"strconv"
)

// The statements of the set-based orchestration transaction (ProcessTasks).
// Each works on arrays, so a batch of any size costs the same four round
// trips plus BEGIN and COMMIT.
//
// They run as generic plans (batchPlansSQL, the transaction's first
// statement, sets plan_cache_mode for it): planning them costs 4–7 ms, more
// than running them. A
// generic plan is made once per connection, often while the tables are still
// small, and then kept while they grow, so no access path may depend on the
// table sizes it was planned with: every row is found by a LATERAL lookup
// per array element (OFFSET 0 keeps it from being flattened into a join the
// planner could hash over a sequential scan), a correlated scalar subquery,
// or, for UPDATEs, by the ctid the same statement just looked up (a TID
// scan). The ctid form is safe because every row updated is one the batch
// holds a lock on (its task row, a ready step row it locked) or one only
// ever changed under such a lock (current transition rows).

// batchLockSQL locks the tasks of a batch in task_uuid order (contract §3.3:
// task rows first, in a fixed order, so two batches never deadlock on each
// other) and maps the result steps $2 to their tasks. $1 are the requested
// tasks. The locked tasks are the requested ones plus those of the found
// steps; a task locked by another transaction is waited for, or skipped with
// SKIP LOCKED in place of the %s.
const batchLockSQL = `
WITH st AS MATERIALIZED (
	SELECT k.id AS step_uuid, w.task_uuid
	FROM unnest($2::uuid[]) AS k(id)
	CROSS JOIN LATERAL (SELECT ws.task_uuid FROM tasker_workflow_steps ws
	                    WHERE ws.workflow_step_uuid = k.id OFFSET 0) w
),
ids AS MATERIALIZED (
	SELECT DISTINCT u.id FROM (SELECT unnest($1::uuid[]) AS id UNION SELECT st.task_uuid FROM st) u
	ORDER BY u.id
),
lk AS MATERIALIZED (
	SELECT t.task_uuid FROM ids
	CROSS JOIN LATERAL (SELECT t.task_uuid FROM tasker_tasks t WHERE t.task_uuid = ids.id FOR UPDATE%s) t
)
SELECT st.step_uuid, st.task_uuid, false AS locked FROM st
UNION ALL
SELECT NULL, lk.task_uuid, true FROM lk`

// batchReadSQL runs after batchLockSQL, as its own statement so that under
// READ COMMITTED its snapshot holds everything committed before the locks
// were granted. For the locked tasks $1 it returns each task's current state
// and namespace with the views of all its steps (rows ordered by task, then
// workflow_step_uuid) and locks the ready steps of the tasks that are pending
// or in_progress, FOR UPDATE in workflow_step_uuid order (the locked column
// says which); batchEnqueueSQL re-checks their readiness under those locks.
// It also deletes the consumed messages $3 of queue $2 (run once, skipped
// when $3 is empty), so they disappear exactly when the batch's effects
// commit. The results column comes back for steps in error only, the only
// ones whose bookkeeping reads it: the results of the completed steps of
// every task of every batch would otherwise cross the wire for nothing.
// The columns are listed in the order batchRead scans them.
var batchReadSQL = `
WITH del AS MATERIALIZED (
	SELECT COUNT(*) AS n FROM pgmq.delete($2::text, $3::bigint[]) WHERE cardinality($3::bigint[]) > 0
),
hdr AS MATERIALIZED (
	SELECT k.id AS hdr_task_uuid,
	       (SELECT tt.to_state FROM tasker_task_transitions tt
	        WHERE tt.task_uuid = k.id AND tt.most_recent = true) AS task_state,
	       ti.namespace, ti.task_name, ti.task_created_at
	FROM unnest($1::uuid[]) AS k(id)
	LEFT JOIN LATERAL (SELECT n.name AS namespace, nt.name AS task_name, t.created_at AS task_created_at
	        FROM tasker_tasks t
	        JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
	        JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
	        WHERE t.task_uuid = k.id) ti ON true
),
v AS MATERIALIZED (` + stepViewFromSQL(`unnest($1::uuid[]) AS bt(id)
	CROSS JOIN LATERAL (SELECT w.* FROM tasker_workflow_steps w WHERE w.task_uuid = bt.id OFFSET 0) ws`,
	"true", "ws.workflow_step_uuid") + `),
lk AS MATERIALIZED (
	SELECT l.workflow_step_uuid
	FROM (SELECT v.workflow_step_uuid AS id FROM v JOIN hdr h ON h.hdr_task_uuid = v.task_uuid
	      WHERE v.ready_for_execution AND COALESCE(h.task_state, 'pending') IN ('pending', 'in_progress')
	      ORDER BY v.workflow_step_uuid) r
	CROSS JOIN LATERAL (SELECT ws.workflow_step_uuid FROM tasker_workflow_steps ws
	                    WHERE ws.workflow_step_uuid = r.id FOR UPDATE) l
)
SELECT h.task_state, h.namespace, h.task_name, h.task_created_at, lk.workflow_step_uuid IS NOT NULL AS locked, (SELECT d.n FROM del d) AS deleted,
       v.workflow_step_uuid, v.task_uuid, v.named_step_uuid, v.name, v.current_state, v.attempts, v.retry_limit, v.retryable,
       v.backoff_request_seconds, v.last_attempted_at, v.created_at, v.updated_at, v.processed_at,
       CASE WHEN v.current_state = 'error' THEN v.results END AS results,
       v.last_failure_at, v.total_parents, v.completed_parents, v.ready_for_execution
FROM v
JOIN hdr h ON h.hdr_task_uuid = v.task_uuid
LEFT JOIN lk ON lk.workflow_step_uuid = v.workflow_step_uuid
ORDER BY v.task_uuid, v.workflow_step_uuid`

// batchTaskStatesSQL reads the state of locked tasks that have no steps
// (batchReadSQL returns rows per step only).
const batchTaskStatesSQL = `
SELECT k.id AS task_uuid,
       (SELECT tt.to_state FROM tasker_task_transitions tt
        WHERE tt.task_uuid = k.id AND tt.most_recent = true) AS task_state
FROM unnest($1::uuid[]) AS k(id)`

// batchFinalizeSQL writes, in one statement, the results' bookkeeping and
// the finalization transitions of a batch:
//   - $1 step, $2 backoff seconds (NULL: keep), $3 not retryable: set
//     backoff_request_seconds / retryable = false on steps whose current
//     state is still error (a late or duplicate result is harmless);
//   - $4 tasks, each with $5 (the chain ends in complete), and the chains of
//     transitions in $6–$11 (task, to_state, from_state, metadata, position
//     in its task's chain from 1, last of its chain): flip each task's
//     current row, insert its chain with consecutive sort_keys after
//     MAX(sort_key), only the last row most_recent, and apply the §3.1 side
//     effects.
//
// "(SELECT COUNT(*) FROM flip) >= 0" makes the INSERT wait for the flip, as
// the partial unique index on most_recent requires.
const batchFinalizeSQL = "\nWITH " + batchFinalizeCTEs + "\n" + batchFinalizeCounts

// batchFinalizeCTEs are the CTEs of batchFinalizeSQL, shared with
// batchFinalizeEnqueueSQL.
const batchFinalizeCTEs = `b AS MATERIALIZED (
	SELECT k.id, k.backoff, k.not_retryable, w.ctid AS wctid
	FROM unnest($1::uuid[], $2::int[], $3::boolean[]) AS k(id, backoff, not_retryable)
	CROSS JOIN LATERAL (SELECT ws.ctid FROM tasker_workflow_steps ws WHERE ws.workflow_step_uuid = k.id
	                      AND (SELECT cur.to_state FROM tasker_workflow_step_transitions cur
	                           WHERE cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent = true) = 'error'
	                    OFFSET 0) w
),
bk AS (
	UPDATE tasker_workflow_steps ws
	SET backoff_request_seconds = COALESCE((SELECT b.backoff FROM b WHERE b.wctid = ws.ctid), ws.backoff_request_seconds),
	    retryable = CASE WHEN (SELECT b.not_retryable FROM b WHERE b.wctid = ws.ctid) THEN false ELSE ws.retryable END,
	    updated_at = NOW()
	WHERE ws.ctid = ANY(ARRAY(SELECT b.wctid FROM b))
	RETURNING 1
),
cur AS MATERIALIZED (
	SELECT c.id, c.completes, x.ctid AS tctid
	FROM unnest($4::uuid[], $5::boolean[]) AS c(id, completes)
	CROSS JOIN LATERAL (SELECT tt.ctid FROM tasker_task_transitions tt
	                    WHERE tt.task_uuid = c.id AND tt.most_recent = true OFFSET 0) x
),
fin_flip AS (
	UPDATE tasker_task_transitions SET most_recent = false, updated_at = NOW()
	WHERE ctid = ANY(ARRAY(SELECT cur.tctid FROM cur))
	RETURNING 1
),
fin_ins AS (
	INSERT INTO tasker_task_transitions
	  (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT c.task_uuid, c.to_state, c.from_state, c.metadata::jsonb,
	       (SELECT COALESCE(MAX(x.sort_key), 0) FROM tasker_task_transitions x WHERE x.task_uuid = c.task_uuid) + c.ord,
	       c.last, NOW(), NOW()
	FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::int[], $11::boolean[])
	     AS c(task_uuid, to_state, from_state, metadata, ord, last)
	WHERE (SELECT COUNT(*) FROM fin_flip) >= 0
	RETURNING 1
),
tk AS MATERIALIZED (
	SELECT c.id, c.completes, t.ctid AS tctid
	FROM unnest($4::uuid[], $5::boolean[]) AS c(id, completes)
	CROSS JOIN LATERAL (SELECT t.ctid FROM tasker_tasks t WHERE t.task_uuid = c.id OFFSET 0) t
),
upd AS (
	UPDATE tasker_tasks t SET complete = t.complete OR (SELECT tk.completes FROM tk WHERE tk.tctid = t.ctid),
	       completed_at = CASE WHEN (SELECT tk.completes FROM tk WHERE tk.tctid = t.ctid) THEN NOW() ELSE t.completed_at END,
	       updated_at = NOW()
	WHERE t.ctid = ANY(ARRAY(SELECT tk.tctid FROM tk))
	RETURNING 1
)`

// batchFinalizeCounts are the counts batchFinalize checks.
const batchFinalizeCounts = `SELECT ` + batchFinalizeCountColumns

const batchFinalizeCountColumns = `(SELECT COUNT(*) FROM bk) AS bookkept, (SELECT COUNT(*) FROM fin_flip) AS flipped,
       (SELECT COUNT(*) FROM fin_ins) AS inserted, (SELECT COUNT(*) FROM upd) AS updated`

// batchEnqueueSQL is §10.2 step 2 for the steps $1, which the batch locked
// in workflow_step_uuid order while holding their tasks' row locks; $2/$3
// map each of their tasks to its namespace queue. It re-checks readiness
// under those locks (a new statement, so a new snapshot), then for every step
// still ready, in one statement: fires Retry (error → pending) for error
// steps, fires Enqueue (pending → enqueued) with the step-row side effects,
// sends {"task_uuid","step_uuid"} with one pgmq.send_batch per queue (steps
// in task, then workflow_step_uuid order) and fires task Start for the tasks
// of $7 (those that were pending) that got a step. Sends and transitions
// commit together (D-m). Transition rows follow §3.3 as in batchFinalizeSQL;
// a Retry row is written already superseded by the Enqueue row after it. $4,
// $5 and $6 are the Retry, Enqueue and Start metadata; $8/$9 map tasks to
// the pgmq headers of their messages (trace context; absent = NULL).
var batchEnqueueSQL = "\nWITH " + batchEnqueueCTEs + "\nSELECT " + batchEnqueueColumns + "\nFROM ready r ORDER BY r.id"

// batchEnqueueCTEs are the CTEs of batchEnqueueSQL, shared with
// batchFinalizeEnqueueSQL.
var batchEnqueueCTEs = `ready AS MATERIALIZED (
	SELECT ws.workflow_step_uuid AS id, ws.task_uuid, q.queue, COALESCE(cur.to_state, 'pending') AS state,
	       ws.wctid, cur.cctid,
	       (SELECT COALESCE(MAX(x.sort_key), 0) FROM tasker_workflow_step_transitions x
	        WHERE x.workflow_step_uuid = ws.workflow_step_uuid) AS max_sort_key
	FROM unnest($1::uuid[]) AS k(id)
	CROSS JOIN LATERAL (SELECT w.*, w.ctid AS wctid FROM tasker_workflow_steps w WHERE w.workflow_step_uuid = k.id OFFSET 0) ws
	JOIN unnest($2::uuid[], $3::text[]) AS q(task_uuid, queue) ON q.task_uuid = ws.task_uuid
	LEFT JOIN LATERAL (SELECT c.to_state, c.ctid AS cctid FROM tasker_workflow_step_transitions c
	                   WHERE c.workflow_step_uuid = ws.workflow_step_uuid AND c.most_recent = true OFFSET 0) cur ON true
	WHERE ` + stepReadyPredicate + `
),
flip AS (
	UPDATE tasker_workflow_step_transitions SET most_recent = false, updated_at = NOW()
	WHERE ctid = ANY(ARRAY(SELECT r.cctid FROM ready r WHERE r.cctid IS NOT NULL))
	RETURNING 1
),
ins AS (
	INSERT INTO tasker_workflow_step_transitions
	  (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT n.id, n.to_state, n.from_state, n.metadata, n.sort_key, n.most_recent, NOW(), NOW()
	FROM (
	  SELECT r.id, 'pending' AS to_state, 'error' AS from_state, $4::jsonb AS metadata,
	         r.max_sort_key + 1 AS sort_key, false AS most_recent
	  FROM ready r WHERE r.state = 'error'
	  UNION ALL
	  SELECT r.id, 'enqueued', 'pending', $5::jsonb,
	         r.max_sort_key + CASE WHEN r.state = 'error' THEN 2 ELSE 1 END, true
	  FROM ready r) n
	WHERE (SELECT COUNT(*) FROM flip) >= 0
	RETURNING 1
),
touch AS (
	UPDATE tasker_workflow_steps SET updated_at = NOW()
	WHERE ctid = ANY(ARRAY(SELECT r.wctid FROM ready r))
	RETURNING 1
),
sent AS MATERIALIZED (
	SELECT g.queue, pgmq.send_batch(g.queue, g.msgs, g.hdrs, 0::integer) AS msg_id
	FROM (SELECT r.queue::text AS queue,
	             array_agg(jsonb_build_object('task_uuid', r.task_uuid, 'step_uuid', r.id) ORDER BY r.task_uuid, r.id)::jsonb[] AS msgs,
	             array_agg(h.headers ORDER BY r.task_uuid, r.id)::jsonb[] AS hdrs
	      FROM ready r LEFT JOIN unnest($8::uuid[], $9::jsonb[]) AS h(task_uuid, headers) ON h.task_uuid = r.task_uuid
	      GROUP BY r.queue ORDER BY r.queue) g
),
start AS MATERIALIZED (
	SELECT s.task_uuid, x.tctid, t.ctid AS kctid
	FROM (SELECT DISTINCT r.task_uuid FROM ready r WHERE r.task_uuid = ANY($7::uuid[])) s
	CROSS JOIN LATERAL (SELECT tt.ctid AS tctid FROM tasker_task_transitions tt
	                    WHERE tt.task_uuid = s.task_uuid AND tt.most_recent = true OFFSET 0) x
	CROSS JOIN LATERAL (SELECT t.ctid FROM tasker_tasks t WHERE t.task_uuid = s.task_uuid OFFSET 0) t
),
task_flip AS (
	UPDATE tasker_task_transitions SET most_recent = false, updated_at = NOW()
	WHERE ctid = ANY(ARRAY(SELECT s.tctid FROM start s))
	RETURNING task_uuid, to_state
),
task_ins AS (
	INSERT INTO tasker_task_transitions
	  (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	SELECT s.task_uuid, 'in_progress',
	       COALESCE((SELECT f.to_state FROM task_flip f WHERE f.task_uuid = s.task_uuid), 'pending'), $6::jsonb,
	       (SELECT COALESCE(MAX(x.sort_key), 0) + 1 FROM tasker_task_transitions x WHERE x.task_uuid = s.task_uuid),
	       true, NOW(), NOW()
	FROM start s
	RETURNING 1
),
task_touch AS (
	UPDATE tasker_tasks SET updated_at = NOW() WHERE ctid = ANY(ARRAY(SELECT s.kctid FROM start s))
	RETURNING 1
)`

// batchEnqueueColumns are the columns batchEnqueue reads: a row per step
// enqueued, each with the counts it checks.
const batchEnqueueColumns = `r.id, r.task_uuid, r.state, (SELECT COUNT(*) FROM ins) AS transitions, (SELECT COUNT(*) FROM touch) AS touched,
       (SELECT COUNT(*) FROM sent) AS sent, (SELECT COUNT(*) FROM task_ins) AS started,
       (SELECT COUNT(*) FROM task_touch) AS task_touched`

// batchFinalizeEnqueueSQL is batchFinalizeSQL ($1–$11) and batchEnqueueSQL
// ($12–$20) in one statement, one round trip fewer for a batch in which some
// tasks finish and others go on. ProcessTasks uses it only when the batch
// writes no bookkeeping: the finalized tasks and the enqueuing ones are then
// disjoint (a task with a finalization event enqueues nothing), so no row is
// written by both halves, and the enqueue re-checks readiness on a snapshot
// taken after the locks, as it does alone; a backoff written by the
// bookkeeping could change a step's readiness, which one statement would not
// see. It returns one row with a NULL id when no step was still ready, so
// the finalization counts always come back.
var batchFinalizeEnqueueSQL = "\nWITH " + batchFinalizeCTEs + ",\n" + shiftParams(batchEnqueueCTEs, 11) +
	"\nSELECT " + batchFinalizeCountColumns + ",\n" + batchEnqueueColumns +
	"\nFROM (SELECT 1) one LEFT JOIN ready r ON true ORDER BY r.id"

var paramRE = regexp.MustCompile(`\$([0-9]+)`)

// shiftParams renumbers the parameters $n of query to $(n+by).
func shiftParams(query string, by int) string {
	return paramRE.ReplaceAllStringFunc(query, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		return "$" + strconv.Itoa(n+by)
	})
}
