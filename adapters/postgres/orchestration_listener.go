package postgres

import (
	"context"
	"encoding/json"
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

// Wakeups implements ports.QueueNotifier. It returns at once: the LISTEN
// connection is established in the background (lib/pq reconnects on its
// own), so an unreachable database never blocks the consumers, which poll
// regardless. After a reconnect it emits "" so consumers poll at once
// (missed notifications are not replayed). The channel closes when ctx ends.
func (l *QueueListener) Wakeups(ctx context.Context) (<-chan string, error) {
	listener := pq.NewListener(l.url, 100*time.Millisecond, 2*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			l.log.Warn("notification listener", zap.Int("event", int(ev)), zap.Error(err))
		}
	})
	out := make(chan string, 64)
	go func() {
		defer close(out)
		defer func() { _ = listener.Close() }()
		listened := make(chan error, 1)
		go func() { listened <- listener.Listen(l.channel) }()
		select {
		case <-ctx.Done():
			_ = listener.Close()
			<-listened
			return
		case err := <-listened:
			if err != nil {
				l.log.Warn("listen failed; polling only", zap.String("channel", l.channel), zap.Error(err))
				return
			}
		}
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
