package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/postgres/migrations"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const scratchDB = "stores_adapters_postgres_test"

var scratchOnce sync.Once
var scratchErr error

// newDB returns a migrated database for this package.
// TODO: replace with testdb.New(t) once internal/testdb lands.
func newDB(t testing.TB) *sqlx.DB {
	t.Helper()
	ctx := context.Background()
	base := "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	scratchOnce.Do(func() {
		admin, err := sql.Open("postgres", base)
		if err != nil {
			scratchErr = err
			return
		}
		defer admin.Close()
		if _, err = admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+scratchDB+` WITH (FORCE)`); err != nil {
			scratchErr = err
			return
		}
		if _, err = admin.ExecContext(ctx, `CREATE DATABASE `+scratchDB); err != nil {
			scratchErr = err
			return
		}
		db, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:5432/"+scratchDB+"?sslmode=disable")
		if err != nil {
			scratchErr = err
			return
		}
		defer db.Close()
		scratchErr = migrations.Apply(ctx, db)
	})
	if scratchErr != nil && os.Getenv("CI") != "true" {
		t.Skipf("no test database: %v", scratchErr)
	}
	require.NoError(t, scratchErr)
	db, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:5432/"+scratchDB+"?sslmode=disable", postgres.PoolConfig{MaxOpenConns: 24})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
