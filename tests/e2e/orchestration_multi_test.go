package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

// TestTwoOrchestratorsTwoFakeWorkersDiamonds runs two in-process
// orchestration instances (under the race detector in CI) and two scripted
// workers on one database: every task completes, no step is sent or enqueued
// twice, and transition histories have no sort_key gap. The 500-task run
// with the real binaries is TestRealBinariesTwoOrchestratorsTwoWorkers500Diamonds.
func TestTwoOrchestratorsTwoFakeWorkersDiamonds(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-instance run skipped in -short mode")
	}
	const tasks = 200
	db, url := OrchDB(t)
	orchs := []*Orchestrator{StartOrchestrator(t, db, url), StartOrchestrator(t, db, url)}
	NewFakeWorker(db, "worker-a").Start(t, 4)
	NewFakeWorker(db, "worker-b").Start(t, 4)

	start := time.Now()
	ids := make([]uuid.UUID, tasks)
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < tasks; i += 4 {
				ids[i] = orchs[i%2].CreateTask(t, "diamond_workflow", 2).TaskUUID
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool {
		var done int
		require.NoError(t, db.Get(&done, `SELECT COUNT(*) FROM tasker_tasks WHERE complete`))
		return done == tasks
	}, 5*time.Minute, 100*time.Millisecond)
	elapsed := time.Since(start)
	t.Logf("%d diamond tasks with 2 orchestrators + 2 fake workers: %s, %.1f tasks/s, %.1f steps/s",
		tasks, elapsed, tasks/elapsed.Seconds(), 4*tasks/elapsed.Seconds())

	for _, id := range ids[:20] {
		require.Equal(t, "complete", orchs[0].TaskStatus(t, id))
	}
	requireNoDuplicateWork(t, db, tasks)
}

// requireNoDuplicateWork checks that every task completed, every step was
// enqueued and sent exactly once, and no transition history has a sort_key
// gap, duplicate or several current rows.
func requireNoDuplicateWork(t *testing.T, db *sqlx.DB, tasks int) {
	t.Helper()
	var states []string
	require.NoError(t, db.Select(&states, `SELECT DISTINCT tt.to_state FROM tasker_task_transitions tt WHERE most_recent`))
	require.Equal(t, []string{"complete"}, states)
	var enqueues, steps, maxPerStep int
	require.NoError(t, db.Get(&steps, `SELECT COUNT(*) FROM tasker_workflow_steps`))
	require.NoError(t, db.Get(&enqueues, `SELECT COUNT(*) FROM tasker_workflow_step_transitions WHERE to_state = 'enqueued'`))
	require.NoError(t, db.Get(&maxPerStep, `SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n
		FROM tasker_workflow_step_transitions WHERE to_state = 'enqueued' GROUP BY workflow_step_uuid) x`))
	require.Equal(t, 4*tasks, steps)
	require.Equal(t, steps, enqueues, "every step enqueued exactly once")
	require.Equal(t, 1, maxPerStep)
	var sends int64
	require.NoError(t, db.Get(&sends, `SELECT COALESCE(MAX(msg_id), 0) FROM (
		SELECT msg_id FROM pgmq.q_examples_queue UNION ALL SELECT msg_id FROM pgmq.a_examples_queue
		UNION ALL SELECT last_value FROM pg_sequences WHERE schemaname = 'pgmq' AND sequencename LIKE 'q_examples_queue%') s`))
	t.Logf("step messages sent: %d for %d steps", sends, steps)
	require.EqualValues(t, steps, sends, "no step message sent twice")

	var gaps int
	require.NoError(t, db.Get(&gaps, `SELECT COUNT(*) FROM (
		SELECT workflow_step_uuid FROM tasker_workflow_step_transitions GROUP BY workflow_step_uuid
		HAVING COUNT(*) <> MAX(sort_key) OR COUNT(DISTINCT sort_key) <> COUNT(*)
		    OR COUNT(*) FILTER (WHERE most_recent) <> 1
		UNION ALL
		SELECT task_uuid FROM tasker_task_transitions GROUP BY task_uuid
		HAVING COUNT(*) <> MAX(sort_key) OR COUNT(DISTINCT sort_key) <> COUNT(*)
		    OR COUNT(*) FILTER (WHERE most_recent) <> 1) g`))
	require.Zero(t, gaps, "sort_key gaps, duplicates or several current rows")
}
