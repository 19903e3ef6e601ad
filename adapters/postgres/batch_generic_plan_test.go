package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestBatchLockStatementsRunGenericPlans: the lock statements that open the
// orchestration's task batch and the worker's step batch run their prepared
// generic plan every time. Before, they were planned afresh on every
// execution (custom_plans 19 of 20 in pg_prepared_statements): the generic
// plan setting came from inside the statement, too late for its own plan.
func TestBatchLockStatementsRunGenericPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// One connection, so that pg_prepared_statements is the batches' session.
	db, err := postgres.Open(ctx, testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 1, MaxIdleConns: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	orch, steps := postgres.NewOrchestrationStore(db), postgres.NewStepStore(db)
	const runs = 12
	for range runs {
		_, err := orch.ProcessTasks(ctx, ports.TaskBatch{Tasks: []ports.TaskItem{{TaskUUID: uuid.New()}, {TaskUUID: uuid.New()}}})
		require.NoError(t, err)
		_, err = steps.ClaimStep(ctx, uuid.New(), "worker-plan-test")
		require.ErrorIs(t, err, ports.ErrNotFound)
	}
	var stmts []struct {
		Statement string `db:"statement"`
		Generic   int64  `db:"generic_plans"`
		Custom    int64  `db:"custom_plans"`
	}
	require.NoError(t, db.SelectContext(ctx, &stmts, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements`))
	locks := 0
	for _, s := range stmts {
		if !strings.Contains(s.Statement, "FOR UPDATE") {
			continue
		}
		locks++
		require.Zero(t, s.Custom, "custom plans of %s", s.Statement)
		require.GreaterOrEqual(t, s.Generic, int64(runs-1), "generic plans of %s", s.Statement)
	}
	require.Equal(t, 2, locks, "the task batch lock and the worker step lock")
}
