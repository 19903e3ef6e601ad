package postgres

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/adapters/postgres/batchtx"
)

// withBatchTx runs fn in a batch transaction on db: batchPlansSQL is in
// force for all of fn's statements. On a pool over batchtx.WrapConnector
// (Open's) it is sent with BEGIN, otherwise as the transaction's first
// statement, a round trip of its own.
func withBatchTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	if batchtx.Supported(db.DB) {
		return WithTx(batchtx.Context(ctx), db, fn)
	}
	return WithTx(ctx, db, func(tx *sqlx.Tx) error {
		if err := useBatchPlans(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
}
