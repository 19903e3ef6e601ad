package postgres_test

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newDB returns a pool opened with postgres.Open on a fresh migrated database
// (testdb.URL), so the tests also exercise Open's session settings.
func newDB(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 24})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
