package memqueue_test

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/heartbeattest"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/queuetest"
	"github.com/tasker-systems/tasker-go/internal/memqueue"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQueueContract runs the Queue port's contract suite, the one the pgmq
// adapter runs, against one shared fake (each subtest on its own queue).
func TestQueueContract(t *testing.T) {
	q := memqueue.New()
	queuetest.Run(t, func(*testing.T) ports.Queue { return q })
}

// manualClock is a ports.Clock that moves only when told.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(time.Duration) <-chan time.Time { return nil }

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newQueue(t *testing.T, opts ...memqueue.Option) (context.Context, *memqueue.Queue, string) {
	t.Helper()
	q := memqueue.New(opts...)
	name := queuetest.NewQueueName()
	require.NoError(t, q.CreateQueue(context.Background(), name))
	return context.Background(), q, name
}

// TestClockDrivesVisibility: with WithClock, delays and visibility timeouts
// expire when the test moves its clock, not after real time.
func TestClockDrivesVisibility(t *testing.T) {
	t.Parallel()
	clock := &manualClock{now: time.Date(2025, 8, 27, 12, 0, 0, 0, time.UTC)}
	ctx, q, name := newQueue(t, memqueue.WithClock(clock))

	id, err := q.Send(ctx, name, json.RawMessage(`{}`), 1500*time.Millisecond)
	require.NoError(t, err)
	clock.advance(1999 * time.Millisecond)
	msgs, err := q.Read(ctx, name, 10, 1)
	require.NoError(t, err)
	require.Empty(t, msgs, "a delay is rounded up to whole seconds")
	clock.advance(time.Millisecond)
	msgs, err = q.Read(ctx, name, 10, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, id, msgs[0].MsgID)
	require.Equal(t, clock.Now().Add(10*time.Second), msgs[0].VT)
	require.Equal(t, clock.Now().Add(-2*time.Second), msgs[0].EnqueuedAt)

	clock.advance(9 * time.Second)
	msgs, err = q.Read(ctx, name, 10, 1)
	require.NoError(t, err)
	require.Empty(t, msgs)
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 11, *m.OldestMsgAgeSec)
	require.Equal(t, int64(0), m.QueueVisibleLength)
	require.Equal(t, clock.Now(), m.ScrapeTime)

	clock.advance(time.Second)
	msgs, err = q.Read(ctx, name, 10, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, 2, msgs[0].ReadCt)
}

// TestIDsArePerQueue: like pgmq's per-table identity columns, every queue
// numbers its messages from 1, so an id means nothing without its queue.
func TestIDsArePerQueue(t *testing.T) {
	t.Parallel()
	ctx, q, a := newQueue(t)
	b := queuetest.NewQueueName()
	require.NoError(t, q.CreateQueue(ctx, b))
	for _, name := range []string{a, b, a} {
		_, err := q.Send(ctx, name, json.RawMessage(`{}`), 0)
		require.NoError(t, err)
	}
	ok, err := q.Delete(ctx, b, 2)
	require.NoError(t, err)
	require.False(t, ok, "message 2 is in the other queue")
	ma, err := q.Metrics(ctx, a)
	require.NoError(t, err)
	mb, err := q.Metrics(ctx, b)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 1}, []int64{ma.TotalMessages, mb.TotalMessages})
}

// TestHeadersAndArchive: headers travel with the message (NULL when none
// were sent), an archived message keeps its read_ct and headers in the
// archive, and callers get copies they may change.
func TestHeadersAndArchive(t *testing.T) {
	t.Parallel()
	ctx, q, name := newQueue(t)
	withHeaders, err := q.SendWithHeaders(ctx, name, json.RawMessage(`{"n":1}`), json.RawMessage(`{"traceparent":"x"}`), 0)
	require.NoError(t, err)
	plain, err := q.Send(ctx, name, json.RawMessage(`{"n":2}`), 0)
	require.NoError(t, err)

	msgs, err := q.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.JSONEq(t, `{"traceparent":"x"}`, string(msgs[0].Headers))
	require.Nil(t, msgs[1].Headers, "no headers sent: NULL")
	msgs[0].Message[2] = 'X' // a caller's change does not reach the queue

	ok, err := q.Archive(ctx, name, withHeaders)
	require.NoError(t, err)
	require.True(t, ok)
	archived, err := q.Archived(name)
	require.NoError(t, err)
	require.Len(t, archived, 1)
	require.Equal(t, withHeaders, archived[0].MsgID)
	require.Equal(t, 1, archived[0].ReadCt)
	require.JSONEq(t, `{"n":1}`, string(archived[0].Message))
	require.JSONEq(t, `{"traceparent":"x"}`, string(archived[0].Headers))

	ok, err = q.Delete(ctx, name, plain)
	require.NoError(t, err)
	require.True(t, ok)
	archived, err = q.Archived(name)
	require.NoError(t, err)
	require.Len(t, archived, 1, "a deleted message is not archived")
}

// TestMissingQueueIsErrQueueNotFound: every operation on a queue that was
// never created wraps the pgmq adapter's sentinel.
func TestMissingQueueIsErrQueueNotFound(t *testing.T) {
	t.Parallel()
	ctx, q := context.Background(), memqueue.New()
	name := queuetest.NewQueueName()
	calls := map[string]func() error{
		"send":     func() error { _, err := q.Send(ctx, name, json.RawMessage(`{}`), 0); return err },
		"read":     func() error { _, err := q.Read(ctx, name, 1, 1); return err },
		"delete":   func() error { _, err := q.Delete(ctx, name, 1); return err },
		"archive":  func() error { _, err := q.Archive(ctx, name, 1); return err },
		"set_vt":   func() error { _, err := q.SetVT(ctx, name, 1, 1); return err },
		"metrics":  func() error { _, err := q.Metrics(ctx, name); return err },
		"archived": func() error { _, err := q.Archived(name); return err },
	}
	for op, call := range calls {
		err := call()
		require.ErrorIs(t, err, pgmq.ErrQueueNotFound, op)
		require.Contains(t, err.Error(), name, op)
	}
}

// TestCancelledContext: an operation on a cancelled context fails with the
// context's error and changes nothing, as a statement would.
func TestCancelledContext(t *testing.T) {
	t.Parallel()
	_, q, name := newQueue(t)
	id, err := q.Send(context.Background(), name, json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"create":  func() error { return q.CreateQueue(ctx, name) },
		"send":    func() error { _, err := q.Send(ctx, name, json.RawMessage(`{}`), 0); return err },
		"read":    func() error { _, err := q.Read(ctx, name, 1, 1); return err },
		"delete":  func() error { _, err := q.Delete(ctx, name, id); return err },
		"archive": func() error { _, err := q.Archive(ctx, name, id); return err },
		"set_vt":  func() error { _, err := q.SetVT(ctx, name, id, 1); return err },
		"metrics": func() error { _, err := q.Metrics(ctx, name); return err },
	}
	for op, call := range calls {
		require.ErrorIs(t, call(), context.Canceled, op)
	}
	m, err := q.Metrics(context.Background(), name)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.QueueVisibleLength)
	require.Equal(t, int64(1), m.TotalMessages)
}

// TestOutOfRangeArguments: what pgmq's integer parameters cannot hold is
// rejected, not wrapped around; bad headers are rejected like bad bodies.
func TestOutOfRangeArguments(t *testing.T) {
	t.Parallel()
	ctx, q, name := newQueue(t)
	_, err := q.Send(ctx, name, json.RawMessage(`{}`), time.Duration(math.MaxInt64))
	require.Error(t, err)
	_, err = q.SendWithHeaders(ctx, name, json.RawMessage(`{}`), json.RawMessage(`{bad`), 0)
	require.Error(t, err)
	_, err = q.Send(ctx, name, nil, 0)
	require.Error(t, err)
	if tooBig := int64(math.MaxInt32) + 1; int64(int(tooBig)) == tooBig { // 64-bit ints
		_, err = q.Read(ctx, name, int(tooBig), 1)
		require.Error(t, err)
		_, err = q.Read(ctx, name, 1, int(tooBig))
		require.Error(t, err)
		_, err = q.SetVT(ctx, name, 1, int(tooBig))
		require.Error(t, err)
	}
	_, err = q.SetVT(ctx, name, 1, -1)
	require.Error(t, err)
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(0), m.TotalMessages, "rejected calls changed nothing")

	id, err := q.Send(ctx, name, json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	msgs, err := q.Read(ctx, name, math.MaxInt32, 1)
	require.NoError(t, err)
	require.Equal(t, id, msgs[0].MsgID, "the longest visibility timeout is accepted")
	for _, bad := range []int64{0, -1, math.MaxInt64} {
		ok, err := q.Delete(ctx, name, bad)
		require.NoError(t, err)
		require.False(t, ok)
	}
}

// TestHeartbeatContract runs the HeartbeatProbe port's contract suite, the
// one the pgmq adapter runs, against one shared fake.
func TestHeartbeatContract(t *testing.T) {
	q := memqueue.New()
	heartbeattest.Run(t, func(*testing.T) heartbeattest.Subject { return q })
}
