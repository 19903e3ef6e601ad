package pgmq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/ports"
)

// killListenConnection terminates the listener's dedicated connection, as a
// database restart or network cut would.
func killListenConnection(t *testing.T, db *sqlx.DB) {
	t.Helper()
	require.Eventually(t, func() bool {
		var killed int
		require.NoError(t, db.Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`))
		return killed == 1
	}, 10*time.Second, 10*time.Millisecond, "the dedicated LISTEN connection")
}

// TestListenerDropsWakeUpsWhenTheBufferIsFull: wake-ups are hints, so a slow
// consumer makes the listener drop (and count) them instead of blocking its
// connection; consumption resumes normally afterwards.
func TestListenerDropsWakeUpsWhenTheBufferIsFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.NamespaceReadyChannel("lsn")},
		Buffer: 1}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	var ids []int64
	for i := 0; i < 3; i++ {
		id, err := c.Send(ctx, "lsn_queue", json.RawMessage(`{}`), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.Eventually(t, func() bool { return l.Dropped() == 2 }, 10*time.Second, time.Millisecond)
	require.Equal(t, ids[0], nextReady(t, l.Notifications()).MsgID, "the first wake-up was kept")

	id, err := c.Send(ctx, "lsn_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	require.Equal(t, id, nextReady(t, l.Notifications()).MsgID, "delivery resumes once there is room")
	require.Equal(t, uint64(2), l.Dropped())
}

// TestListenerIgnoresPayloadsWithoutQueue: a NOTIFY on a listened channel
// that is not a §4.6 message-ready payload is not turned into a wake-up.
func TestListenerIgnoresPayloadsWithoutQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, c, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.GlobalReadyChannel}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	for _, payload := range []string{"not json", `{"msg_id":7}`, `{"queue_name":""}`} {
		_, err := db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, pgmq.GlobalReadyChannel, payload)
		require.NoError(t, err)
	}
	id, err := c.Send(ctx, "lsn_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	require.Equal(t, ports.MessageReady{Queue: "lsn_queue", Namespace: "lsn", MsgID: id}, nextReady(t, l.Notifications()),
		"the foreign payloads produced nothing before the real wake-up")
}

// TestGlobalListenerAsksToPollAllAfterAReconnect: notifications sent while
// the orchestration's connection was down are lost, so after the reconnect
// its listener asks the consumers to read every queue (PollAll), and the
// LISTEN on the global channel is in force again.
func TestGlobalListenerAsksToPollAllAfterAReconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, c, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.GlobalReadyChannel},
		MinReconnect: 10 * time.Millisecond, MaxReconnect: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	killListenConnection(t, db)
	require.Equal(t, ports.MessageReady{PollAll: true}, nextReady(t, l.Notifications()))
	_, err = c.Send(ctx, "other_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	require.Equal(t, "other_queue", nextReady(t, l.Notifications()).Queue)
}

// TestStreamsEnd: Close ends the notification stream (and a second Close
// is harmless).
func TestStreamsEnd(t *testing.T) {
	t.Parallel()
	_, _, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: dsn, Channels: []string{"c"}}, nil)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	requireClosed(t, l.Notifications())
	require.NoError(t, l.Close(), "closing twice is harmless")
}

func requireClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case _, ok := <-ch:
		require.False(t, ok, "stream still delivering")
	case <-time.After(10 * time.Second):
		t.Fatal("stream not closed")
	}
}

func TestNewListenerNeedsChannels(t *testing.T) {
	t.Parallel()
	_, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: "postgres://x"}, nil)
	require.ErrorContains(t, err, "no channels")
}
