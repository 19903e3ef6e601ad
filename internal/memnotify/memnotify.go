// Package memnotify is an in-memory ports.MessageNotifier, for tests of the
// services that consume queues. It runs the MessageNotifier port's contract
// suite (adapters/pgmq/notifiertest) like the pgmq Listener does, so a test
// that passes against it does not rely on behaviour the Listener lacks:
// Notifications is one stream, Close closes it, and a second Close is
// harmless.
//
// A test delivers wake-ups with Notify. Unlike the Listener, which drops a
// wake-up when its buffer is full (they are hints), Notify waits for room, so
// a test's wake-ups are all delivered; it does nothing after Close.
package memnotify

import (
	"sync"

	"github.com/tasker-systems/tasker-go/ports"
)

// Notifier is an in-memory ports.MessageNotifier. It is safe for concurrent use.
type Notifier struct {
	ch   chan ports.MessageReady
	done chan struct{} // closed by Close: releases waiting Notify calls

	// mu orders Notify before Close: Notify sends under the read lock, so
	// Close, under the write lock, never closes ch under a sender.
	mu   sync.RWMutex
	once sync.Once
}

var _ ports.MessageNotifier = (*Notifier)(nil)

// New returns an open notifier whose stream buffers buffer wake-ups
// (0: unbuffered).
func New(buffer int) *Notifier {
	return &Notifier{ch: make(chan ports.MessageReady, buffer), done: make(chan struct{})}
}

// Notify delivers m, waiting while the buffer is full, and reports whether it
// was delivered: false once the notifier is closed.
func (n *Notifier) Notify(m ports.MessageReady) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	select {
	case <-n.done:
		return false
	default:
	}
	select {
	case n.ch <- m:
		return true
	case <-n.done:
		return false
	}
}

// Notifications implements ports.MessageNotifier: one stream, closed by Close.
func (n *Notifier) Notifications() <-chan ports.MessageReady { return n.ch }

// Close implements ports.MessageNotifier. Wake-ups already buffered stay
// readable before the stream ends; a second Close does nothing.
func (n *Notifier) Close() error {
	n.once.Do(func() {
		close(n.done)
		n.mu.Lock()
		close(n.ch)
		n.mu.Unlock()
	})
	return nil
}
