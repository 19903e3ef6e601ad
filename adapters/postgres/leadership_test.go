package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// newElector returns an elector on a pool of its own limited to one
// connection, as the orchestration opens it.
func newElector(t *testing.T, url string) *postgres.Elector {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 1})
	require.NoError(t, err)
	e := postgres.NewElector(db, postgres.OrchestrationLeaderLock)
	t.Cleanup(func() {
		_ = e.Release(context.Background())
		_ = db.Close()
	})
	return e
}

func tryLead(t *testing.T, e *postgres.Elector) bool {
	t.Helper()
	ok, err := e.TryLead(context.Background())
	require.NoError(t, err)
	return ok
}

// leaderPID is the backend holding the orchestration's advisory lock, 0 when none.
func leaderPID(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	key := postgres.AdvisoryLockKey(postgres.OrchestrationLeaderLock)
	var pids []int
	require.NoError(t, db.Select(&pids, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		key>>32, key&0xffffffff))
	require.LessOrEqual(t, len(pids), 1)
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

func TestAdvisoryLockKeyIsFixed(t *testing.T) {
	// Documented on OrchestrationLeaderLock: operators look it up in pg_locks.
	key := postgres.AdvisoryLockKey(postgres.OrchestrationLeaderLock)
	require.Equal(t, int64(7156396169682958391), key)
	require.Equal(t, int64(1666228326), key>>32)
	require.Equal(t, int64(1844131895), key&0xffffffff)
}

func TestElectorsOnOneDatabase(t *testing.T) {
	url := testdb.URL(t)
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })

	t.Run("exactly one leads; a standby takes over after release", func(t *testing.T) {
		a, b := newElector(t, url), newElector(t, url)
		require.True(t, tryLead(t, a))
		require.False(t, tryLead(t, b))
		require.True(t, tryLead(t, a), "the leader confirms it still holds the lock")
		require.False(t, tryLead(t, b), "the standby tries again and still stands by")
		require.NotZero(t, leaderPID(t, db))

		require.NoError(t, a.Release(context.Background()))
		require.Zero(t, leaderPID(t, db), "released at once, not when the session ends")
		require.True(t, tryLead(t, b))
		require.False(t, tryLead(t, a), "the former leader now stands by")
		require.NoError(t, b.Release(context.Background()))
		require.NoError(t, b.Release(context.Background()), "releasing twice is harmless")
	})

	t.Run("a terminated leader's backend hands leadership to the standby", func(t *testing.T) {
		a, b := newElector(t, url), newElector(t, url)
		require.True(t, tryLead(t, a))
		require.False(t, tryLead(t, b))
		pid := leaderPID(t, db)
		require.NotZero(t, pid)
		var terminated bool
		require.NoError(t, db.Get(&terminated, `SELECT pg_terminate_backend($1)`, pid))
		require.True(t, terminated)
		// The lock goes when the backend has exited, shortly after the signal.
		require.Eventually(t, func() bool { return tryLead(t, b) }, 10*time.Second, 10*time.Millisecond)
		require.False(t, tryLead(t, a), "the old leader finds its session gone and the lock taken")
		require.NotEqual(t, pid, leaderPID(t, db))
	})
}

// TestElectorOnUnreachableDatabaseLeads: an elector that cannot reach its
// database reports leading with the error, so the instance consumes as it
// would alone instead of stalling.
func TestElectorOnUnreachableDatabaseLeads(t *testing.T) {
	db, err := sqlx.Open("postgres", "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	e := postgres.NewElector(db, postgres.OrchestrationLeaderLock)
	ok, err := e.TryLead(context.Background())
	require.Error(t, err)
	require.True(t, ok)
	require.NoError(t, e.Release(context.Background()), "nothing held, nothing to release")
}
