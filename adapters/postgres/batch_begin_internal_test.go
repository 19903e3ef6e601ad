package postgres

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// withBatchTx puts the batch plan settings in force for the whole
// transaction on both kinds of pool: sent with BEGIN on a wrapped pool
// (Open's, the test databases'), as a first statement on a plain one (a
// *sql.DB an embedding program passes in).
func TestWithBatchTxAppliesThePlansOnEveryPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := testdb.URL(t)
	wrapped, err := Open(ctx, u, PoolConfig{MaxOpenConns: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = wrapped.Close() })
	plain, err := sqlx.Open("postgres", u)
	require.NoError(t, err)
	t.Cleanup(func() { _ = plain.Close() })

	for name, db := range map[string]*sqlx.DB{"wrapped": wrapped, "plain": plain} {
		var mode, seqscan string
		require.NoError(t, withBatchTx(ctx, db, func(tx *sqlx.Tx) error {
			if err := tx.GetContext(ctx, &mode, "SHOW plan_cache_mode"); err != nil {
				return err
			}
			return tx.GetContext(ctx, &seqscan, "SHOW enable_seqscan")
		}), name)
		require.Equal(t, "force_generic_plan", mode, name)
		require.Equal(t, "off", seqscan, name)
		require.NoError(t, db.GetContext(ctx, &mode, "SHOW plan_cache_mode"), name)
		require.Equal(t, "auto", mode, "%s: the setting ends with the transaction", name)
	}
}
