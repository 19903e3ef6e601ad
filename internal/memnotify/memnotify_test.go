package memnotify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/pgmq/notifiertest"
	"github.com/tasker-systems/tasker-go/internal/memnotify"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestNotifierContract runs the MessageNotifier port's contract suite, the
// one the pgmq Listener runs, against the fake.
func TestNotifierContract(t *testing.T) {
	notifiertest.Run(t, func(*testing.T) notifiertest.Subject {
		n := memnotify.New(4)
		return notifiertest.Subject{Notifier: n, Wake: func(t *testing.T, queue string) {
			t.Helper()
			require.True(t, n.Notify(ports.MessageReady{Queue: queue}))
		}}
	})
}

// TestNotifyWaitsForRoomUntilClose: a full buffer makes Notify wait; a
// reader makes room, Close releases it undelivered, and later calls do
// nothing.
func TestNotifyWaitsForRoomUntilClose(t *testing.T) {
	t.Parallel()
	n := memnotify.New(1)
	require.True(t, n.Notify(ports.MessageReady{Queue: "a_queue"}))
	delivered := make(chan bool, 1)
	go func() { delivered <- n.Notify(ports.MessageReady{Queue: "b_queue"}) }()
	select {
	case <-delivered:
		t.Fatal("Notify into a full buffer returned")
	case <-time.After(20 * time.Millisecond):
	}
	require.Equal(t, "a_queue", (<-n.Notifications()).Queue)
	require.True(t, <-delivered)

	go func() { delivered <- n.Notify(ports.MessageReady{Queue: "c_queue"}) }()
	select {
	case <-delivered:
		t.Fatal("Notify into a full buffer returned")
	case <-time.After(20 * time.Millisecond):
	}
	require.NoError(t, n.Close())
	require.False(t, <-delivered, "Close releases a waiting Notify")
	require.False(t, n.Notify(ports.MessageReady{Queue: "d_queue"}), "nothing after Close")
	m, ok := <-n.Notifications()
	require.True(t, ok, "a buffered wake-up stays readable")
	require.Equal(t, "b_queue", m.Queue)
	_, ok = <-n.Notifications()
	require.False(t, ok)
}
