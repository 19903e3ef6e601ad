// Package consume is the one queue-consumer loop of both services: the
// worker's intake readers and the orchestration's result, request and
// finalization consumers. A loop reads when woken by a message-ready
// notification (contract §4.6) or by its poll tick (notifications are only
// hints), reads again at once while reads come back full, and stops when
// its context ends. What a read takes and how its messages are handled —
// free handler slots, growing batches, set-based transactions — is the
// caller's Step.
package consume

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/ports"
)

// Loop reads one queue until its context ends.
type Loop struct {
	// Name is reported to Tick on every iteration, so a loop that stops
	// iterating (wedged) can be seen by the health policy.
	Name string
	// Step reads the queue once and handles what it read. more reports that
	// the read came back full, so more is likely waiting and the loop reads
	// again without waiting. Step must return promptly once ctx ends.
	Step func(ctx context.Context) (more bool)
	// Wake delivers wake-ups (a Router's channel for the queue).
	Wake <-chan struct{}
	// PollInterval is the polling fallback: the loop reads at the latest
	// this long after its last read that was not full. 0 means the loop
	// only reads when woken (it also waits for a first wake-up), for the
	// extra consumers of a queue whose polling one wakes them.
	PollInterval time.Duration
	// Clock times the poll; nil means the system clock.
	Clock ports.Clock
	// Tick, when set, is called with Name on every iteration.
	Tick func(string)
}

// Run runs the loop until ctx ends.
func (l Loop) Run(ctx context.Context) {
	if l.Clock == nil {
		l.Clock = ports.SystemClock{}
	}
	if l.PollInterval <= 0 {
		select {
		case <-ctx.Done():
			return
		case <-l.Wake:
		}
	}
	for {
		if l.Tick != nil {
			l.Tick(l.Name)
		}
		more := l.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		if more {
			continue
		}
		var poll <-chan time.Time
		if l.PollInterval > 0 {
			poll = l.Clock.After(l.PollInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.Wake:
		case <-poll:
		}
	}
}

// Router turns message-ready notifications into wake-ups of the loops of
// the queues it serves. Each served queue has one wake channel with room for
// one pending wake-up: loops sharing a queue share the channel, and a burst
// of notifications while a read is pending coalesces into that read.
type Router struct {
	wakes map[string]chan struct{}
}

// NewRouter serves queues; notifications for other queues are ignored (D-h:
// the global channel carries every queue's notifications).
func NewRouter(queues []string) *Router {
	r := &Router{wakes: make(map[string]chan struct{}, len(queues))}
	for _, q := range queues {
		r.wakes[q] = make(chan struct{}, 1)
	}
	return r
}

// Wakeups is the wake channel of queue (nil for a queue not served).
func (r *Router) Wakeups(queue string) <-chan struct{} { return r.wakes[queue] }

// Wake wakes a loop of queue unless a wake-up is already pending; a queue
// not served is ignored. A loop that read a full batch calls it so that
// another consumer of the queue reads too.
func (r *Router) Wake(queue string) {
	w, ok := r.wakes[queue]
	if !ok {
		return
	}
	select {
	case w <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Route wakes the loops named by each notification until ctx ends or the
// notifier's stream closes (then the loops go on polling). A PollAll
// notification (sent after a reconnect, when notifications may have been
// lost) wakes every queue. tick, when set, is called with "notifications"
// for each notification.
func (r *Router) Route(ctx context.Context, n ports.MessageNotifier, log *zap.Logger, tick func(string)) {
	ch := n.Notifications()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				if log != nil {
					log.Warn("message notifier closed; continuing with polling only")
				}
				return
			}
			if tick != nil {
				tick("notifications")
			}
			if m.PollAll {
				for q := range r.wakes {
					r.Wake(q)
				}
				continue
			}
			r.Wake(m.Queue)
		}
	}
}
