package migrations_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres/migrations"
)

// TestFailedMigrationReportsWhatWasApplied: when one file fails, Migrate
// names it, reports the files applied before it, leaves the failed file's
// work rolled back, and a later run after the fix applies the rest.
func TestFailedMigrationReportsWhatWasApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptyDB(t)
	// A foreign table with the name of a schema table but none of its columns:
	// CREATE TABLE IF NOT EXISTS keeps it, the index on it then fails.
	_, err := db.ExecContext(ctx, `CREATE TABLE tasker_task_transitions (unrelated int)`)
	require.NoError(t, err)

	applied, err := migrations.Migrate(ctx, db.DB)
	require.Error(t, err)
	require.Contains(t, err.Error(), "apply migration 00002_tasker_schema.sql: ")
	require.Contains(t, err.Error(), `column "most_recent" does not exist`)
	require.Len(t, applied, 1)
	require.Equal(t, "00001_uuid_v7.sql", applied[0].Name)
	require.NotEmpty(t, applied[0].Duration)

	var tasks sql.NullString
	require.NoError(t, db.Get(&tasks, `SELECT to_regclass('public.tasker_tasks')::text`))
	require.False(t, tasks.Valid, "the failed file's other tables were rolled back")
	status, err := migrations.StatusOf(ctx, db.DB)
	require.NoError(t, err)
	require.Len(t, status, embeddedCount(t))
	for _, s := range status {
		require.Equal(t, s.Name == "00001_uuid_v7.sql", s.Applied, s.Name)
	}

	_, err = db.ExecContext(ctx, `DROP TABLE tasker_task_transitions`)
	require.NoError(t, err)
	applied, err = migrations.Migrate(ctx, db.DB)
	require.NoError(t, err)
	require.Len(t, applied, embeddedCount(t)-1, "the rest is applied once the cause is gone")
	require.Equal(t, "00002_tasker_schema.sql", applied[0].Name)
}

// TestUnusableDatabaseIsAnErrorNotAPanic: no database, or a closed one,
// yields a wrapped error from every entry point.
func TestUnusableDatabaseIsAnErrorNotAPanic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	closed := emptyDB(t)
	require.NoError(t, closed.Close())
	cases := []struct {
		name string
		db   *sql.DB
		want string
	}{
		{"nil database", nil, "migrations: goose provider: "},
		{"closed database", closed.DB, "sql: database is closed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			applied, err := migrations.Migrate(ctx, tc.db)
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, applied)
			require.ErrorContains(t, migrations.Apply(ctx, tc.db), tc.want)
			st, err := migrations.StatusOf(ctx, tc.db)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, st)
		})
	}
}

// TestStatusOfAnEmptyDatabase lists every embedded file as pending, in
// version order, without creating anything but goose's bookkeeping.
func TestStatusOfAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	db := emptyDB(t)
	status, err := migrations.StatusOf(context.Background(), db.DB)
	require.NoError(t, err)
	require.Len(t, status, embeddedCount(t))
	for i, s := range status {
		require.False(t, s.Applied, s.Name)
		require.Equal(t, int64(i+1), s.Version)
	}
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'tasker%'`))
	require.Zero(t, n)
}

// TestFingerprintIsStable: the template database name depends on it, so
// it must not change between calls within one build.
func TestFingerprintIsStable(t *testing.T) {
	t.Parallel()
	fp := migrations.Fingerprint()
	require.Len(t, fp, 12)
	require.Regexp(t, `^[0-9a-f]{12}$`, fp)
	require.Equal(t, fp, migrations.Fingerprint())
}
