package pgmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lib/pq"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/ports"
)

// Message-ready NOTIFY channels (contract §4.6).
const (
	// GlobalReadyChannel receives every message-ready notification.
	GlobalReadyChannel = "pgmq_message_ready"
	// QueueCreatedChannel receives queue-created notifications.
	QueueCreatedChannel = "pgmq_queue_created"
)

// NamespaceReadyChannel is the per-namespace channel "pgmq_message_ready.<ns>".
// lib/pq quotes it when listening (LISTEN "pgmq_message_ready.<ns>"), which
// the dot requires.
func NamespaceReadyChannel(namespace string) string { return GlobalReadyChannel + "." + namespace }

// Listener defaults.
const (
	DefaultListenerMinReconnect = 100 * time.Millisecond
	DefaultListenerMaxReconnect = 10 * time.Second
	// DefaultListenerPingInterval detects a silently dead connection (a
	// LISTEN connection otherwise only notices on the next notification).
	DefaultListenerPingInterval = 30 * time.Second
	DefaultListenerBuffer       = 256
	DefaultListenTimeout        = 10 * time.Second
)

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// DSN of the dedicated LISTEN connection (not taken from the pool).
	DSN string
	// Channels to LISTEN on, e.g. NamespaceReadyChannel(ns) per served namespace.
	Channels []string
	// MinReconnect / MaxReconnect bound lib/pq's reconnect backoff.
	MinReconnect, MaxReconnect time.Duration
	// PingInterval is how often the connection is checked.
	PingInterval time.Duration
	// Buffer is the capacity of the notification channel. When it is full,
	// further wake-ups are dropped: they are hints only and the consumers'
	// polling picks the messages up.
	Buffer int
	// ListenTimeout bounds the initial connect + LISTEN in NewListener.
	ListenTimeout time.Duration
}

// Listener is a lib/pq LISTEN connection delivering message-ready
// wake-ups: the ports.MessageNotifier of both services. lib/pq re-issues every
// LISTEN after a reconnect; the Listener then emits PollAll, because
// notifications sent while disconnected are lost.
type Listener struct {
	cfg       ListenerConfig
	log       *zap.Logger
	l         *pq.Listener
	out       chan ports.MessageReady
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	dropped   uint64
	mu        sync.Mutex
}

var _ ports.MessageNotifier = (*Listener)(nil)

// readyPayload is the NOTIFY payload of §4.6.
type readyPayload struct {
	EventType string `json:"event_type"`
	MsgID     int64  `json:"msg_id"`
	QueueName string `json:"queue_name"`
	Namespace string `json:"namespace"`
}

// NewListener connects and LISTENs on every channel, or fails within
// ListenTimeout (e.g. database unreachable).
func NewListener(ctx context.Context, cfg ListenerConfig, log *zap.Logger) (*Listener, error) {
	if cfg.DSN == "" {
		return nil, errors.New("listener: empty DSN")
	}
	if len(cfg.Channels) == 0 {
		return nil, errors.New("listener: no channels")
	}
	if cfg.MinReconnect <= 0 {
		cfg.MinReconnect = DefaultListenerMinReconnect
	}
	if cfg.MaxReconnect <= 0 {
		cfg.MaxReconnect = DefaultListenerMaxReconnect
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultListenerPingInterval
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultListenerBuffer
	}
	if cfg.ListenTimeout <= 0 {
		cfg.ListenTimeout = DefaultListenTimeout
	}
	if log == nil {
		log = zap.NewNop()
	}
	x := &Listener{cfg: cfg, log: log, out: make(chan ports.MessageReady, cfg.Buffer), stop: make(chan struct{})}
	x.l = pq.NewListener(cfg.DSN, cfg.MinReconnect, cfg.MaxReconnect, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected:
			log.Warn("LISTEN connection lost; polling continues", zap.Error(err))
		case pq.ListenerEventReconnected:
			log.Info("LISTEN connection re-established; channels re-listened")
		case pq.ListenerEventConnectionAttemptFailed:
			log.Debug("LISTEN reconnect attempt failed", zap.Error(err))
		}
	})
	listened := make(chan error, 1)
	go func() {
		for _, ch := range cfg.Channels {
			if err := x.l.Listen(ch); err != nil && !errors.Is(err, pq.ErrChannelAlreadyOpen) {
				listened <- fmt.Errorf("LISTEN %q: %w", ch, err)
				return
			}
		}
		listened <- nil
	}()
	tctx, cancel := context.WithTimeout(ctx, cfg.ListenTimeout)
	defer cancel()
	select {
	case err := <-listened:
		if err != nil {
			_ = x.l.Close()
			return nil, fmt.Errorf("listener: %w", err)
		}
	case <-tctx.Done():
		_ = x.l.Close() // unblocks Listen
		<-listened
		return nil, fmt.Errorf("listener: connect and LISTEN: %w", tctx.Err())
	}
	x.wg.Add(1)
	go x.loop()
	return x, nil
}

func (x *Listener) loop() {
	defer x.wg.Done()
	defer close(x.out)
	ping := time.NewTicker(x.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-x.stop:
			return
		case <-ping.C:
			go func() { _ = x.l.Ping() }() // failure makes lib/pq reconnect
		case n, ok := <-x.l.NotificationChannel():
			if !ok {
				return
			}
			if n == nil { // reconnected: anything sent meanwhile was missed
				x.emit(ports.MessageReady{PollAll: true})
				continue
			}
			var p readyPayload
			if err := json.Unmarshal([]byte(n.Extra), &p); err != nil || p.QueueName == "" {
				x.log.Debug("ignoring notification without queue_name", zap.String("channel", n.Channel))
				continue
			}
			x.emit(ports.MessageReady{Queue: p.QueueName, Namespace: p.Namespace, MsgID: p.MsgID})
		}
	}
}

func (x *Listener) emit(m ports.MessageReady) {
	select {
	case x.out <- m:
	default:
		x.mu.Lock()
		x.dropped++
		x.mu.Unlock()
	}
}

// Dropped counts wake-ups dropped because the buffer was full.
func (x *Listener) Dropped() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.dropped
}

// Notifications is the wake-up stream; it is closed by Close.
func (x *Listener) Notifications() <-chan ports.MessageReady { return x.out }

// Close stops listening and closes the connection and the stream.
func (x *Listener) Close() error {
	var err error
	x.closeOnce.Do(func() {
		close(x.stop)
		err = x.l.Close()
		x.wg.Wait()
	})
	return err
}
