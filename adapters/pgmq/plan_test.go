package pgmq_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
)

// TestReadKeepsToTheIndexAfterTheQueueWasAnalysedEmpty: a session whose
// cached plans were built while the queue table's statistics said "empty"
// (analysed or vacuumed while drained, the usual state of a queue between
// bursts) still reads, deletes and extends visibility through the primary
// key once the queue has filled, instead of scanning the whole table per
// call (migration 00009). Counted by the table's scan statistics of the
// session's own transaction, which are exact whatever the machine's speed.
func TestReadKeepsToTheIndexAfterTheQueueWasAnalysedEmpty(t *testing.T) {
	ctx, db, c, q := setup(t)
	db.SetMaxOpenConns(1) // one session: its cached plans are the ones under test
	var own bool
	require.NoError(t, db.GetContext(ctx, &own, `SELECT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')`))
	if !own {
		t.Skip("the pgmq extension plans its dynamic SQL on every call; this is about the project's own pgmq SQL")
	}
	_, err := db.ExecContext(ctx, `ANALYZE pgmq.q_`+q)
	require.NoError(t, err)
	for i := 0; i < 8; i++ { // past PL/pgSQL's five custom plans: the cached generic plan is now the one used
		msgs, err := c.Read(ctx, q, 30, 10)
		require.NoError(t, err)
		require.Empty(t, msgs)
		_, err = c.Delete(ctx, q, 1)
		require.NoError(t, err)
	}
	batch := make([]json.RawMessage, 300)
	for i := range batch {
		batch[i] = json.RawMessage(`{"n":1}`)
	}
	ids, err := c.SendBatch(ctx, q, batch, 0)
	require.NoError(t, err)
	for _, id := range ids[:250] { // dead rows ahead of the live ones, as a burst leaves them before vacuum
		_, err := c.Delete(ctx, q, id)
		require.NoError(t, err)
	}

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	scans := func() (seq, idx int64) {
		require.NoError(t, tx.QueryRowxContext(ctx, `SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables
			WHERE schemaname = 'pgmq' AND relname = $1`, "q_"+q).Scan(&seq, &idx))
		return seq, idx
	}
	seq0, idx0 := scans()
	msgs, err := pgmq.New(tx).Read(ctx, q, 30, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 10)
	got := make([]int64, len(msgs))
	for i, m := range msgs {
		got[i] = m.MsgID
	}
	require.ElementsMatch(t, ids[250:260], got, "the oldest visible messages")
	_, err = pgmq.New(tx).Delete(ctx, q, got[0])
	require.NoError(t, err)
	seq1, idx1 := scans()
	require.Equal(t, seq0, seq1, "no sequential scan of the queue table")
	require.Greater(t, idx1, idx0, "the primary key was used")
	require.NoError(t, tx.Commit())
}
