package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/ports"
)

// GlobalMessageReadyChannel is the NOTIFY channel every pgmq message-ready
// trigger also fires on (contract §4.6). The orchestration listens here and
// filters by queue name, independent of namespace derivation (D-h).
const GlobalMessageReadyChannel = "pgmq_message_ready"

// QueueListener turns message-ready notifications into queue-name wake-ups on
// a dedicated connection (lib/pq Listener). It implements ports.QueueNotifier.
type QueueListener struct {
	url     string
	channel string
	log     *zap.Logger
}

var _ ports.QueueNotifier = (*QueueListener)(nil)

// NewQueueListener listens on channel (normally GlobalMessageReadyChannel)
// using a connection to url. log may be nil.
func NewQueueListener(url, channel string, log *zap.Logger) *QueueListener {
	if log == nil {
		log = zap.NewNop()
	}
	return &QueueListener{url: url, channel: channel, log: log}
}

// Wakeups implements ports.QueueNotifier. After a reconnect it emits "" so
// consumers poll once at once (missed notifications are not replayed).
func (l *QueueListener) Wakeups(ctx context.Context) (<-chan string, error) {
	listener := pq.NewListener(l.url, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			l.log.Warn("notification listener", zap.Int("event", int(ev)), zap.Error(err))
		}
	})
	if err := listener.Listen(l.channel); err != nil {
		_ = listener.Close()
		return nil, fmt.Errorf("listen %q: %w", l.channel, err)
	}
	out := make(chan string, 64)
	go func() {
		defer close(out)
		defer func() { _ = listener.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-listener.Notify:
				queue := ""
				if n != nil {
					var payload struct {
						QueueName string `json:"queue_name"`
					}
					if err := json.Unmarshal([]byte(n.Extra), &payload); err != nil {
						continue
					}
					queue = payload.QueueName
				}
				select {
				case out <- queue:
				default: // consumers are busy; they poll anyway
				}
			}
		}
	}()
	return out, nil
}
