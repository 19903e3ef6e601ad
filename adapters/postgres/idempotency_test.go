package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
)

// TestPurgeIdempotencyKeys deletes only keys older than the retention, and
// is a no-op on a database without the table.
func TestPurgeIdempotencyKeys(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	_, err := db.Exec(`INSERT INTO tasker_go_idempotency_keys (idempotency_key, request_hash, task_uuid, response, created_at) VALUES
		('old', repeat('a', 64), gen_random_uuid(), '{}', NOW() - interval '25 hours'),
		('new', repeat('b', 64), gen_random_uuid(), '{}', NOW() - interval '23 hours')`)
	require.NoError(t, err)
	store := postgres.NewTaskStore(db)
	n, err := store.PurgeIdempotencyKeys(ctx, 24*time.Hour)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	var left []string
	require.NoError(t, db.Select(&left, `SELECT idempotency_key FROM tasker_go_idempotency_keys`))
	require.Equal(t, []string{"new"}, left)

	tables, err := postgres.ProbeGoTables(ctx, db)
	require.NoError(t, err)
	require.Equal(t, postgres.GoTables{Idempotency: true, DLQ: true}, tables)
	_, err = db.Exec(`DROP TABLE tasker_go_idempotency_keys`)
	require.NoError(t, err)
	tables, err = postgres.ProbeGoTables(ctx, db)
	require.NoError(t, err)
	require.False(t, tables.Idempotency)
	n, err = postgres.NewTaskStore(db).PurgeIdempotencyKeys(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
}
