package batchtx_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres/batchtx"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func openWrapped(t *testing.T) *sql.DB {
	t.Helper()
	c, err := pq.NewConnector(testdb.URL(t))
	require.NoError(t, err)
	db := sql.OpenDB(batchtx.WrapConnector(c))
	db.SetMaxOpenConns(1) // every statement below runs on the same backend
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func show(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, setting string) string {
	t.Helper()
	var v string
	require.NoError(t, q.QueryRowContext(context.Background(), "SHOW "+setting).Scan(&v))
	return v
}

// The batch settings hold inside a batch transaction and end with it; an
// ordinary or read-only transaction on the same pool is untouched.
func TestBatchBeginAppliesThePlansForTheTransactionOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWrapped(t)
	require.True(t, batchtx.Supported(db))

	tx, err := db.BeginTx(batchtx.Context(ctx), nil)
	require.NoError(t, err)
	require.Equal(t, "force_generic_plan", show(t, tx, "plan_cache_mode"))
	require.Equal(t, "off", show(t, tx, "enable_seqscan"))
	var n int
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT $1::int + 1", 41).Scan(&n)) // extended protocol in the tx
	require.Equal(t, 42, n)
	require.NoError(t, tx.Commit())
	require.Equal(t, "auto", show(t, db, "plan_cache_mode"))
	require.Equal(t, "on", show(t, db, "enable_seqscan"))

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, "auto", show(t, tx, "plan_cache_mode"))
	require.NoError(t, tx.Rollback())

	tx, err = db.BeginTx(batchtx.Context(ctx), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	require.Equal(t, "on", show(t, tx, "transaction_read_only"))
	require.Equal(t, "auto", show(t, tx, "plan_cache_mode"))
	require.NoError(t, tx.Rollback())
}

// Committing a batch transaction after a failed statement is an error (as
// with lib/pq's own BEGIN), nothing of it is kept, and the connection
// serves the next transaction.
func TestCommittingAFailedBatchTransactionFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openWrapped(t)
	_, err := db.ExecContext(ctx, "CREATE TABLE batchtx_t (v int)")
	require.NoError(t, err)

	tx, err := db.BeginTx(batchtx.Context(ctx), nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO batchtx_t VALUES (1)")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "SELECT 1/0")
	require.Error(t, err)
	require.ErrorIs(t, tx.Commit(), pq.ErrInFailedTransaction)

	tx, err = db.BeginTx(batchtx.Context(ctx), nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "INSERT INTO batchtx_t VALUES (2)")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	var vals []int
	rows, err := db.QueryContext(ctx, "SELECT v FROM batchtx_t ORDER BY v")
	require.NoError(t, err)
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		vals = append(vals, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int{2}, vals)
}

// A pool not over WrapConnector is not Supported (its callers send the
// settings as a statement of their own).
func TestPlainPoolIsNotSupported(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("postgres", "postgres://x@127.0.0.1:1/test")
	require.NoError(t, err)
	defer db.Close()
	require.False(t, batchtx.Supported(db))
}

// countingConn records what reaches the driver: a batch BEGIN is one
// ExecContext (one round trip) and never the connection's own BeginTx.
type countingConn struct {
	execs  []string
	begins int
}

func (c *countingConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (c *countingConn) Close() error                        { return nil }
func (c *countingConn) Begin() (driver.Tx, error)           { c.begins++; return c, nil }
func (c *countingConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	c.begins++
	return c, nil
}
func (c *countingConn) PrepareContext(context.Context, string) (driver.Stmt, error) {
	return nil, driver.ErrSkip
}
func (c *countingConn) ExecContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	c.execs = append(c.execs, q)
	return driver.RowsAffected(0), nil
}
func (c *countingConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return nil, driver.ErrSkip
}
func (c *countingConn) Ping(context.Context) error               { return nil }
func (c *countingConn) ResetSession(context.Context) error       { return nil }
func (c *countingConn) IsValid() bool                            { return true }
func (c *countingConn) CheckNamedValue(*driver.NamedValue) error { return nil }
func (c *countingConn) Commit() error                            { c.execs = append(c.execs, "COMMIT"); return nil }
func (c *countingConn) Rollback() error                          { c.execs = append(c.execs, "ROLLBACK"); return nil }

type countingConnector struct{ c *countingConn }

func (k countingConnector) Connect(context.Context) (driver.Conn, error) { return k.c, nil }
func (k countingConnector) Driver() driver.Driver                        { return nil }

func TestBatchBeginIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	cc := &countingConn{}
	db := sql.OpenDB(batchtx.WrapConnector(countingConnector{cc}))
	defer db.Close()
	tx, err := db.BeginTx(batchtx.Context(context.Background()), nil)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Zero(t, cc.begins)
	require.Equal(t, []string{"BEGIN READ WRITE; " + batchtx.Plans, "COMMIT"}, cc.execs)

	tx, err = db.BeginTx(context.Background(), &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	require.Zero(t, cc.begins, "never the driver's own BeginTx")
	require.Equal(t, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY", cc.execs[2])
}

// Many transactions of every kind on one connection, committed and rolled
// back: lib/pq's own BeginTx left a context watcher's finish function on
// the connection that its Commit called again after a batch transaction,
// and the third such call panicked ("attempt to set nil err") in the worker.
func TestEveryKindOfTransactionInTurnOnOneConnection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := openWrapped(t)
	batch := struct {
		ctx  context.Context
		opts *sql.TxOptions
		want string
	}{batchtx.Context(ctx), nil, "force_generic_plan"}
	kinds := []struct {
		ctx  context.Context
		opts *sql.TxOptions
		want string
	}{
		{ctx, nil, "auto"}, batch, batch, batch,
		{ctx, &sql.TxOptions{ReadOnly: true}, "auto"}, batch, batch,
		{batchtx.Context(ctx), &sql.TxOptions{Isolation: sql.LevelRepeatableRead}, "auto"}, batch,
	}
	for i := range 3 * len(kinds) {
		k := kinds[i%len(kinds)]
		tx, err := db.BeginTx(k.ctx, k.opts)
		require.NoError(t, err, "transaction %d", i)
		require.Equal(t, k.want, show(t, tx, "plan_cache_mode"), "transaction %d", i)
		if i%5 == 4 {
			require.NoError(t, tx.Rollback(), "transaction %d", i)
		} else {
			require.NoError(t, tx.Commit(), "transaction %d", i)
		}
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	require.NoError(t, err)
	require.Equal(t, "serializable", show(t, tx, "transaction_isolation"))
	require.NoError(t, tx.Commit())
}
