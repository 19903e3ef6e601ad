package postgres_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestSchemaMatchesContract checks the catalog against contract §2 for the
// details other code relies on: column types/defaults/nullability, the
// normative partial unique indexes, CHECK sets, and the absent D-f constraint.
func TestSchemaMatchesContract(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	type column struct {
		Table    string  `db:"table_name"`
		Column   string  `db:"column_name"`
		Type     string  `db:"type"`
		Nullable bool    `db:"nullable"`
		Default  *string `db:"default"`
	}
	var cols []column
	require.NoError(t, db.Select(&cols, `
		SELECT c.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type,
		       NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'tasker\_%' AND a.attnum > 0 AND NOT a.attisdropped`))
	byName := map[string]column{}
	for _, c := range cols {
		byName[c.Table+"."+c.Column] = c
	}
	def := func(s string) *string { return &s }
	cases := []column{
		{"tasker_task_namespaces", "task_namespace_uuid", "uuid", false, def("uuid_generate_v7()")},
		{"tasker_task_namespaces", "name", "character varying(64)", false, nil},
		{"tasker_named_tasks", "version", "character varying(16)", false, def("'0.1.0'::character varying")},
		{"tasker_named_tasks", "configuration", "jsonb", true, def("'{}'::jsonb")},
		{"tasker_named_steps", "name", "character varying(128)", false, nil},
		{"tasker_tasks", "requested_at", "timestamp without time zone", false, nil},
		{"tasker_tasks", "bypass_steps", "json", true, nil},
		{"tasker_tasks", "created_at", "timestamp(6) without time zone", false, nil},
		{"tasker_tasks", "claim_timeout_seconds", "integer", false, def("60")},
		{"tasker_tasks", "claimed_at", "timestamp(6) without time zone", true, nil},
		{"tasker_workflow_steps", "retry_limit", "integer", true, def("3")},
		{"tasker_workflow_steps", "attempts", "integer", true, nil},
		{"tasker_workflow_steps", "retryable", "boolean", false, def("true")},
		{"tasker_workflow_steps", "results", "jsonb", true, nil},
		{"tasker_workflow_step_edges", "name", "character varying", false, nil},
		{"tasker_workflow_step_transitions", "metadata", "jsonb", true, def("'{}'::jsonb")},
		{"tasker_workflow_step_transitions", "most_recent", "boolean", false, def("false")},
		{"tasker_task_transitions", "from_state", "character varying", true, nil},
		{"tasker_named_tasks_named_steps", "default_retry_limit", "integer", false, def("3")},
	}
	for _, want := range cases {
		t.Run(want.Table+"."+want.Column, func(t *testing.T) {
			got, ok := byName[want.Table+"."+want.Column]
			require.True(t, ok, "column exists")
			require.Equal(t, want, got)
		})
	}

	var indexes []string
	require.NoError(t, db.Select(&indexes, `SELECT indexdef FROM pg_indexes
		WHERE indexname IN ('idx_task_transitions_uuid_most_recent', 'idx_workflow_step_transitions_uuid_most_recent')
		ORDER BY indexname`))
	require.Equal(t, []string{
		"CREATE UNIQUE INDEX idx_task_transitions_uuid_most_recent ON public.tasker_task_transitions USING btree (task_uuid, most_recent) WHERE (most_recent = true)",
		"CREATE UNIQUE INDEX idx_workflow_step_transitions_uuid_most_recent ON public.tasker_workflow_step_transitions USING btree (workflow_step_uuid, most_recent) WHERE (most_recent = true)",
	}, indexes)

	var n int
	require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pg_constraint WHERE conname = $1`, postgres.ReferenceNamespaceNameConstraint))
	require.Zero(t, n, "D-f: the project schema has no (namespace, name) unique constraint")
	require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM pg_constraint WHERE confdeltype = 'c' AND conrelid::regclass::text LIKE 'tasker\_%'`))
	require.Zero(t, n, "no ON DELETE CASCADE")

	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
	for _, bad := range []struct{ table, col, id, state string }{
		{"tasker_workflow_step_transitions", "workflow_step_uuid", task.Steps["a"].String(), "done"},
		{"tasker_task_transitions", "task_uuid", task.TaskUUID.String(), "enqueued"}, // a step-only state
	} {
		_, err := db.Exec(`INSERT INTO `+bad.table+` (`+bad.col+`, to_state, sort_key, created_at, updated_at)
			VALUES ($1, $2, 9, NOW(), NOW())`, bad.id, bad.state)
		require.ErrorContains(t, err, "check constraint", "%s rejects to_state %q", bad.table, bad.state)
	}
	_, err := db.Exec(`INSERT INTO tasker_workflow_step_transitions (workflow_step_uuid, to_state, sort_key, most_recent, created_at, updated_at)
		VALUES ($1, 'enqueued', 2, true, NOW(), NOW())`, task.Steps["a"])
	require.ErrorContains(t, err, "idx_workflow_step_transitions_uuid_most_recent", "a second current row is refused")
}
