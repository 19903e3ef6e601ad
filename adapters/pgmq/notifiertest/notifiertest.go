// Package notifiertest is the contract-test suite of the MessageNotifier port
// (ports.MessageNotifier). Every implementation runs it, the pgmq LISTEN
// Listener and the in-memory notifier of the consumers' tests alike:
//
//	func TestListenerContract(t *testing.T) {
//		notifiertest.Run(t, func(t *testing.T) notifiertest.Subject {
//			l := … // a Listener on its own database
//			return notifiertest.Subject{Notifier: l, Wake: func(t *testing.T, queue string) { … send to queue … }}
//		})
//	}
//
// It pins only what the port documents: Notifications is one stream, a
// delivered wake-up names its queue, and Close closes the stream and may be
// called again. A PollAll wake-up may come at any time (the port allows it
// after a reconnect), so the suite skips those.
//
// Subtests run in parallel, each on a notifier of its own.
package notifiertest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/ports"
)

// Subject is one notifier under test and the way to make it deliver.
type Subject struct {
	// Notifier is new and open. The suite closes it; a cleanup of the
	// factory's may close it again.
	Notifier ports.MessageNotifier
	// Wake makes Notifier deliver one wake-up for queue (for the pgmq
	// Listener: a message sent to queue, created if need be).
	Wake func(t *testing.T, queue string)
}

// Factory returns a new Subject for one subtest.
type Factory func(t *testing.T) Subject

// Queue names the suite wakes; valid pgmq queue names.
const (
	QueueA = "ntf_a_queue"
	QueueB = "ntf_b_queue"
)

// wait bounds every wait for a wake-up or for the stream to close.
const wait = 10 * time.Second

// Run runs the whole suite against the notifiers f returns.
func Run(t *testing.T, f Factory) {
	t.Run("NotificationsIsOneStream", func(t *testing.T) { testOneStream(t, f) })
	t.Run("WakeUpsNameTheirQueue", func(t *testing.T) { testNameTheirQueue(t, f) })
	t.Run("CloseClosesTheStream", func(t *testing.T) { testCloseClosesStream(t, f) })
	t.Run("CloseTwiceIsHarmless", func(t *testing.T) { testCloseTwice(t, f) })
}

func setup(t *testing.T, f Factory) Subject {
	t.Helper()
	t.Parallel()
	s := f(t)
	require.NotNil(t, s.Notifier)
	t.Cleanup(func() { _ = s.Notifier.Close() })
	return s
}

// next returns the next wake-up that is not PollAll.
func next(t *testing.T, ch <-chan ports.MessageReady) ports.MessageReady {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case m, ok := <-ch:
			require.True(t, ok, "stream closed")
			if m.PollAll {
				continue
			}
			return m
		case <-timeout:
			t.Fatal("no wake-up")
			return ports.MessageReady{}
		}
	}
}

// closed drains ch until it is closed.
func closed(t *testing.T, ch <-chan ports.MessageReady) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("stream not closed")
		}
	}
}

func testOneStream(t *testing.T, f Factory) {
	s := setup(t, f)
	require.Equal(t, s.Notifier.Notifications(), s.Notifier.Notifications(), "Notifications returns one channel")
	s.Wake(t, QueueA)
	require.Equal(t, QueueA, next(t, s.Notifier.Notifications()).Queue)
}

func testNameTheirQueue(t *testing.T, f Factory) {
	s := setup(t, f)
	s.Wake(t, QueueA)
	s.Wake(t, QueueB)
	ch := s.Notifier.Notifications()
	got := []string{next(t, ch).Queue, next(t, ch).Queue}
	require.ElementsMatch(t, []string{QueueA, QueueB}, got)
}

func testCloseClosesStream(t *testing.T, f Factory) {
	s := setup(t, f)
	ch := s.Notifier.Notifications()
	s.Wake(t, QueueA) // pending or not: the stream closes either way
	require.NoError(t, s.Notifier.Close())
	closed(t, ch)
}

func testCloseTwice(t *testing.T, f Factory) {
	s := setup(t, f)
	require.NoError(t, s.Notifier.Close())
	require.NoError(t, s.Notifier.Close(), "a second Close")
	closed(t, s.Notifier.Notifications())
}
