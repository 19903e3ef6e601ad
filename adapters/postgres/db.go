// Package postgres implements the stores of the ports package over
// PostgreSQL with sqlx and lib/pq: workflow steps, task templates and the
// transition writer shared by worker and orchestration (contract §2, §3).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/adapters/postgres/batchtx"
	"github.com/tasker-systems/tasker-go/internal/redact"
)

// Pool defaults, the same as the services' configuration defaults
// (database.pool.*, see adapters/config): 8 connections per service, all kept
// idle. Ten services, each with its pool and its one LISTEN connection outside
// the pool (an orchestration one more, for its leader election: see
// Elector), then need 90 connections and a few more, and fit PostgreSQL's
// default max_connections of 100 with the superuser reserve to spare.
//
// 8 is enough because no code path holds more than one pool connection at a
// time (statements in a transaction are prepared on its own connection, see
// stmtCache) and every use is short: the worker's claims and outcomes are
// group-committed (commitGroup), so its max_concurrent_steps handlers share a
// few transactions instead of needing one connection each, and its step
// reads, set_vt heartbeats (one per running step every third of the
// visibility timeout) and queue reads are single autocommit statements that
// wait briefly for a free connection while holding none.
const (
	DefaultMaxOpenConns    = 8
	DefaultConnMaxLifetime = 30 * time.Minute
	DefaultConnMaxIdleTime = 5 * time.Minute
)

// PoolConfig sizes the connection pool. Zero values select the defaults above.
type PoolConfig struct {
	// MaxOpenConns caps concurrent connections (database/sql SetMaxOpenConns).
	MaxOpenConns int
	// MaxIdleConns is how many idle connections are kept for reuse; zero
	// means MaxOpenConns, so a busy service does not close and reopen
	// connections (a new PostgreSQL backend costs milliseconds and starts
	// with cold caches and no prepared statements).
	MaxIdleConns int
	// ConnMaxLifetime recycles connections so server-side memory and
	// failovers do not pin a connection forever.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime closes connections idle for longer than this.
	ConnMaxIdleTime time.Duration
}

func (p PoolConfig) withDefaults() PoolConfig {
	if p.MaxOpenConns <= 0 {
		p.MaxOpenConns = DefaultMaxOpenConns
	}
	if p.MaxIdleConns <= 0 || p.MaxIdleConns > p.MaxOpenConns {
		p.MaxIdleConns = p.MaxOpenConns
	}
	if p.ConnMaxLifetime <= 0 {
		p.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if p.ConnMaxIdleTime <= 0 {
		p.ConnMaxIdleTime = DefaultConnMaxIdleTime
	}
	return p
}

// Open connects to PostgreSQL at url (URL or key=value form) and pings it.
//
// Every connection is opened with the run-time parameter TimeZone=UTC,
// overriding any time zone in the URL: all tasker timestamps are `timestamp
// without time zone` holding UTC, so NOW() is only correct when the session
// time zone is UTC (contract §1 rule 3).
//
// JIT compilation is off (jit=off) unless the URL sets jit itself. The
// services run short statements whose cost estimates can still cross
// jit_above_cost when statistics are missing (the generic plan of the
// dependency-results walk is estimated at ~370k), and compiling one costs
// ~20 ms, far more than running it (seen: 500-diamond throughput halved).
func Open(ctx context.Context, url string, pool PoolConfig) (*sqlx.DB, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("open database: empty database url")
	}
	cfg, err := pq.NewConfig(url)
	if err != nil {
		// url.Error quotes the whole URL, password included (issue 13 defect 8).
		return nil, fmt.Errorf("open database: parse url: %s", redact.URL(err.Error()))
	}
	rt := make(map[string]string, len(cfg.Runtime)+2)
	jitSet := false
	for k, v := range cfg.Runtime {
		if strings.EqualFold(k, "timezone") {
			continue
		}
		jitSet = jitSet || strings.EqualFold(k, "jit")
		rt[k] = v
	}
	rt["TimeZone"] = "UTC"
	if !jitSet {
		rt["jit"] = "off"
	}
	cfg.Runtime = rt
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	p := pool.withDefaults()
	db := sqlx.NewDb(sql.OpenDB(batchtx.WrapConnector(connector)), "postgres")
	db.SetMaxOpenConns(p.MaxOpenConns)
	db.SetMaxIdleConns(p.MaxIdleConns)
	db.SetConnMaxLifetime(p.ConnMaxLifetime)
	db.SetConnMaxIdleTime(p.ConnMaxIdleTime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		// host:port, not just the host: the port is as often the mistake.
		return nil, fmt.Errorf("open database: cannot reach PostgreSQL at %s (user %s, database %s): %w",
			net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), cfg.User, cfg.Database, err)
	}
	return db, nil
}

// batchPlansSQL is the first statement of every set-based transaction (the
// orchestration's task batch, the worker's claim and outcome batch). It
// switches the transaction to generic plans and turns sequential scans off.
//
// Generic plans: the batch statements take arrays, and for a batch of one or
// two the generic plan's default row estimate looks costlier than a custom
// plan, so under the default plan_cache_mode PostgreSQL re-planned those
// large statements on every execution (the task batch's lock statement: 19
// custom plans in 20 batches, 1–4 ms of planning each). Setting it inside
// the lock statement itself (set_config in a CTE) came too late for that
// statement's own plan. It costs one round trip, sent by the simple query
// protocol with no planning; on pools opened by Open it rides with BEGIN
// (withBatchTx).
//
// enable_seqscan = off: a generic plan is made once per connection, often
// while the tables are still small, and kept while they grow; every batch
// statement finds its rows by per-id index lookups, and this keeps a plan
// made on a small table from choosing a sequential scan that it would then
// repeat on the grown table.
const batchPlansSQL = batchtx.Plans

// useBatchPlans runs batchPlansSQL in tx.
func useBatchPlans(ctx context.Context, tx *sqlx.Tx) error {
	if _, err := tx.ExecContext(ctx, batchPlansSQL); err != nil {
		return fmt.Errorf("batch plan settings: %w", err)
	}
	return nil
}

// WithTx runs fn in a transaction on db and commits when fn returns nil. It
// rolls back when fn returns an error or panics (the panic is re-raised after
// the rollback), so callers never leak an open transaction or its row locks.
func WithTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// stmtCache prepares statements on first use and keeps them for the life of
// the pool. The worker's hot-path queries cost far more to plan (about 2 ms
// for the step snapshot join on a loaded 2-core machine) than to run, and
// lib/pq sends an unprepared parameterised query in two round trips (parse,
// then bind/execute) where a prepared one needs one. database/sql prepares
// the statement again on each pool connection the first time it is used
// there. A failed preparation is not cached, so the next call retries.
//
// It has two entry points, one per kind of caller, and the rule is simple:
//
//   - inside a transaction (a WithTx callback, or anything given a *sqlx.Tx)
//     use inTx(ctx, tx, query): it returns a statement bound to tx and never
//     waits for a pool connection;
//   - outside any transaction (autocommit statements run on the pool) use
//     pooled(ctx, query).
//
// Never call pooled while holding a pool connection: preparing on the pool
// takes a second connection, and a caller that holds one while the pool is
// exhausted waits forever — with a small pool and concurrent first requests
// every connection ends up held by such a caller (issue 11 item 5).
type stmtCache struct {
	db *sqlx.DB
	mu sync.Mutex
	m  map[string]*sqlx.Stmt
	// preparing holds a channel per query being prepared, closed when done:
	// concurrent first users wait for one preparation instead of each
	// opening a pool connection to prepare the same statement (a worker
	// starting on a full queue opened its whole pool that way, and every one
	// of those connections later planned the statements again).
	preparing map[string]chan struct{}
}

func newStmtCache(db *sqlx.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sqlx.Stmt{}, preparing: map[string]chan struct{}{}}
}

// pooled returns the pool-level prepared statement for query, preparing it
// if needed, for statements run on the pool outside any transaction
// (st.GetContext, st.SelectContext, …). Preparing takes a pool connection,
// so it must not be called while holding one: inside a transaction use inTx.
// The mutex is not held while preparing.
func (c *stmtCache) pooled(ctx context.Context, query string) (*sqlx.Stmt, error) {
	for {
		c.mu.Lock()
		if st, ok := c.m[query]; ok {
			c.mu.Unlock()
			return st, nil
		}
		wait, busy := c.preparing[query]
		if !busy {
			done := make(chan struct{})
			c.preparing[query] = done
			c.mu.Unlock()
			return c.prepare(ctx, query, done)
		}
		c.mu.Unlock()
		select {
		case <-wait: // prepared (or failed: then this caller tries itself)
		case <-ctx.Done():
			return nil, fmt.Errorf("prepare statement: %w", ctx.Err())
		}
	}
}

// inTx returns query prepared for tx, bound to tx's connection, and never
// waits for another pool connection. Once the pool-level statement exists it
// is bound with tx.StmtxContext, which prepares it on tx's own connection the
// first time that connection runs it. Until then — the first requests after
// start-up — the statement is prepared on tx's connection only (closed with
// the transaction), and the pool-level preparation is started in the
// background, where it waits for a free connection without holding one;
// inTx does not wait for it, nor for a preparation another caller started.
// The returned statement must only be used in tx; do not pass it to
// tx.StmtxContext again (that prepares it once more).
func (c *stmtCache) inTx(ctx context.Context, tx *sqlx.Tx, query string) (*sqlx.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	if !ok && c.preparing[query] == nil {
		done := make(chan struct{})
		c.preparing[query] = done
		go func() { _, _ = c.prepare(context.Background(), query, done) }()
	}
	c.mu.Unlock()
	if ok {
		return tx.StmtxContext(ctx, st), nil
	}
	st, err := tx.PreparexContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	return st, nil
}

// prepare runs the one pool-level preparation of query and releases its
// waiters.
func (c *stmtCache) prepare(ctx context.Context, query string, done chan struct{}) (*sqlx.Stmt, error) {
	// The statement outlives this call, so its first preparation must not be
	// cut short by the caller's cancellation.
	st, err := c.db.PreparexContext(context.WithoutCancel(ctx), query)
	c.mu.Lock()
	delete(c.preparing, query)
	if err == nil {
		c.m[query] = st
	}
	c.mu.Unlock()
	close(done)
	if err != nil {
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	return st, nil
}
