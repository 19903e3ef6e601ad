package pgmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/queuetest"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestBadArgumentsAreRejectedBeforeSQL covers the operations outside the
// port contract suite. The client has no database (nil), so reaching SQL
// would panic: every case must be refused by validation with a message that
// names the queue and the problem.
func TestBadArgumentsAreRejectedBeforeSQL(t *testing.T) {
	t.Parallel()
	c := pgmq.New(nil)
	ctx := context.Background()
	tooLong := time.Duration(math.MaxInt32+1) * time.Second
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"batch: bad name", func() error {
			_, err := c.SendBatch(ctx, "Bad", []json.RawMessage{[]byte(`{}`)}, 0)
			return err
		}, `invalid queue name "Bad": must match ^[a-z0-9_]+$`},
		{"batch: one invalid message", func() error {
			_, err := c.SendBatch(ctx, "q", []json.RawMessage{[]byte(`{}`), []byte(`{nope`)}, 0)
			return err
		}, `pgmq send batch to "q": message 1 is not valid JSON`},
		{"batch: negative delay", func() error {
			_, err := c.SendBatch(ctx, "q", []json.RawMessage{[]byte(`{}`)}, -time.Second)
			return err
		}, `pgmq send batch to "q": delay must not be negative, got -1s`},
		{"send: delay beyond pgmq's integer seconds", func() error {
			_, err := c.Send(ctx, "q", json.RawMessage(`{}`), tooLong)
			return err
		}, `pgmq send to "q": delay ` + tooLong.String() + ` is too long`},
		{"set_vt: negative", func() error {
			_, err := c.SetVT(ctx, "q", 1, -1)
			return err
		}, `pgmq set_vt "q": visibility timeout must not be negative, got -1`},
		{"purge: bad name", func() error {
			_, err := c.PurgeQueue(ctx, "a.b")
			return err
		}, `invalid queue name "a.b"`},
		{"drop: bad name", func() error {
			_, err := c.DropQueue(ctx, "x; drop table pgmq.meta")
			return err
		}, `invalid queue name "x; drop table pgmq.meta"`},
		{"ensure notifications: name too long", func() error {
			return c.EnsureNotifications(ctx, strings.Repeat("a", pgmq.MaxQueueNameLen+1))
		}, "longer than 47 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestMissingQueueIsTypedForEveryOperation: callers that create queues
// lazily branch on ErrQueueNotFound, whatever the operation; the message
// still says what was attempted on which queue.
func TestMissingQueueIsTypedForEveryOperation(t *testing.T) {
	t.Parallel()
	c := pgmq.New(testdb.New(t))
	ctx := context.Background()
	q := queuetest.NewQueueName()
	cases := []struct {
		op   string
		call func() error
	}{
		{"send batch to", func() error {
			_, err := c.SendBatch(ctx, q, []json.RawMessage{[]byte(`{}`)}, 0)
			return err
		}},
		{"delete from", func() error { _, err := c.Delete(ctx, q, 1); return err }},
		{"archive in", func() error { _, err := c.Archive(ctx, q, 1); return err }},
		{"set_vt in", func() error { _, err := c.SetVT(ctx, q, 1, 5); return err }},
		{"purge", func() error { _, err := c.PurgeQueue(ctx, q); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			err := tc.call()
			require.ErrorIs(t, err, pgmq.ErrQueueNotFound)
			require.True(t, strings.HasPrefix(err.Error(), "pgmq "+tc.op+` "`+q+`"`), err.Error())
		})
	}
}

// TestOtherFailuresAreNotQueueNotFound: a failure that is not a missing
// table (here a cancelled context) keeps its own cause, so callers do not
// mistake it for "create the queue and retry".
func TestOtherFailuresAreNotQueueNotFound(t *testing.T) {
	t.Parallel()
	_, _, c, name := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"metrics_all": func() error { _, err := c.MetricsAll(ctx); return err },
		"drop":        func() error { _, err := c.DropQueue(ctx, name); return err },
		"create":      func() error { return c.CreateQueue(ctx, name) },
		"delete":      func() error { _, err := c.Delete(ctx, name, 1); return err },
		"set_vt":      func() error { _, err := c.SetVT(ctx, name, 1, 1); return err },
		"purge":       func() error { _, err := c.PurgeQueue(ctx, name); return err },
		"send batch": func() error {
			_, err := c.SendBatch(ctx, name, []json.RawMessage{[]byte(`{}`)}, 0)
			return err
		},
	}
	for op, call := range calls {
		err := call()
		require.ErrorIs(t, err, context.Canceled, op)
		require.False(t, errors.Is(err, pgmq.ErrQueueNotFound), op)
		require.Contains(t, err.Error(), "pgmq ", op)
	}
}

// TestTriggerNameMatchesPostgres: TriggerName must equal the name
// PostgreSQL stored, including the 63-byte cut for the longest queue names,
// because repair code drops the trigger by that name.
func TestTriggerNameMatchesPostgres(t *testing.T) {
	t.Parallel()
	ctx, db, c, short := setup(t)
	long := strings.Repeat("z", pgmq.MaxQueueNameLen)
	require.NoError(t, c.CreateQueue(ctx, long))
	for _, q := range []string{short, long} {
		var got string
		require.NoError(t, db.GetContext(ctx, &got, `SELECT tgname FROM pg_trigger
			WHERE tgrelid = ('pgmq.q_' || $1)::regclass AND NOT tgisinternal`, q))
		require.Equal(t, got, pgmq.TriggerName(q), q)
	}
	require.Len(t, pgmq.TriggerName(long), 63)
	require.Equal(t, "pgmq_message_ready_trigger_q_"+short, pgmq.TriggerName(short))
}

func TestInvalidQueueNameMessages(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"Upper":                 `invalid queue name "Upper": must match ^[a-z0-9_]+$`,
		"":                      `invalid queue name "": must match ^[a-z0-9_]+$`,
		strings.Repeat("q", 48): `invalid queue name "` + strings.Repeat("q", 48) + `": longer than 47 characters`,
	}
	for name, want := range cases {
		require.EqualError(t, pgmq.ValidateQueueName(name), want)
	}
	require.NoError(t, pgmq.ValidateQueueName(strings.Repeat("q", 47)))
}
