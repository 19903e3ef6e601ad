// Package eventbus is the in-process channel implementation of
// ports.EventBus: the seam between claiming a step (command processor) and
// running its handler (dispatcher).
//
// Back-pressure: both directions are bounded Go channels. A publisher whose
// buffer is full blocks until a subscriber takes an event or the publisher's
// context ends; events are never dropped. The worker bounds the number of
// claimed-but-unfinished steps by worker.max_concurrent_steps before it
// publishes, so with buffers at least that large a publish never blocks in
// practice; the blocking only matters if a subscriber stops consuming.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Default buffer sizes, mirroring event_integration.publisher_buffer_size and
// subscriber_buffer_size. 1000 comfortably exceeds any sensible
// max_concurrent_steps, so the bus is never the bottleneck.
const (
	DefaultPublisherBufferSize  = 1000
	DefaultSubscriberBufferSize = 1000
)

// ErrClosed is returned by a publish after Close.
var ErrClosed = errors.New("event bus closed")

// Config sizes the bus.
type Config struct {
	// PublisherBufferSize is the capacity of the execution channel (command
	// processor → dispatcher), event_integration.publisher_buffer_size.
	PublisherBufferSize int
	// SubscriberBufferSize is the capacity of the completion channel
	// (dispatcher → outcome persister), event_integration.subscriber_buffer_size.
	SubscriberBufferSize int
}

// Bus is a channel-backed ports.EventBus. It is safe for concurrent use by
// any number of publishers and subscribers; each event is delivered to
// exactly one subscriber of its channel.
type Bus struct {
	executions  chan domain.StepExecutionEvent
	completions chan domain.StepCompletionEvent
	done        chan struct{}
	closeOnce   sync.Once
}

var _ ports.EventBus = (*Bus)(nil)

// New builds a bus; non-positive sizes fall back to the defaults.
func New(cfg Config) *Bus {
	if cfg.PublisherBufferSize <= 0 {
		cfg.PublisherBufferSize = DefaultPublisherBufferSize
	}
	if cfg.SubscriberBufferSize <= 0 {
		cfg.SubscriberBufferSize = DefaultSubscriberBufferSize
	}
	return &Bus{
		executions:  make(chan domain.StepExecutionEvent, cfg.PublisherBufferSize),
		completions: make(chan domain.StepCompletionEvent, cfg.SubscriberBufferSize),
		done:        make(chan struct{}),
	}
}

// PublishExecution queues ev for the dispatcher, blocking while the buffer is
// full until ctx ends or the bus is closed.
func (b *Bus) PublishExecution(ctx context.Context, ev domain.StepExecutionEvent) error {
	return publish(ctx, b.done, b.executions, ev, "execution", ev.EventID)
}

// Executions is the dispatcher's subscription. The channel is never closed
// (publishers may race with Close); subscribers stop on their own context.
func (b *Bus) Executions() <-chan domain.StepExecutionEvent { return b.executions }

// PublishCompletion queues a handler outcome, blocking while the buffer is
// full until ctx ends or the bus is closed.
func (b *Bus) PublishCompletion(ctx context.Context, ev domain.StepCompletionEvent) error {
	return publish(ctx, b.done, b.completions, ev, "completion", ev.EventID)
}

// publish is the one send rule of both directions. A closed bus refuses the
// event before anything else, so a publish after Close fails even when the
// buffer has room (select would pick a ready case at random); otherwise it
// blocks while ch is full until ctx ends or the bus closes. kind and id
// name the event in the context error.
func publish[E any](ctx context.Context, done <-chan struct{}, ch chan<- E, ev E, kind string, id uuid.UUID) error {
	select {
	case <-done:
		return ErrClosed
	default:
	}
	select {
	case ch <- ev:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publish %s %s: %w", kind, id, ctx.Err())
	case <-done:
		return ErrClosed
	}
}

// Completions is the outcome persister's subscription (never closed, see Executions).
func (b *Bus) Completions() <-chan domain.StepCompletionEvent { return b.completions }

// Close makes further publishes fail with ErrClosed and releases publishers
// blocked on a full buffer. Events already buffered stay readable.
func (b *Bus) Close() { b.closeOnce.Do(func() { close(b.done) }) }
