package eventbus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/eventbus/eventbustest"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBusContract runs the EventBus port's contract suite against the bus.
func TestBusContract(t *testing.T) {
	eventbustest.Run(t, func(_ *testing.T, buffer int) ports.EventBus {
		return New(Config{PublisherBufferSize: buffer, SubscriberBufferSize: buffer})
	})
}

func TestBusDeliversEachEventOnceInOrder(t *testing.T) {
	t.Parallel()
	b := New(Config{PublisherBufferSize: 4, SubscriberBufferSize: 4})
	ctx := context.Background()
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		require.NoError(t, b.PublishExecution(ctx, domain.StepExecutionEvent{EventID: id}))
		require.NoError(t, b.PublishCompletion(ctx, domain.StepCompletionEvent{EventID: id}))
	}
	for _, id := range ids {
		require.Equal(t, id, (<-b.Executions()).EventID)
		require.Equal(t, id, (<-b.Completions()).EventID)
	}
}

func TestBusFullBufferBlocksUntilContextEnds(t *testing.T) {
	t.Parallel()
	b := New(Config{PublisherBufferSize: 1, SubscriberBufferSize: 1})
	require.NoError(t, b.PublishExecution(context.Background(), domain.StepExecutionEvent{}))
	require.NoError(t, b.PublishCompletion(context.Background(), domain.StepCompletionEvent{}))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.PublishExecution(ctx, domain.StepExecutionEvent{}), context.DeadlineExceeded)
	require.ErrorIs(t, b.PublishCompletion(ctx, domain.StepCompletionEvent{}), context.DeadlineExceeded)
	require.Len(t, b.Executions(), 1, "the blocked event must not have been dropped into the buffer")
}

func TestBusFullBufferUnblocksWhenConsumed(t *testing.T) {
	t.Parallel()
	b := New(Config{PublisherBufferSize: 1, SubscriberBufferSize: 1})
	require.NoError(t, b.PublishExecution(context.Background(), domain.StepExecutionEvent{}))
	published := make(chan error, 1)
	go func() { published <- b.PublishExecution(context.Background(), domain.StepExecutionEvent{}) }()
	<-b.Executions()
	require.NoError(t, <-published)
	require.Len(t, b.Executions(), 1)
}

func TestBusCloseReleasesBlockedPublishers(t *testing.T) {
	t.Parallel()
	b := New(Config{PublisherBufferSize: 1, SubscriberBufferSize: 1})
	require.NoError(t, b.PublishExecution(context.Background(), domain.StepExecutionEvent{}))
	published := make(chan error, 1)
	go func() { published <- b.PublishExecution(context.Background(), domain.StepExecutionEvent{}) }()
	b.Close()
	require.ErrorIs(t, <-published, ErrClosed)
	require.ErrorIs(t, b.PublishCompletion(context.Background(), domain.StepCompletionEvent{}), ErrClosed)
	b.Close() // idempotent
}

func TestNewAppliesDefaults(t *testing.T) {
	t.Parallel()
	b := New(Config{})
	require.Equal(t, DefaultPublisherBufferSize, cap(b.executions))
	require.Equal(t, DefaultSubscriberBufferSize, cap(b.completions))
}

func TestBusConcurrentPublishersLoseNothing(t *testing.T) {
	t.Parallel()
	b := New(Config{PublisherBufferSize: 8, SubscriberBufferSize: 8})
	const producers, per = 4, 500
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				require.NoError(t, b.PublishCompletion(context.Background(), domain.StepCompletionEvent{}))
			}
		}()
	}
	got := 0
	for got < producers*per {
		<-b.Completions()
		got++
	}
	wg.Wait()
	require.Equal(t, producers*per, got)
}
