package dberr_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/dberr"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func TestClassifyCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want dberr.Kind
	}{
		{"nil", nil, dberr.Other},
		{"plain", errors.New("boom"), dberr.Other},
		{"deadline", fmt.Errorf("get task: %w", context.DeadlineExceeded), dberr.Timeout},
		{"query canceled", &pq.Error{Code: "57014"}, dberr.Timeout},
		{"lock not available", &pq.Error{Code: "55P03"}, dberr.Timeout},
		{"admin shutdown", &pq.Error{Code: "57P01"}, dberr.Unavailable},
		{"cannot connect now", &pq.Error{Code: "57P03"}, dberr.Unavailable},
		{"connection failure", &pq.Error{Code: "08006"}, dberr.Unavailable},
		{"too many clients", &pq.Error{Code: "53300"}, dberr.Unavailable},
		{"bad conn", fmt.Errorf("x: %w", driver.ErrBadConn), dberr.Unavailable},
		{"numeric overflow", &pq.Error{Code: "22003"}, dberr.InvalidInput},
		{"unique violation", &pq.Error{Code: "23505"}, dberr.Other},
		{"database not accepting connections (FATAL 55000)", &pq.Error{Severity: "FATAL", Code: "55000"}, dberr.Unavailable},
		{"55000 at ERROR severity", &pq.Error{Severity: "ERROR", Code: "55000"}, dberr.Other},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, dberr.Classify(tc.err))
		})
	}
}

// TestClassifyRealErrors provokes each class against a real server, so a
// lib/pq upgrade that changes how errors surface fails here.
func TestClassifyRealErrors(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()

	_, err := db.ExecContext(ctx, "SET statement_timeout = '50ms'; SELECT pg_sleep(1)")
	require.True(t, dberr.IsTimeout(err), "statement_timeout: %v", err)
	_, _ = db.ExecContext(ctx, "SET statement_timeout = 0")

	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = db.ExecContext(cctx, "SELECT pg_sleep(1)")
	require.True(t, dberr.IsTimeout(err), "context deadline: %v", err)

	for _, q := range []string{
		`SELECT $1::text`,                // NUL in text
		`SELECT '{"a":"\u0000"}'::jsonb`, // NUL escape in jsonb
		`SELECT '{"a":1e400000}'::jsonb`, // number beyond numeric
		`SELECT 3000000000::int4`,        // beyond int32
	} {
		var args []any
		if q == `SELECT $1::text` {
			args = []any{"a\x00b"}
		}
		_, err = db.ExecContext(ctx, q, args...)
		require.True(t, dberr.IsInvalidInput(err), "%s: %v", q, err)
	}

	refused, err := sql.Open("postgres", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	defer func() { _ = refused.Close() }()
	err = refused.PingContext(ctx)
	require.True(t, dberr.IsUnavailable(err), "connection refused: %v", err)

	// A database that does not accept connections (issue 13 defect 3: the
	// data routes answered 500 while readiness said 503).
	url := testdb.URL(t)
	var name string
	require.NoError(t, db.GetContext(ctx, &name, `SELECT current_database()`))
	probe, err := sql.Open("postgres", url)
	require.NoError(t, err)
	var target string
	require.NoError(t, probe.QueryRowContext(ctx, `SELECT current_database()`).Scan(&target))
	require.NoError(t, probe.Close())
	require.NotEqual(t, name, target)
	_, err = db.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, target))
	require.NoError(t, err)
	defer func() { _, _ = db.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, target)) }()
	_, err = db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, target)
	require.NoError(t, err)
	closedDB, err := sql.Open("postgres", url) // a fresh pool: its first connection is refused at start-up
	require.NoError(t, err)
	defer func() { _ = closedDB.Close() }()
	err = closedDB.PingContext(ctx)
	require.Error(t, err)
	require.True(t, dberr.IsUnavailable(err), "database not accepting connections: %v", err)
	t.Logf("database not accepting connections: %v → Unavailable", err)
}
