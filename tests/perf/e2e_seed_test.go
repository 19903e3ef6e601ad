package perf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// seedSQL fills a database whose templates are registered with completed
// tasks, set-based: $1 tasks of 4 steps, odd ones linear_workflow, even
// ones diamond_workflow, spread over the 30 days before now. The rows have
// the shapes task creation and a successful run write (compare a finished
// task of TestE2EThroughput): the task with its three transitions pending →
// in_progress → complete, each step with pending → enqueued → in_progress →
// complete, results as the example handlers return them, 'provides' edges
// per template, most_recent on the last transition. Named steps are found
// or created under the dependent system "default", as task creation does.
var seedSQL = []string{
	`INSERT INTO tasker_dependent_systems (name, created_at, updated_at)
	 VALUES ('default', NOW(), NOW()) ON CONFLICT (name) DO NOTHING`,
	`CREATE TEMP TABLE seed_shape (kind int, pos int, step_name text, result bigint, PRIMARY KEY (kind, pos))`,
	`INSERT INTO seed_shape VALUES
	 (1, 1, 'linear_step_1', 4), (1, 2, 'linear_step_2', 16), (1, 3, 'linear_step_3', 256), (1, 4, 'linear_step_4', 65536),
	 (0, 1, 'diamond_start', 4), (0, 2, 'diamond_branch_b', 16), (0, 3, 'diamond_branch_c', 16), (0, 4, 'diamond_end', 256)`,
	`CREATE TEMP TABLE seed_edge (kind int, from_pos int, to_pos int)`,
	`INSERT INTO seed_edge VALUES (1, 1, 2), (1, 2, 3), (1, 3, 4), (0, 1, 2), (0, 1, 3), (0, 2, 4), (0, 3, 4)`,
	`INSERT INTO tasker_named_steps (dependent_system_uuid, name, created_at, updated_at)
	 SELECT ds.dependent_system_uuid, sh.step_name, NOW(), NOW()
	 FROM seed_shape sh, tasker_dependent_systems ds WHERE ds.name = 'default'
	 ON CONFLICT (dependent_system_uuid, name) DO NOTHING`,
	`CREATE TEMP TABLE seed_named AS
	 SELECT sh.kind, sh.pos, sh.step_name, sh.result, nt.named_task_uuid, ns.named_step_uuid
	 FROM seed_shape sh
	 JOIN tasker_task_namespaces n ON n.name = 'examples'
	 JOIN tasker_named_tasks nt ON nt.task_namespace_uuid = n.task_namespace_uuid AND nt.version = '1.0.0'
	      AND nt.name = CASE sh.kind WHEN 1 THEN 'linear_workflow' ELSE 'diamond_workflow' END
	 JOIN tasker_dependent_systems ds ON ds.name = 'default'
	 JOIN tasker_named_steps ns ON ns.dependent_system_uuid = ds.dependent_system_uuid AND ns.name = sh.step_name`,
	`CREATE TEMP TABLE seed_task AS
	 SELECT i, uuid_generate_v7() AS task_uuid, i % 2 AS kind,
	        (NOW() AT TIME ZONE 'UTC') - interval '30 days' + (interval '30 days' * i / $1::int) AS ts
	 FROM generate_series(1, $1::int) i`,
	`CREATE TEMP TABLE seed_step AS
	 SELECT t.task_uuid, t.kind, t.ts, sn.pos, sn.result, sn.named_step_uuid, uuid_generate_v7() AS step_uuid,
	        t.ts + interval '150 ms' * sn.pos AS done_at
	 FROM seed_task t JOIN seed_named sn ON sn.kind = t.kind ORDER BY t.i, sn.pos`,
	`INSERT INTO tasker_tasks (task_uuid, named_task_uuid, complete, requested_at, completed_at, initiator, source_system, reason,
	                           bypass_steps, tags, context, identity_hash, priority, claim_timeout_seconds, created_at, updated_at)
	 SELECT t.task_uuid, (SELECT named_task_uuid FROM seed_named sn WHERE sn.kind = t.kind AND sn.pos = 1), true,
	        t.ts, t.ts + interval '700 ms', 'UNKNOWN', 'UNKNOWN', 'UNKNOWN', '[]'::json, '[]'::jsonb, '{"even_number": 2}'::jsonb,
	        encode(sha256(t.task_uuid::text::bytea), 'hex'), 0, 60, t.ts, t.ts + interval '700 ms'
	 FROM seed_task t ORDER BY t.i`,
	`INSERT INTO tasker_workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid, retryable, retry_limit, in_process, processed,
	                                   processed_at, attempts, last_attempted_at, results, skippable, created_at, updated_at,
	                                   priority, claim_timeout_seconds)
	 SELECT s.step_uuid, s.task_uuid, s.named_step_uuid, true, 3, false, true, s.done_at, 1, s.done_at - interval '20 ms',
	        jsonb_build_object('error', NULL, 'result', s.result, 'status', 'completed', 'success', true,
	          'metadata', jsonb_build_object('custom', '{}'::jsonb, 'context', '{}'::jsonb, 'retryable', false,
	            'worker_id', 'worker-seed', 'error_code', NULL, 'error_type', NULL, 'started_at', s.done_at - interval '1 ms',
	            'completed_at', s.done_at, 'handler_version', NULL, 'worker_hostname', 'seed', 'execution_time_ms', 0),
	          'step_uuid', s.step_uuid, 'orchestration_metadata', NULL),
	        false, s.ts, s.done_at, 0, 60
	 FROM seed_step s`,
	`INSERT INTO tasker_workflow_step_edges (from_step_uuid, to_step_uuid, name, created_at, updated_at)
	 SELECT a.step_uuid, b.step_uuid, 'provides', a.ts, a.ts
	 FROM seed_step a JOIN seed_edge e ON e.kind = a.kind AND e.from_pos = a.pos
	 JOIN seed_step b ON b.task_uuid = a.task_uuid AND b.pos = e.to_pos`,
	`INSERT INTO tasker_task_transitions (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
	 SELECT t.task_uuid, v.to_state, v.from_state,
	        CASE v.k WHEN 1 THEN '{"created_by": "task_initializer", "initialization": true}'::jsonb
	                 ELSE jsonb_build_object('event', v.event, 'timestamp', t.ts + v.at) END,
	        v.k, v.k = 3, t.ts + v.at, t.ts + v.at
	 FROM seed_task t CROSS JOIN (VALUES (1, 'pending', NULL, NULL, interval '0'),
	                                     (2, 'in_progress', 'pending', '{"type":"Start"}', interval '80 ms'),
	                                     (3, 'complete', 'in_progress', '{"type":"Complete"}', interval '700 ms'))
	      v(k, to_state, from_state, event, at)`,
	`INSERT INTO tasker_workflow_step_transitions (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent,
	                                              created_at, updated_at)
	 SELECT s.step_uuid, v.to_state, v.from_state,
	        CASE v.k WHEN 1 THEN '{"created_by": "task_initializer", "initialization": true}'::jsonb
	                 WHEN 2 THEN jsonb_build_object('event', '{"type":"Enqueue"}', 'timestamp', s.done_at + v.at)
	                 WHEN 3 THEN jsonb_build_object('event', '{"type":"Start"}', 'timestamp', s.done_at + v.at, 'worker_id', 'worker-seed')
	                 ELSE jsonb_build_object('event', jsonb_build_object('type', 'Complete', 'data', jsonb_build_object(
	                        'step_uuid', s.step_uuid, 'success', true, 'result', s.result, 'status', 'completed', 'error', NULL,
	                        'orchestration_metadata', NULL, 'metadata', jsonb_build_object('execution_time_ms', 0,
	                        'handler_version', NULL, 'retryable', false, 'completed_at', s.done_at, 'worker_id', 'worker-seed',
	                        'worker_hostname', 'seed', 'started_at', s.done_at, 'custom', '{}'::jsonb, 'error_code', NULL,
	                        'error_type', NULL, 'context', '{}'::jsonb)))::text,
	                      'timestamp', s.done_at, 'worker_id', 'worker-seed') END,
	        v.k, v.k = 4, CASE WHEN v.k = 1 THEN s.ts ELSE s.done_at + v.at END, CASE WHEN v.k = 1 THEN s.ts ELSE s.done_at + v.at END
	 FROM seed_step s CROSS JOIN (VALUES (1, 'pending', NULL, interval '0'), (2, 'enqueued', 'pending', interval '-60 ms'),
	                                     (3, 'in_progress', 'enqueued', interval '-20 ms'), (4, 'complete', 'in_progress', interval '0'))
	      v(k, to_state, from_state, at)`,
}

// seedDatabase builds the seeded database once: a fresh migrated database,
// templates registered and queues created by one orchestration and one
// worker started and stopped on it, then steps/4 completed tasks written by
// seedSQL, VACUUM ANALYZE (the test server may run with autovacuum off).
// Every run clones it (testdb.CloneURL), so the seeding is paid once. It
// returns the seeded database's URL and name; it is dropped when the test ends.
func seedDatabase(t *testing.T, bin string, steps int) (string, string) {
	start := time.Now()
	u := testdb.URL(t)
	cl := startCluster(t, bin, u, 1, 1)
	cl.stop()
	registered := time.Since(start)

	db, err := sqlx.Open("postgres", withParam(u, "application_name", appHarness+"-seed"))
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	ctx := context.Background()
	conn, err := db.Connx(ctx) // the temp tables live in one session
	require.NoError(t, err)
	tasks := steps / e2eStepsPerTask
	seedStart := time.Now()
	tx, err := conn.BeginTxx(ctx, nil)
	require.NoError(t, err)
	for _, q := range seedSQL {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{tasks}
		}
		_, err := tx.ExecContext(ctx, q, args...)
		require.NoError(t, err, q)
	}
	require.NoError(t, tx.Commit())
	seeded := time.Since(seedStart)
	vacStart := time.Now()
	_, err = conn.ExecContext(ctx, `VACUUM ANALYZE`)
	require.NoError(t, err)
	vacuumed := time.Since(vacStart)
	var check struct {
		Tasks int    `db:"tasks"`
		Steps int    `db:"steps"`
		Edges int    `db:"edges"`
		Done  int    `db:"done"`
		Size  string `db:"size"`
	}
	require.NoError(t, conn.GetContext(ctx, &check, `SELECT (SELECT count(*) FROM tasker_tasks WHERE complete) AS tasks,
		(SELECT count(*) FROM tasker_workflow_steps WHERE processed) AS steps,
		(SELECT count(*) FROM tasker_workflow_step_edges) AS edges,
		(SELECT count(*) FROM tasker_workflow_step_transitions WHERE most_recent AND to_state = 'complete') AS done,
		pg_size_pretty(pg_database_size(current_database())) AS size`))
	var name string
	require.NoError(t, conn.GetContext(ctx, &name, `SELECT current_database()`))
	require.Equal(t, tasks, check.Tasks, "seeded tasks")
	require.Equal(t, tasks*e2eStepsPerTask, check.Steps, "seeded steps")
	require.Equal(t, tasks*e2eStepsPerTask, check.Done, "seeded steps whose current state is complete")
	linear := (tasks + 1) / 2 // odd i: 3 edges; even i: diamond, 4 edges
	require.Equal(t, 3*linear+4*(tasks-linear), check.Edges, "seeded edges")
	require.NoError(t, conn.Close())
	e2ePrint("seed: %d completed tasks / %d completed steps (half linear, half diamond) in %s: template registration %s, SQL %s, VACUUM ANALYZE %s; database size %s",
		check.Tasks, check.Steps, time.Since(start).Round(time.Millisecond), registered.Round(time.Millisecond),
		seeded.Round(time.Millisecond), vacuumed.Round(time.Millisecond), check.Size)
	return u, name
}

// waitNoSessions waits until no session is connected to database name
// (CREATE DATABASE … TEMPLATE needs that).
func waitNoSessions(t *testing.T, admin *sqlx.DB, name string) {
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, admin.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, name))
		return n == 0
	}, 30*time.Second, 20*time.Millisecond, "sessions still connected to %s", name)
}
