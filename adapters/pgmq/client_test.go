package pgmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/queuetest"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestQueueContract(t *testing.T) {
	db := testdb.New(t)
	queuetest.Run(t, func(t *testing.T) ports.Queue { return pgmq.New(db) })
}

func setup(t *testing.T) (context.Context, *sqlx.DB, *pgmq.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	db := testdb.New(t)
	c := pgmq.New(db)
	name := queuetest.NewQueueName()
	require.NoError(t, c.CreateQueue(ctx, name))
	return ctx, db, c, name
}

func TestSendAndDeleteFollowTheTransaction(t *testing.T) {
	t.Parallel()
	ctx, db, c, name := setup(t)

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	_, err = pgmq.New(tx).Send(ctx, name, json.RawMessage(`{"rolled":"back"}`), 0)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	msgs, err := c.Read(ctx, name, 0, 10)
	require.NoError(t, err)
	require.Empty(t, msgs, "rolled-back send left no message")

	tx, err = db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	id, err := pgmq.New(tx).Send(ctx, name, json.RawMessage(`{"committed":true}`), 0)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	tx, err = db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	ok, err := pgmq.New(tx).Delete(ctx, name, id)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, tx.Rollback())
	msgs, err = c.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1, "rolled-back delete kept the message")
	require.Equal(t, id, msgs[0].MsgID)
}

func TestArchiveMovesToArchiveTable(t *testing.T) {
	t.Parallel()
	ctx, db, c, name := setup(t)
	id, err := c.Send(ctx, name, json.RawMessage(`{"poison":1}`), 0)
	require.NoError(t, err)
	_, err = c.Read(ctx, name, 30, 1)
	require.NoError(t, err)
	ok, err := c.Archive(ctx, name, id)
	require.NoError(t, err)
	require.True(t, ok)

	var row struct {
		MsgID      int64     `db:"msg_id"`
		ReadCt     int       `db:"read_ct"`
		Message    string    `db:"message"`
		ArchivedAt time.Time `db:"archived_at"`
	}
	require.NoError(t, db.GetContext(ctx, &row, `SELECT msg_id, read_ct, message::text, archived_at FROM pgmq.a_`+name))
	require.Equal(t, id, row.MsgID)
	require.Equal(t, 1, row.ReadCt)
	require.JSONEq(t, `{"poison":1}`, row.Message)
	require.WithinDuration(t, time.Now(), row.ArchivedAt, time.Minute)
	var left int
	require.NoError(t, db.GetContext(ctx, &left, `SELECT count(*) FROM pgmq.q_`+name))
	require.Zero(t, left)
}

// A reader holding a row lock (an open transaction) must not block another
// reader: SKIP LOCKED hands it the next messages at once.
func TestReadSkipsLockedMessages(t *testing.T) {
	t.Parallel()
	ctx, db, c, name := setup(t)
	var sent []int64
	for range 3 {
		id, err := c.Send(ctx, name, json.RawMessage(`{}`), 0)
		require.NoError(t, err)
		sent = append(sent, id)
	}
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck // rollback is the point
	held, err := pgmq.New(tx).Read(ctx, name, 0, 1)
	require.NoError(t, err)
	require.Equal(t, sent[0], held[0].MsgID)

	quick, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	other, err := c.Read(quick, name, 30, 10)
	require.NoError(t, err, "reader was blocked by the locked row")
	require.Len(t, other, 2)
	require.Equal(t, sent[1:], []int64{other[0].MsgID, other[1].MsgID})
}

func TestSendBatchMetricsAllPurgeDrop(t *testing.T) {
	t.Parallel()
	ctx, _, c, name := setup(t)
	ids, err := c.SendBatch(ctx, name, []json.RawMessage{[]byte(`{"i":0}`), []byte(`{"i":1}`), []byte(`{"i":2}`)}, 0)
	require.NoError(t, err)
	require.Len(t, ids, 3)
	require.Less(t, ids[0], ids[1])
	msgs, err := c.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.JSONEq(t, `{"i":0}`, string(msgs[0].Message))
	require.JSONEq(t, `{"i":2}`, string(msgs[2].Message))

	other := queuetest.NewQueueName()
	require.NoError(t, c.CreateQueue(ctx, other))
	all, err := c.MetricsAll(ctx)
	require.NoError(t, err)
	byName := map[string]ports.QueueMetrics{}
	for _, m := range all {
		byName[m.QueueName] = m
	}
	require.Equal(t, int64(3), byName[name].QueueLength)
	require.Equal(t, int64(0), byName[name].QueueVisibleLength)
	require.Contains(t, byName, other)

	n, err := c.PurgeQueue(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	dropped, err := c.DropQueue(ctx, name)
	require.NoError(t, err)
	require.True(t, dropped)
	dropped, err = c.DropQueue(ctx, name)
	require.NoError(t, err)
	require.False(t, dropped)
	_, err = c.Read(ctx, name, 1, 1)
	require.ErrorIs(t, err, pgmq.ErrQueueNotFound)
	_, err = c.Send(ctx, name, json.RawMessage(`{}`), 0)
	require.ErrorIs(t, err, pgmq.ErrQueueNotFound)
}

func TestInvalidQueueNameIsTyped(t *testing.T) {
	t.Parallel()
	c := pgmq.New(nil) // never reaches the database
	cases := map[string]string{
		"upper":    "Fulfillment_queue",
		"dot":      "a.b",
		"too long": "abcdefghij_abcdefghij_abcdefghij_abcdefghij_abcd",
		"empty":    "",
	}
	for name, queue := range cases {
		t.Run(name, func(t *testing.T) {
			var invalid *pgmq.InvalidQueueNameError
			require.ErrorAs(t, c.CreateQueue(context.Background(), queue), &invalid)
			require.Equal(t, queue, invalid.Name)
			_, err := c.Send(context.Background(), queue, json.RawMessage(`{}`), 0)
			require.True(t, errors.As(err, &invalid))
		})
	}
	require.NoError(t, pgmq.ValidateQueueName("abcdefghij_abcdefghij_abcdefghij_abcdefghij_abc"))
}

// A queue made by another client (no headers column, no trigger) gets both from
// CreateQueue, exactly once even when services race.
func TestCreateQueueRepairsForeignQueue(t *testing.T) {
	t.Parallel()
	ctx, db, c, name := setup(t)
	_, err := db.ExecContext(ctx, `DROP TRIGGER `+pgmq.TriggerName(name)+` ON pgmq.q_`+name+`;
		ALTER TABLE pgmq.q_`+name+` DROP COLUMN headers; ALTER TABLE pgmq.a_`+name+` DROP COLUMN headers`)
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.CreateQueue(ctx, name)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var triggers []string
	require.NoError(t, db.SelectContext(ctx, &triggers, `SELECT tgname FROM pg_trigger
		WHERE tgrelid = ('pgmq.q_' || $1)::regclass AND NOT tgisinternal`, name))
	require.Equal(t, []string{pgmq.TriggerName(name)}, triggers)
	var headers int
	require.NoError(t, db.GetContext(ctx, &headers, `SELECT count(*) FROM pg_attribute
		WHERE attrelid IN (('pgmq.q_' || $1)::regclass, ('pgmq.a_' || $1)::regclass) AND attname = 'headers' AND NOT attisdropped`, name))
	require.Equal(t, 2, headers)
}

func TestEnsureNotificationsOnMissingQueue(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	err := pgmq.New(db).EnsureNotifications(context.Background(), "never_created_queue")
	require.ErrorIs(t, err, pgmq.ErrQueueNotFound)
}

// TestReadReplacesOversizedMessages is issue 13 risk 7: ten 20 MB messages
// took the worker to 275 MB; a body over MaxReadMessageBytes now arrives as
// a small poison stub naming its size.
func TestReadReplacesOversizedMessages(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	q := pgmq.New(db)
	require.NoError(t, q.CreateQueue(ctx, "big_queue"))
	big := []byte(`{"pad":"` + strings.Repeat("x", pgmq.MaxReadMessageBytes) + `"}`)
	_, err := q.Send(ctx, "big_queue", big, 0)
	require.NoError(t, err)
	msgs, err := q.Read(ctx, "big_queue", 30, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Less(t, len(msgs[0].Message), 100)
	var stub map[string]int
	require.NoError(t, json.Unmarshal(msgs[0].Message, &stub))
	require.GreaterOrEqual(t, stub[pgmq.OversizedKey], len(big), "jsonb text of the body (it may add spaces)")
	t.Logf("a %d-byte message reads as %s", len(big), msgs[0].Message)
}

// TestPooledReadCommitsWithoutWaitingForAFlush: a read on a pool is a
// transaction of its own that commits with synchronous_commit off; the
// session keeps its setting, and a Client on a caller's transaction leaves
// that transaction's commit alone.
func TestPooledReadCommitsWithoutWaitingForAFlush(t *testing.T) {
	ctx, db, c, q := setup(t)
	db.SetMaxOpenConns(1) // every statement below runs on the read's session
	show := func(q sqlx.QueryerContext) string {
		var v string
		require.NoError(t, sqlx.GetContext(ctx, q, &v, `SHOW synchronous_commit`))
		return v
	}
	for i := 0; i < 3; i++ {
		_, err := c.Send(ctx, q, json.RawMessage(`{"n":1}`), 0)
		require.NoError(t, err)
	}
	msgs, err := c.Read(ctx, q, 30, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, "on", show(db), "the read's setting must not outlive its transaction")

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	rows, err := tx.QueryxContext(ctx, pgmq.PooledReadSQL, q, 30, 1)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, 1, n)
	require.Equal(t, "off", show(tx), "the pooled read switches its own transaction to asynchronous commit")
	require.NoError(t, tx.Rollback())

	tx, err = db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	msgs, err = pgmq.New(tx).Read(ctx, q, 30, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, "on", show(tx), "a read in the caller's transaction must not change how the caller commits")
	require.NoError(t, tx.Rollback())
}
