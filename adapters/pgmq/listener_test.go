package pgmq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/notifiertest"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func nextReady(t *testing.T, ch <-chan ports.MessageReady) ports.MessageReady {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "stream closed")
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up within 10 s")
		return ports.MessageReady{}
	}
}

func listenerSetup(t *testing.T) (*sqlx.DB, *pgmq.Client, string) {
	t.Helper()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	c := pgmq.New(db)
	for _, q := range []string{"lsn_queue", "other_queue"} {
		require.NoError(t, c.CreateQueue(context.Background(), q))
	}
	return db, c, dsn
}

// TestListenerContract runs the MessageNotifier port's contract suite against
// a Listener on the global channel of a database of its own; a wake-up is a
// message sent to the queue.
func TestListenerContract(t *testing.T) {
	notifiertest.Run(t, func(t *testing.T) notifiertest.Subject {
		dsn := testdb.URL(t)
		db, err := sqlx.Open("postgres", dsn)
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		c := pgmq.New(db)
		l, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.GlobalReadyChannel}}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, l.Close()) })
		return notifiertest.Subject{Notifier: l, Wake: func(t *testing.T, queue string) {
			t.Helper()
			require.NoError(t, c.CreateQueue(context.Background(), queue))
			_, err := c.Send(context.Background(), queue, json.RawMessage(`{}`), 0)
			require.NoError(t, err)
		}}
	})
}

func TestListenerDeliversOnlyItsNamespaceChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.NamespaceReadyChannel("lsn")}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	_, err = c.Send(ctx, "other_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	id, err := c.Send(ctx, "lsn_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	m := nextReady(t, l.Notifications())
	require.Equal(t, ports.MessageReady{Queue: "lsn_queue", Namespace: "lsn", MsgID: id}, m,
		"the other namespace's message was not delivered on this channel")
}

func TestListenerReListensAndAsksForPollAfterReconnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, c, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.NamespaceReadyChannel("lsn")},
		MinReconnect: 10 * time.Millisecond, MaxReconnect: 100 * time.Millisecond}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	var killed int
	require.NoError(t, db.Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`))
	require.Equal(t, 1, killed, "the dedicated LISTEN connection")
	require.Equal(t, ports.MessageReady{PollAll: true}, nextReady(t, l.Notifications()))

	id, err := c.Send(ctx, "lsn_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	require.Equal(t, id, nextReady(t, l.Notifications()).MsgID, "LISTEN re-issued after reconnect")
}

// TestGlobalListenerNamesTheQueue: the orchestration's listener on the
// global channel gets each queue's notifications with the queue's name.
func TestGlobalListenerNamesTheQueue(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, c, dsn := listenerSetup(t)
	l, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.GlobalReadyChannel}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	_, err = c.Send(ctx, "other_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	require.Equal(t, "other_queue", nextReady(t, l.Notifications()).Queue)
}

func TestListenerFailsFastOnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{
		DSN: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1", Channels: []string{"x"},
		ListenTimeout: 300 * time.Millisecond}, nil)
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	_, err = pgmq.NewListener(context.Background(), pgmq.ListenerConfig{Channels: []string{"x"}}, nil)
	require.ErrorContains(t, err, "empty DSN")
}
