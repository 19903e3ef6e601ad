package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestOpenForcesUTCSessions(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	// Open a second pool whose URL asks for another time zone: Open must override it.
	u, err := url.Parse(testdb.URL(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("timezone", "America/New_York")
	u.RawQuery = q.Encode()
	other, err := postgres.Open(context.Background(), u.String(), postgres.PoolConfig{MaxOpenConns: 2})
	require.NoError(t, err)
	defer other.Close()
	for name, d := range map[string]interface {
		GetContext(context.Context, any, string, ...any) error
	}{"default": db, "url with timezone": other} {
		var tz string
		require.NoError(t, d.GetContext(context.Background(), &tz, `SHOW TimeZone`), name)
		require.Equal(t, "UTC", tz, name)
	}
}

// JIT is off by default (see Open) and the URL can still turn it on.
func TestOpenTurnsJITOffUnlessTheURLSetsIt(t *testing.T) {
	t.Parallel()
	newDB(t)
	for _, tc := range []struct{ param, want string }{{"", "off"}, {"on", "on"}} {
		u, err := url.Parse(testdb.URL(t))
		require.NoError(t, err)
		if tc.param != "" {
			q := u.Query()
			q.Set("jit", tc.param)
			u.RawQuery = q.Encode()
		}
		d, err := postgres.Open(context.Background(), u.String(), postgres.PoolConfig{MaxOpenConns: 1})
		require.NoError(t, err)
		var jit string
		require.NoError(t, d.Get(&jit, `SHOW jit`))
		require.Equal(t, tc.want, jit, "url jit=%q", tc.param)
		require.NoError(t, d.Close())
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		name, dsn, want string
	}{
		{"empty url", "  ", "empty database url"},
		{"unparseable url", "postgres://%zz", "parse url"},
		{"unparseable url with credentials", "postgres://u:s3cret@h:badport/db", `parse url: parse "postgres://REDACTED@h:badport/db"`},
		{"unreachable server", "postgres://postgres@127.0.0.1:1/none_test?sslmode=disable&connect_timeout=2", "cannot reach PostgreSQL at 127.0.0.1:1 (user postgres, database none_test)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := postgres.Open(ctx, tc.dsn, postgres.PoolConfig{})
			require.Error(t, err)
			require.Nil(t, db)
			require.True(t, strings.Contains(err.Error(), tc.want), "error %q should contain %q", err, tc.want)
			require.NotContains(t, err.Error(), "s3cret")
			t.Logf("%s → %v", tc.dsn, err)
		})
	}
}

// Concurrent first uses of a statement share one preparation, so a worker
// starting on a full queue does not open its whole pool to prepare the same
// statement on every connection.
func TestStatementPreparedOnceUnderConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	u := testdb.URL(t)
	db, err := postgres.Open(context.Background(), u, postgres.PoolConfig{MaxOpenConns: 16, MaxIdleConns: 16})
	require.NoError(t, err)
	defer db.Close()
	n, err := postgres.PrepareConcurrentlyForTest(context.Background(), db, `SELECT $1::int + 1`, 16)
	require.NoError(t, err)
	require.Equal(t, 1, n, "one statement shared by all callers")
	require.LessOrEqual(t, db.Stats().OpenConnections, 2, "the preparation needed one connection (plus the ping's)")
}

// A transaction that uses a statement not yet prepared on the pool must not
// wait for a second pool connection: with a pool of one connection, which the
// transaction holds, that wait would never end (issue 11 item 5). The
// pool-level statement is prepared in the background once the connection is
// free, and later transactions bind it.
func TestStatementInTransactionNeverWaitsForASecondConnection(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(context.Background(), testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 1, MaxIdleConns: 1})
	require.NoError(t, err)
	defer db.Close()
	cache := postgres.NewStmtCacheForTest(db)
	defer cache.Close()
	const query = `SELECT $1::int + 1`
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := postgres.WithTx(ctx, db, func(tx *sqlx.Tx) error {
			st, err := cache.InTx(ctx, tx, query)
			if err != nil {
				return err
			}
			var n int
			if err := st.GetContext(ctx, &n, i); err != nil {
				return err
			}
			require.Equal(t, i+1, n)
			return nil
		})
		cancel()
		require.NoError(t, err, "transaction %d", i)
		if i == 0 {
			require.Eventually(t, func() bool { return cache.PoolPrepared(query) }, 5*time.Second, 5*time.Millisecond,
				"the pool-level statement is prepared once the connection is free")
		}
	}
}

// The task creation path that finds or creates named steps runs its insert
// in a transaction; on a pool of one connection it must not wedge.
func TestCreateTaskWithNewNamedStepsOnAOneConnectionPool(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(context.Background(), testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 1, MaxIdleConns: 1})
	require.NoError(t, err)
	defer db.Close()
	named := testdb.RegisterTemplate(t, db, testdb.TemplateFromSpec(diamondSpec()))
	store := postgres.NewTaskStore(db)
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := store.CreateTask(ctx, ports.NewTask{NamedTaskUUID: named, TaskName: "diamond",
			Request: domain.TaskRequest{Namespace: "orch_ns", Name: "diamond", Version: "1.0.0"},
			Context: json.RawMessage(`{}`),
			Steps:   []ports.NewStep{{Name: "a", SystemDependency: fmt.Sprintf("sys_%d", i)}}})
		cancel()
		require.NoError(t, err, "task %d", i)
	}
}
