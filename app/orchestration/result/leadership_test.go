package result_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/domain"
)

// fakeLeader is a result.Leader the test switches; it counts the questions,
// one per consumer loop iteration.
type fakeLeader struct {
	leading atomic.Bool
	asked   atomic.Int64

	mu     sync.Mutex
	gained chan struct{}
}

func newFakeLeader() *fakeLeader { return &fakeLeader{gained: make(chan struct{})} }

func (l *fakeLeader) Leading() bool {
	l.asked.Add(1)
	return l.leading.Load()
}

func (l *fakeLeader) Gained() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gained
}

// gain makes this instance the leader, as leader.Election does.
func (l *fakeLeader) gain() {
	l.leading.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.gained)
	l.gained = make(chan struct{})
}

func (q *memQueue) readCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, r := range q.reads {
		n += r
	}
	return n
}

// TestStandbyConsumersReadNothingUntilTheyLead: a standby's consumer loops
// go on polling but read no queue; once the instance leads they read. With
// a poll interval of an hour, a new leader reads at once only because
// gaining leadership wakes its consumers.
func TestStandbyConsumersReadNothingUntilTheyLead(t *testing.T) {
	for _, tc := range []struct {
		name string
		poll time.Duration
		// iterations is how many standby loop iterations to wait for.
		iterations int64
	}{
		{"polling standby reads nothing", time.Millisecond, 50},
		{"a new leader is woken at once", time.Hour, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newMemQueue(t)
			lead := newFakeLeader()
			p := result.New(result.Config{PollInterval: tc.poll}, result.Deps{Queue: q, Batches: newBatches(),
				Creator: creator{}, Leader: lead})
			id := q.add(domain.QueueStepResults, `"garbage"`)
			stop := runProcessor(t, p, nil)
			require.Eventually(t, func() bool { return lead.asked.Load() >= tc.iterations }, 5*time.Second, time.Millisecond,
				"the standby's loops iterate")
			require.Zero(t, q.readCount(), "a standby reads no queue")
			require.False(t, q.settled(id))

			lead.gain()
			require.Eventually(t, func() bool { return q.settled(id) }, 5*time.Second, time.Millisecond, "the leader reads")
			stop()
			require.True(t, q.archived[id])
		})
	}
}
