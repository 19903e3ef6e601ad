// Package batchtx begins the services' batch transactions (the worker's
// claim and outcome batches, the orchestration's task batches) with their
// plan settings in the same round trip as BEGIN.
//
// Batch transactions need Plans before their first statement. Sent after
// BEGIN it costs a round trip of its own in every batch: a third of the
// fixed round trips of a worker batch, and on the critical path of every
// step of a task (claim, outcome, result batch). Connections of a pool over
// WrapConnector (adapters/postgres.Open's pools, the test databases) send
// it with BEGIN instead, as one simple-protocol query ("BEGIN READ WRITE;
// SET LOCAL …; SET LOCAL …"); every other transaction on them begins there
// too, with the BEGIN lib/pq would send. Other pools (a *sql.DB an
// embedding program passes in) keep the separate round trip (Supported).
package batchtx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// Plans switches a transaction to generic plans and turns sequential scans
// off for its statements (why: adapters/postgres, useBatchPlans).
const Plans = `SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off`

// beginSQL starts a batch transaction and applies Plans in one round trip.
const beginSQL = "BEGIN READ WRITE; " + Plans

// key marks a context whose BeginTx starts a batch transaction.
type key struct{}

// Context returns ctx marked so that a BeginTx on a wrapped pool starts a
// batch transaction (beginSQL).
func Context(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, true) }

// conn is what a connection must offer to be wrapped: every optional
// interface database/sql uses, plus the driver.Tx the connection is itself
// while in a transaction (lib/pq's conn).
type conn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
	driver.Tx
}

// WrapConnector returns c with batch transactions begun in one round trip.
// A connection that lacks one of the interfaces above is refused at connect
// time, so a driver upgrade that drops one fails loudly.
func WrapConnector(c driver.Connector) driver.Connector { return connector{inner: c} }

type connector struct{ inner driver.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	bc, ok := dc.(conn)
	if !ok {
		_ = dc.Close()
		return nil, fmt.Errorf("batchtx: driver connection %T lacks an interface batch transactions need", dc)
	}
	return wrapped{bc}, nil
}

func (c connector) Driver() driver.Driver { return wrappedDriver{c.inner.Driver()} }

// wrappedDriver marks a pool whose connections are wrapped (Supported).
type wrappedDriver struct{ driver.Driver }

// Supported reports whether db's connections begin batch transactions in
// one round trip (db is over WrapConnector).
func Supported(db *sql.DB) bool {
	_, ok := db.Driver().(wrappedDriver)
	return ok
}

// wrapped forwards everything to its connection but BeginTx.
type wrapped struct{ conn }

// BeginTx sends BEGIN itself, as one simple-protocol query: with Plans
// appended when ctx asks for a batch transaction (read-write, default
// isolation), else with the mode lib/pq would send. The transaction is the
// connection itself: lib/pq tracks the transaction status from the server's
// ReadyForQuery, whoever sent BEGIN, so Commit keeps lib/pq's checks
// (committing a failed transaction is an error).
//
// Every transaction on a wrapped connection begins here, never through
// lib/pq's BeginTx: that one leaves its context watcher's finish function
// on the connection, and lib/pq's Commit and Rollback call whatever is left
// there, so a later transaction begun another way would call a stale one
// again (seen: "attempt to set nil err" panics on the third call). The
// watcher it would set cancels a running statement when the transaction's
// context ends; every statement here watches its own context instead, and
// database/sql rolls the transaction back when its context ends.
func (c wrapped) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	begin, err := beginStatement(opts)
	if err != nil {
		return nil, err
	}
	if ctx.Value(key{}) != nil && begin == "BEGIN READ WRITE" {
		begin = beginSQL
	}
	if _, err := c.conn.ExecContext(ctx, begin, nil); err != nil {
		// BEGIN may have run and a SET failed: end what was begun. When
		// BEGIN itself failed there is nothing to end and lib/pq refuses the
		// rollback without a round trip; a connection left in a transaction
		// some other way fails its next BEGIN and is discarded as bad.
		_ = c.conn.Rollback()
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return c.conn, nil
}

// Begin is BeginTx with the default options (the deprecated entry point,
// kept so that it too never reaches lib/pq's own).
func (c wrapped) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// beginStatement is the BEGIN lib/pq sends for opts.
func beginStatement(opts driver.TxOptions) (string, error) {
	begin := "BEGIN"
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		begin += " ISOLATION LEVEL READ UNCOMMITTED"
	case sql.LevelReadCommitted:
		begin += " ISOLATION LEVEL READ COMMITTED"
	case sql.LevelRepeatableRead:
		begin += " ISOLATION LEVEL REPEATABLE READ"
	case sql.LevelSerializable:
		begin += " ISOLATION LEVEL SERIALIZABLE"
	default:
		return "", fmt.Errorf("batchtx: isolation level not supported: %d", opts.Isolation)
	}
	if opts.ReadOnly {
		return begin + " READ ONLY", nil
	}
	return begin + " READ WRITE", nil
}
