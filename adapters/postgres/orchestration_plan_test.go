package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// seqScans prepares query (one uuid parameter, as the store prepares it),
// explains its execution for arg under plan_cache_mode mode and returns the
// relations the plan reads with a sequential scan.
func seqScans(t *testing.T, db *sqlx.DB, query, mode string, arg uuid.UUID) []string {
	ctx := context.Background()
	conn, err := db.Connx(ctx)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = conn.ExecContext(ctx, `SET plan_cache_mode = `+mode)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, `PREPARE plan_under_test(uuid) AS `+query)
	require.NoError(t, err)
	defer func() {
		_, _ = conn.ExecContext(ctx, `DEALLOCATE plan_under_test`)
		_, _ = conn.ExecContext(ctx, `RESET plan_cache_mode`)
	}()
	var out []byte
	require.NoError(t, conn.GetContext(ctx, &out, `EXPLAIN (FORMAT JSON) EXECUTE plan_under_test('`+arg.String()+`')`))
	found, err := postgres.SeqScansInPlan(out)
	require.NoError(t, err)
	return found
}

// TestTaskReadPlanIsIndexLookupsWithoutStatistics: the task read of the
// result hop (taskStepsSQL) must not scan the transitions or edges tables on
// a database whose tables grew since their last ANALYZE (any young database,
// and every perf run). With the parents' states joined in, the planner chose
// hash joins over full scans of tasker_workflow_step_transitions, once per
// step, so the read grew with the table (5 ms per read at 2,000 steps).
func TestTaskReadPlanIsIndexLookupsWithoutStatistics(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	var task testdb.CreatedTask
	for i := 0; i < 150; i++ {
		task = testdb.CreateTask(t, db, diamondSpec())
		testdb.SetStepState(t, db, task.Steps["a"], domain.StepEnqueued)
		testdb.SetStepState(t, db, task.Steps["a"], domain.StepInProgress)
		testdb.SetStepState(t, db, task.Steps["a"], domain.StepComplete)
	}
	var analyzed bool
	require.NoError(t, db.Get(&analyzed, `SELECT COALESCE(MAX(last_analyze), MAX(last_autoanalyze)) IS NOT NULL
		FROM pg_stat_user_tables WHERE relname = 'tasker_workflow_step_transitions'`))
	if analyzed {
		t.Skip("autovacuum analyzed the table already; the plan under test is the one without statistics")
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		scans := seqScans(t, db, postgres.TaskStepsSQLForTest(), mode, task.TaskUUID)
		require.NotContains(t, scans, "tasker_workflow_step_transitions", mode)
		require.NotContains(t, scans, "tasker_workflow_step_edges", mode)
	}
}
