package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// growingTables are the tables whose size grows with history: a plan that
// reads one of them with a sequential scan costs more with every task ever run.
var growingTables = []string{"tasker_tasks", "tasker_workflow_steps", "tasker_workflow_step_transitions",
	"tasker_task_transitions", "tasker_workflow_step_edges"}

// planScans prepares query with the given parameter types, explains its
// generic plan for args (SQL literals) under settings, and returns the
// relations read by sequential scans.
func planScans(t *testing.T, db *sqlx.DB, query string, types, args []string, settings ...string) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	for _, s := range append([]string{"plan_cache_mode = force_generic_plan"}, settings...) {
		_, err := tx.ExecContext(ctx, "SET LOCAL "+s)
		require.NoError(t, err)
	}
	_, err = tx.ExecContext(ctx, fmt.Sprintf("PREPARE plan_under_test(%s) AS %s", strings.Join(types, ", "), query))
	require.NoError(t, err)
	var out []byte
	require.NoError(t, tx.GetContext(ctx, &out, fmt.Sprintf("EXPLAIN (FORMAT JSON) EXECUTE plan_under_test(%s)", strings.Join(args, ", "))))
	found, err := seqScansInPlan(out)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "DEALLOCATE plan_under_test")
	require.NoError(t, err)
	return found
}

// seqScansInPlan returns the relations an EXPLAIN (FORMAT JSON) output
// reads with a sequential scan.
func seqScansInPlan(out []byte) ([]string, error) {
	var plans []struct {
		Plan json.RawMessage `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) == 0 {
		return nil, fmt.Errorf("parse plan: %v (%d plans)", err, len(plans))
	}
	var found []string
	var walk func(raw json.RawMessage) error
	walk = func(raw json.RawMessage) error {
		var n struct {
			NodeType string            `json:"Node Type"`
			Relation string            `json:"Relation Name"`
			Plans    []json.RawMessage `json:"Plans"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return err
		}
		if n.NodeType == "Seq Scan" {
			found = append(found, n.Relation)
		}
		for _, c := range n.Plans {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return found, walk(plans[0].Plan)
}

// TestHotBatchPlansNeverScanGrowingTables: the generic plans of the
// set-based statements (the orchestration's task batch, the worker's claim
// and outcome batches) read the tables that grow with history only through
// index or TID lookups, planned on small tables without statistics, where a
// plan is most tempted to scan. The lock statements are planned with the
// session's own settings; the statements after them in their transaction
// with the enable_seqscan = off the lock statements set. Generic plans are
// kept while the tables grow, so a scan planned here would be paid on a
// database with a million completed steps on every batch.
func TestHotBatchPlansNeverScanGrowingTables(t *testing.T) {
	t.Parallel()
	db, err := Open(context.Background(), testdb.URL(t), PoolConfig{MaxOpenConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	spec := testdb.TaskSpec{Namespace: "orch_ns", Name: "diamond", Steps: []testdb.StepSpec{{Name: "a"},
		{Name: "b", Deps: []string{"a"}}, {Name: "c", Deps: []string{"a"}}, {Name: "d", Deps: []string{"b", "c"}}}}
	task := testdb.CreateTask(t, db, spec)
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepEnqueued)

	uuids := "'{" + task.TaskUUID.String() + "}'"
	step := "'{" + task.Steps["a"].String() + "}'"
	seqOff := "enable_seqscan = off"
	for _, tc := range []struct {
		name     string
		query    string
		types    []string
		args     []string
		settings []string
	}{
		{"task batch lock", fmt.Sprintf(batchLockSQL, ""), []string{"uuid[]", "uuid[]"}, []string{uuids, step}, nil},
		{"task batch lock, SKIP LOCKED", fmt.Sprintf(batchLockSQL, " SKIP LOCKED"), []string{"uuid[]", "uuid[]"}, []string{uuids, step}, nil},
		{"task batch read", batchReadSQL, []string{"uuid[]", "text", "bigint[]"}, []string{uuids, "'x'", "'{}'"}, []string{seqOff}},
		{"task batch finalize", batchFinalizeSQL,
			[]string{"uuid[]", "int[]", "boolean[]", "uuid[]", "boolean[]", "uuid[]", "text[]", "text[]", "text[]", "int[]", "boolean[]"},
			[]string{step, "'{1}'", "'{f}'", uuids, "'{f}'", uuids, "'{error}'", "'{in_progress}'", `'{"{}"}'`, "'{1}'", "'{t}'"}, []string{seqOff}},
		{"task batch enqueue", batchEnqueueSQL, []string{"uuid[]", "uuid[]", "text[]", "jsonb", "jsonb", "jsonb", "uuid[]", "uuid[]", "jsonb[]"},
			[]string{step, uuids, "'{orch_ns_queue}'", "'{}'", "'{}'", "'{}'", uuids, uuids, `'{"{}"}'`}, []string{seqOff}},
		{"task batch finalize and enqueue", batchFinalizeEnqueueSQL,
			[]string{"uuid[]", "int[]", "boolean[]", "uuid[]", "boolean[]", "uuid[]", "text[]", "text[]", "text[]", "int[]", "boolean[]",
				"uuid[]", "uuid[]", "text[]", "jsonb", "jsonb", "jsonb", "uuid[]", "uuid[]", "jsonb[]"},
			[]string{"'{}'", "'{}'", "'{}'", uuids, "'{f}'", uuids, "'{error}'", "'{in_progress}'", `'{"{}"}'`, "'{1}'", "'{t}'",
				step, uuids, "'{orch_ns_queue}'", "'{}'", "'{}'", "'{}'", uuids, uuids, `'{"{}"}'`}, []string{seqOff}},
		{"worker step lock", lockStepsSQL, []string{"uuid[]"}, []string{step}, nil},
		{"worker claim", claimStepsSQL, []string{"uuid[]", "jsonb[]", "uuid[]", "text[]"},
			[]string{step, `'{"{}"}'`, uuids, "'{orch_ns}'"}, []string{seqOff}},
		{"worker outcome", persistOutcomesSQL, []string{"uuid[]", "text[]", "jsonb[]", "jsonb[]", "text[]", "bigint[]", "jsonb[]"},
			[]string{step, "'{complete}'", `'{"{}"}'`, `'{"{}"}'`, "'{orch_ns_queue}'", "'{1}'", `'{"{}"}'`}, []string{seqOff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scans := planScans(t, db, tc.query, tc.types, tc.args, tc.settings...)
			for _, table := range growingTables {
				require.NotContains(t, scans, table)
			}
		})
	}
}
