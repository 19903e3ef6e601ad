package postgres

import (
	"context"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/ports"
)

// OrchestrationLeaderLock names the advisory lock held by the orchestration
// instance that consumes the orchestration queues; its key is
// AdvisoryLockKey(OrchestrationLeaderLock) = 7156396169682958391, which
// pg_locks shows as classid 1666228326, objid 1844131895 (its two halves):
// `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1666228326
// AND objid = 1844131895` names the leader's backend.
const OrchestrationLeaderLock = "tasker.orchestration.consumers"

// AdvisoryLockKey derives the bigint key of a PostgreSQL advisory lock from
// name: the 64-bit FNV-1a hash of name with its sign bit cleared. A hash
// computed here, unlike PostgreSQL's internal hashtext, is the same on every
// server version, and a positive key is (classid << 32 | objid) of its row
// in pg_locks.
func AdvisoryLockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return int64(h.Sum64() &^ (1 << 63))
}

// Elector is ports.Leadership over a session-level advisory lock
// (pg_try_advisory_lock) held on one connection of its own. The lock lives
// as long as that session: when the holding process dies (kill -9) or its
// backend is terminated (pg_terminate_backend), PostgreSQL releases it and
// the next attempt of another instance takes it. No lease to renew, no
// clock to trust.
//
// Give it a pool of its own limited to one connection (PoolConfig
// MaxOpenConns 1): the holder keeps that connection for as long as it leads,
// and it must never take a connection from the service's pool.
type Elector struct {
	db  *sqlx.DB
	key int64

	mu sync.Mutex
	// conn is the session holding the lock; nil while not leading.
	conn *sqlx.Conn
}

var _ ports.Leadership = (*Elector)(nil)

// NewElector returns an elector for the advisory lock named name (e.g.
// OrchestrationLeaderLock) on db.
func NewElector(db *sqlx.DB, name string) *Elector {
	return &Elector{db: db, key: AdvisoryLockKey(name)}
}

// holdsLockSQL asks whether this session holds the lock: a cheap look at the
// shared lock table, made on the holding connection, so a terminated or
// broken session answers with an error.
const holdsLockSQL = `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
	AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)`

// TryLead implements ports.Leadership. A holder checks that its session
// still holds the lock; when the check fails (the session is gone, and its
// lock with it) it drops the connection and tries to acquire on a new one
// in the same call, so it reports false when a standby already took over.
// Any error means it cannot tell: true and the error (ports.Leadership).
func (e *Elector) TryLead(ctx context.Context) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		var held bool
		err := e.conn.QueryRowxContext(ctx, holdsLockSQL, e.key>>32, e.key&0xffffffff).Scan(&held)
		if err == nil && held {
			return true, nil
		}
		discard(e.conn)
		e.conn = nil
	}
	conn, err := e.db.Connx(ctx)
	if err != nil {
		return true, fmt.Errorf("leader election: connect: %w", err)
	}
	var got bool
	if err := conn.QueryRowxContext(ctx, `SELECT pg_try_advisory_lock($1)`, e.key).Scan(&got); err != nil {
		discard(conn)
		return true, fmt.Errorf("leader election: try advisory lock: %w", err)
	}
	if !got {
		_ = conn.Close() // back to the elector's pool, for the next attempt
		return false, nil
	}
	e.conn = conn
	return true, nil
}

// Release implements ports.Leadership: it unlocks and returns the
// connection to the elector's pool. If the unlock fails the connection is
// closed, which ends the session and so releases the lock anyway.
func (e *Elector) Release(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil
	}
	conn := e.conn
	e.conn = nil
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, e.key); err != nil {
		discard(conn)
		return fmt.Errorf("leader election: unlock: %w", err)
	}
	return conn.Close()
}

// discard closes conn's session instead of returning it to the pool: a
// connection whose state is unknown must not carry a lock (or miss one)
// into the next attempt. database/sql closes a connection released with
// driver.ErrBadConn.
func discard(conn *sqlx.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}
