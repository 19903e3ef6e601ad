package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/memnotify"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

// holdingSubmitter keeps every submitted message (and its release) until
// the test releases it, like steps whose handlers are still running.
type holdingSubmitter struct {
	mu       sync.Mutex
	held     []func()
	received atomic.Int64
}

func (s *holdingSubmitter) SubmitStep(_ context.Context, _ string, _ ports.QueueMessage, release func()) error {
	s.mu.Lock()
	s.held = append(s.held, release)
	s.mu.Unlock()
	s.received.Add(1)
	return nil
}

func (s *holdingSubmitter) releaseAll() {
	s.mu.Lock()
	h := s.held
	s.held = nil
	s.mu.Unlock()
	for _, r := range h {
		r()
	}
}

func runIntake(t *testing.T, in *Intake) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { in.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func msgs(n int) []ports.QueueMessage {
	out := make([]ports.QueueMessage, n)
	for i := range out {
		out[i] = ports.QueueMessage{MsgID: int64(i + 1)}
	}
	return out
}

// With max_concurrent_steps = 3 held messages, intake never asks for more
// than the free slots and stops reading until a slot is released.
func TestIntakeBackPressure(t *testing.T) {
	t.Parallel()
	q := mocks.NewQueue(t)
	var asked []int
	var mu sync.Mutex
	q.EXPECT().Read(mock.Anything, "a_queue", 30, mock.Anything).RunAndReturn(
		func(_ context.Context, _ string, _ int, qty int) ([]ports.QueueMessage, error) {
			mu.Lock()
			asked = append(asked, qty)
			mu.Unlock()
			return msgs(qty), nil // the queue always has more
		})
	sub := &holdingSubmitter{}
	clock := newFakeClock(t0)
	in, err := NewIntake(IntakeConfig{Queues: []string{"a_queue"}, BatchSize: 10, MaxConcurrentSteps: 3, VisibilityTimeoutSeconds: 30},
		q, sub, nil, clock, nil, nil)
	require.NoError(t, err)
	runIntake(t, in)

	require.Eventually(t, func() bool { return sub.received.Load() == 3 }, time.Second, time.Millisecond)
	require.Equal(t, 3, in.Held())
	require.Never(t, func() bool { return sub.received.Load() > 3 }, 50*time.Millisecond, 5*time.Millisecond,
		"no read while every slot is held")
	sub.releaseAll()
	require.Eventually(t, func() bool { return sub.received.Load() == 6 }, time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, n := range asked {
		require.LessOrEqual(t, n, 3, "never asks for more than the free slots")
	}
}

// Unused slots are returned when the queue has fewer messages than asked,
// and an empty queue waits for the poll interval.
func TestIntakeReturnsUnusedSlotsAndPolls(t *testing.T) {
	t.Parallel()
	q := mocks.NewQueue(t)
	var reads atomic.Int64
	var secondQty atomic.Int64
	q.EXPECT().Read(mock.Anything, "a_queue", 30, mock.Anything).RunAndReturn(
		func(_ context.Context, _ string, _ int, qty int) ([]ports.QueueMessage, error) {
			if reads.Add(1) == 1 {
				return msgs(2), nil
			}
			secondQty.Store(int64(qty))
			return nil, nil
		})
	sub := &holdingSubmitter{}
	clock := newFakeClock(t0)
	in, err := NewIntake(IntakeConfig{Queues: []string{"a_queue"}, BatchSize: 5, MaxConcurrentSteps: 5, PollInterval: time.Second},
		q, sub, nil, clock, nil, nil)
	require.NoError(t, err)
	runIntake(t, in)
	require.Eventually(t, func() bool { return sub.received.Load() == 2 }, time.Second, time.Millisecond)
	require.Equal(t, time.Second, <-clock.afters, "waits for the poll interval after a short batch")
	require.Equal(t, 2, in.Held(), "only the two submitted messages hold slots")
	require.Equal(t, int64(1), reads.Load())
	clock.Fire()
	require.Eventually(t, func() bool { return reads.Load() == 2 }, time.Second, time.Millisecond, "polls again")
	require.Equal(t, int64(3), secondQty.Load(), "asks only for the 3 free slots")
}

// Notifications wake only served queues; PollAll wakes every one; read
// errors are logged and retried on the next tick.
func TestIntakeNotifications(t *testing.T) {
	t.Parallel()
	q := mocks.NewQueue(t)
	var aReads, bReads atomic.Int64
	q.EXPECT().Read(mock.Anything, "a_queue", mock.Anything, mock.Anything).RunAndReturn(
		func(context.Context, string, int, int) ([]ports.QueueMessage, error) { aReads.Add(1); return nil, nil })
	q.EXPECT().Read(mock.Anything, "b_queue", mock.Anything, mock.Anything).RunAndReturn(
		func(context.Context, string, int, int) ([]ports.QueueMessage, error) { bReads.Add(1); return nil, nil })
	n := memnotify.New(4)
	clock := newFakeClock(t0) // poll timers never fire: only notifications cause reads
	in, err := NewIntake(IntakeConfig{Queues: []string{"a_queue", "b_queue"}}, q, &holdingSubmitter{}, n, clock, nil, nil)
	require.NoError(t, err)
	runIntake(t, in)
	require.Eventually(t, func() bool { return aReads.Load() == 1 && bReads.Load() == 1 }, time.Second, time.Millisecond)

	n.Notify(ports.MessageReady{Queue: "orchestration_step_results", Namespace: "default"})
	n.Notify(ports.MessageReady{Queue: "a_queue", Namespace: "a"})
	require.Eventually(t, func() bool { return aReads.Load() == 2 }, time.Second, time.Millisecond)
	require.Equal(t, int64(1), bReads.Load(), "a foreign queue's notification wakes nobody (D-h)")

	n.Notify(ports.MessageReady{PollAll: true})
	require.Eventually(t, func() bool { return aReads.Load() == 3 && bReads.Load() == 2 }, time.Second, time.Millisecond)
}

func TestNewIntakeRequiresQueues(t *testing.T) {
	t.Parallel()
	_, err := NewIntake(IntakeConfig{}, mocks.NewQueue(t), &holdingSubmitter{}, nil, nil, nil, nil)
	require.Error(t, err)
}

// Each read asks for min(free slots, batch size): the batch size caps a
// read, the free slots (max_concurrent_steps minus held messages) bound it,
// and with every slot held intake waits instead of reading 0.
func TestIntakeReadQtyIsFreeSlotsCappedByBatchSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name            string
		batch, maxSteps int
		want            []int // the qty of each read until every slot is held
	}{
		{"more slots than the cap: capped reads, then the rest", 10, 25, []int{10, 10, 5}},
		{"fewer slots than the cap: the free slots", 10, 3, []int{3}},
		{"equal", 10, 10, []int{10}},
		{"cap of one", 1, 3, []int{1, 1, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := mocks.NewQueue(t)
			var mu sync.Mutex
			var asked []int
			q.EXPECT().Read(mock.Anything, "a_queue", 30, mock.Anything).RunAndReturn(
				func(_ context.Context, _ string, _ int, qty int) ([]ports.QueueMessage, error) {
					mu.Lock()
					asked = append(asked, qty)
					mu.Unlock()
					return msgs(qty), nil // the queue always has more
				})
			sub := &holdingSubmitter{}
			in, err := NewIntake(IntakeConfig{Queues: []string{"a_queue"}, BatchSize: tc.batch, MaxConcurrentSteps: tc.maxSteps,
				VisibilityTimeoutSeconds: 30}, q, sub, nil, newFakeClock(t0), nil, nil)
			require.NoError(t, err)
			runIntake(t, in)

			require.Eventually(t, func() bool { return sub.received.Load() == int64(tc.maxSteps) }, time.Second, time.Millisecond)
			require.Never(t, func() bool { return sub.received.Load() > int64(tc.maxSteps) }, 30*time.Millisecond, 5*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, tc.want, asked, "qty passed to each Read; no read while no slot is free")
		})
	}
}
