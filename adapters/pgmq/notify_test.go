package pgmq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// listen opens a lib/pq listener on the channels, as the services do (§4.6).
func listen(t *testing.T, dsn string, channels ...string) *pq.Listener {
	t.Helper()
	l := pq.NewListener(dsn, 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { _ = l.Close() })
	for _, ch := range channels {
		require.NoError(t, l.Listen(ch))
	}
	return l
}

func receive(t *testing.T, l *pq.Listener) (channel string, payload map[string]any) {
	t.Helper()
	select {
	case n := <-l.NotificationChannel():
		require.NotNil(t, n, "listener reconnected")
		require.NoError(t, json.Unmarshal([]byte(n.Extra), &payload), n.Extra)
		return n.Channel, payload
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
		return "", nil
	}
}

func requireNoMore(t *testing.T, l *pq.Listener) {
	t.Helper()
	require.NoError(t, l.Ping()) // a round trip: anything sent before it has arrived
	select {
	case n := <-l.NotificationChannel():
		t.Fatalf("unexpected notification on %s: %s", n.Channel, n.Extra)
	default:
	}
}

const isoUTC = `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$`

// Queues created after the migration notify on the namespace channel, then on the
// global one, with the contract payload; creating the queue notifies too.
func TestMessageReadyNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	c := pgmq.New(db)
	l := listen(t, dsn, "pgmq_message_ready.fulfillment", "pgmq_message_ready", "pgmq_queue_created",
		"pgmq_message_ready.default", "pgmq_message_ready.a_queue_b")

	require.NoError(t, c.CreateQueue(ctx, "fulfillment_queue"))
	ch, p := receive(t, l)
	require.Equal(t, "pgmq_queue_created", ch)
	require.Len(t, p, 4, "payload %v", p)
	require.Equal(t, "queue_created", p["event_type"])
	require.Equal(t, "fulfillment_queue", p["queue_name"])
	require.Equal(t, "fulfillment", p["namespace"])
	require.Regexp(t, isoUTC, p["created_at"])
	requireNoMore(t, l)

	id, err := c.Send(ctx, "fulfillment_queue", json.RawMessage(`{"task_uuid":"t","step_uuid":"s"}`), 5*time.Second)
	require.NoError(t, err)
	ch, p = receive(t, l)
	require.Equal(t, "pgmq_message_ready.fulfillment", ch, "namespace channel first")
	require.Len(t, p, 6, "payload %v", p)
	require.Equal(t, "message_ready", p["event_type"])
	require.Equal(t, float64(id), p["msg_id"])
	require.Equal(t, "fulfillment_queue", p["queue_name"])
	require.Equal(t, "fulfillment", p["namespace"])
	require.Regexp(t, isoUTC, p["ready_at"])
	require.InDelta(t, 5, p["visibility_timeout_seconds"], 1)
	ch, global := receive(t, l)
	require.Equal(t, "pgmq_message_ready", ch)
	require.Equal(t, p, global, "same payload on the global channel")
	requireNoMore(t, l)

	// Orchestration queues derive the namespace "default".
	require.NoError(t, c.CreateQueue(ctx, "orchestration_step_results"))
	ch, p = receive(t, l)
	require.Equal(t, "pgmq_queue_created", ch)
	require.Equal(t, "default", p["namespace"])
	_, err = c.Send(ctx, "orchestration_step_results", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	ch, p = receive(t, l)
	require.Equal(t, "pgmq_message_ready.default", ch)
	require.Equal(t, "orchestration_step_results", p["queue_name"])
	require.Equal(t, float64(0), p["visibility_timeout_seconds"])
	ch, _ = receive(t, l)
	require.Equal(t, "pgmq_message_ready", ch)

	// Greedy capture: the namespace is everything before the last "_queue".
	require.NoError(t, c.CreateQueue(ctx, "a_queue_b_queue"))
	_, p = receive(t, l)
	require.Equal(t, "a_queue_b", p["namespace"])
	_, err = c.Send(ctx, "a_queue_b_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	ch, p = receive(t, l)
	require.Equal(t, "pgmq_message_ready.a_queue_b", ch)
	require.Equal(t, "a_queue_b", p["namespace"])
	ch, _ = receive(t, l)
	require.Equal(t, "pgmq_message_ready", ch)
	requireNoMore(t, l)
}

// A send inside a business transaction notifies only when it commits, so a
// woken consumer always finds the message.
func TestNotificationWaitsForCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, pgmq.New(db).CreateQueue(ctx, "billing_queue"))
	l := listen(t, dsn, "pgmq_message_ready.billing")

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	_, err = pgmq.New(tx).Send(ctx, "billing_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	requireNoMore(t, l)
	require.NoError(t, tx.Commit())
	ch, p := receive(t, l)
	require.Equal(t, "pgmq_message_ready.billing", ch)
	require.Equal(t, "billing_queue", p["queue_name"])
}

// A queue created with plain pgmq.create by any client, after the migration, also
// notifies: the migration's event trigger attached the trigger (D-h).
func TestQueueCreatedOutsideTheAdapterNotifies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	l := listen(t, dsn, "pgmq_message_ready.raw")
	_, err = db.ExecContext(ctx, `SELECT pgmq.create('raw_queue')`)
	require.NoError(t, err)
	var id int64
	require.NoError(t, db.GetContext(ctx, &id, `SELECT pgmq.send('raw_queue'::text, '{}'::jsonb)`))
	ch, p := receive(t, l)
	require.Equal(t, "pgmq_message_ready.raw", ch)
	require.Equal(t, float64(id), p["msg_id"])
}
