// Package queuetest is the contract-test suite of the Queue port (contract §4.2).
// Every implementation runs it, so an in-memory fake cannot drift from pgmq:
//
//	func TestQueueContract(t *testing.T) {
//		db := testdb.New(t)
//		queuetest.Run(t, func(t *testing.T) ports.Queue { return pgmq.New(db) })
//	}
//
// Subtests run in parallel, each on its own queue, so the factory may return the
// same implementation every time. Waiting for a visibility timeout is polled with
// require.Eventually, never slept for a fixed time.
package queuetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/ports"
)

// Factory returns the Queue under test for one subtest.
type Factory func(t *testing.T) ports.Queue

var seq atomic.Int64

// NewQueueName returns a queue name unused by any other subtest of this process.
func NewQueueName() string {
	return fmt.Sprintf("qt_%d_%d_queue", time.Now().UnixNano()%1_000_000, seq.Add(1))
}

// setup creates a fresh queue and returns it with the Queue under test.
func setup(t *testing.T, f Factory) (context.Context, ports.Queue, string) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	q := f(t)
	name := NewQueueName()
	require.NoError(t, q.CreateQueue(ctx, name))
	return ctx, q, name
}

func send(t *testing.T, ctx context.Context, q ports.Queue, queue, doc string) int64 {
	t.Helper()
	id, err := q.Send(ctx, queue, json.RawMessage(doc), 0)
	require.NoError(t, err)
	require.Positive(t, id)
	return id
}

func ids(msgs []ports.QueueMessage) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.MsgID
	}
	return out
}

// Run runs the whole suite against the implementation f returns.
func Run(t *testing.T, f Factory) {
	t.Run("CreateQueueIsIdempotent", func(t *testing.T) { testCreateIdempotent(t, f) })
	t.Run("InvalidQueueNamesAreRejected", func(t *testing.T) { testInvalidNames(t, f) })
	t.Run("ReadHidesForVTThenRedelivers", func(t *testing.T) { testReadHidesUntilVT(t, f) })
	t.Run("SendWithDelay", func(t *testing.T) { testSendWithDelay(t, f) })
	t.Run("ReadHonoursBatchSizeAndOrder", func(t *testing.T) { testReadBatch(t, f) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, f) })
	t.Run("Archive", func(t *testing.T) { testArchive(t, f) })
	t.Run("SetVT", func(t *testing.T) { testSetVT(t, f) })
	t.Run("EveryReadCountsInReadCt", func(t *testing.T) { testReadCt(t, f) })
	t.Run("Metrics", func(t *testing.T) { testMetrics(t, f) })
	t.Run("ConcurrentReadersNeverShareAMessage", func(t *testing.T) { testConcurrentReaders(t, f) })
	t.Run("BadArguments", func(t *testing.T) { testBadArguments(t, f) })
	t.Run("MissingQueue", func(t *testing.T) { testMissingQueue(t, f) })
}

func testCreateIdempotent(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	id := send(t, ctx, q, name, `{"n":1}`)
	require.NoError(t, q.CreateQueue(ctx, name), "second create")
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, name, m.QueueName)
	require.Equal(t, int64(1), m.QueueLength, "re-creating keeps messages")
	msgs, err := q.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{id}, ids(msgs))
}

func testInvalidNames(t *testing.T, f Factory) {
	t.Parallel()
	ctx := context.Background()
	q := f(t)
	for _, bad := range []string{"", "Upper_queue", "dash-queue", "x; drop table pgmq.meta", "sp ace", "a234567890123456789012345678901234567890123456789"} {
		require.Error(t, q.CreateQueue(ctx, bad), "create %q", bad)
		_, err := q.Send(ctx, bad, json.RawMessage(`{}`), 0)
		require.Error(t, err, "send %q", bad)
		_, err = q.Read(ctx, bad, 1, 1)
		require.Error(t, err, "read %q", bad)
		_, err = q.Delete(ctx, bad, 1)
		require.Error(t, err, "delete %q", bad)
		_, err = q.Archive(ctx, bad, 1)
		require.Error(t, err, "archive %q", bad)
		_, err = q.SetVT(ctx, bad, 1, 1)
		require.Error(t, err, "set_vt %q", bad)
		_, err = q.Metrics(ctx, bad)
		require.Error(t, err, "metrics %q", bad)
	}
}

func testReadHidesUntilVT(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	id := send(t, ctx, q, name, `{"task_uuid":"a","step_uuid":"b"}`)

	msgs, err := q.Read(ctx, name, 1, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	first := msgs[0]
	require.Equal(t, id, first.MsgID)
	require.Equal(t, 1, first.ReadCt)
	require.JSONEq(t, `{"task_uuid":"a","step_uuid":"b"}`, string(first.Message))
	require.True(t, first.VT.After(first.EnqueuedAt), "vt %s after enqueued_at %s", first.VT, first.EnqueuedAt)

	again, err := q.Read(ctx, name, 1, 10)
	require.NoError(t, err)
	require.Empty(t, again, "hidden while vt runs")

	var redelivered ports.QueueMessage
	require.Eventually(t, func() bool {
		msgs, err := q.Read(ctx, name, 30, 10)
		require.NoError(t, err)
		if len(msgs) == 0 {
			return false
		}
		redelivered = msgs[0]
		return true
	}, 10*time.Second, 50*time.Millisecond, "message reappears after vt")
	require.Equal(t, id, redelivered.MsgID)
	require.Equal(t, 2, redelivered.ReadCt)
	require.Equal(t, first.EnqueuedAt, redelivered.EnqueuedAt)
	require.True(t, time.Until(redelivered.VT) > 20*time.Second, "new vt = now + 30 s")
}

func testSendWithDelay(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	sent := time.Now()
	id, err := q.Send(ctx, name, json.RawMessage(`{"delayed":true}`), time.Second)
	require.NoError(t, err)
	msgs, err := q.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Empty(t, msgs, "invisible during the delay")
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(1), m.QueueLength)
	require.Equal(t, int64(0), m.QueueVisibleLength)

	require.Eventually(t, func() bool {
		msgs, err = q.Read(ctx, name, 30, 10)
		require.NoError(t, err)
		return len(msgs) == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, id, msgs[0].MsgID)
	require.Equal(t, 1, msgs[0].ReadCt)
	require.GreaterOrEqual(t, time.Since(sent), 900*time.Millisecond, "not delivered early")
}

func testReadBatch(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	var sent []int64
	for i := range 5 {
		sent = append(sent, send(t, ctx, q, name, fmt.Sprintf(`{"i":%d}`, i)))
	}
	first, err := q.Read(ctx, name, 30, 2)
	require.NoError(t, err)
	require.Equal(t, sent[:2], ids(first), "oldest first, at most qty")
	rest, err := q.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Equal(t, sent[2:], ids(rest))
	for i, m := range rest {
		require.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i+2), string(m.Message))
	}
	none, err := q.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Empty(t, none)
}

func testDelete(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	id := send(t, ctx, q, name, `{}`)
	keep := send(t, ctx, q, name, `{}`)
	ok, err := q.Delete(ctx, name, id)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = q.Delete(ctx, name, id)
	require.NoError(t, err)
	require.False(t, ok, "already deleted")
	msgs, err := q.Read(ctx, name, 30, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{keep}, ids(msgs))
}

func testArchive(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	id := send(t, ctx, q, name, `{"poison":true}`)
	ok, err := q.Archive(ctx, name, id)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = q.Archive(ctx, name, id)
	require.NoError(t, err)
	require.False(t, ok, "no longer in the queue")
	ok, err = q.Delete(ctx, name, id)
	require.NoError(t, err)
	require.False(t, ok)
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(0), m.QueueLength)
}

func testSetVT(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	id := send(t, ctx, q, name, `{}`)

	// Shorten: a hidden message made visible at once.
	msgs, err := q.Read(ctx, name, 60, 1)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	ok, err := q.SetVT(ctx, name, id, 0)
	require.NoError(t, err)
	require.True(t, ok)
	msgs, err = q.Read(ctx, name, 0, 1)
	require.NoError(t, err)
	require.Equal(t, []int64{id}, ids(msgs))
	require.Equal(t, 2, msgs[0].ReadCt)

	// Extend: read with vt 0 leaves it visible; set_vt hides it again.
	ok, err = q.SetVT(ctx, name, id, 60)
	require.NoError(t, err)
	require.True(t, ok)
	msgs, err = q.Read(ctx, name, 30, 1)
	require.NoError(t, err)
	require.Empty(t, msgs, "set_vt extended invisibility")

	ok, err = q.SetVT(ctx, name, id+1000, 10)
	require.NoError(t, err)
	require.False(t, ok, "unknown message")
}

// testReadCt pins what the consumers' receive limit counts on: every read
// that returns a message increments its read_ct, a read with vt 0 leaves it
// visible for the next one, and set_vt does not count as a read.
func testReadCt(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	first := send(t, ctx, q, name, `{}`)
	for want := 1; want <= 3; want++ {
		msgs, err := q.Read(ctx, name, 0, 10)
		require.NoError(t, err)
		require.Equal(t, []int64{first}, ids(msgs))
		require.Equal(t, want, msgs[0].ReadCt)
	}
	second := send(t, ctx, q, name, `{}`)
	ok, err := q.SetVT(ctx, name, first, 0)
	require.NoError(t, err)
	require.True(t, ok)
	msgs, err := q.Read(ctx, name, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []int64{first, second}, ids(msgs))
	require.Equal(t, []int{4, 1}, []int{msgs[0].ReadCt, msgs[1].ReadCt}, "each message counts its own reads")
}

func testMetrics(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	empty, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(0), empty.QueueLength)
	require.Nil(t, empty.NewestMsgAgeSec)
	require.Nil(t, empty.OldestMsgAgeSec)
	require.WithinDuration(t, time.Now(), empty.ScrapeTime, time.Minute)

	a := send(t, ctx, q, name, `{}`)
	send(t, ctx, q, name, `{}`)
	_, err = q.Send(ctx, name, json.RawMessage(`{}`), time.Hour)
	require.NoError(t, err)
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(3), m.QueueLength)
	require.Equal(t, int64(2), m.QueueVisibleLength)
	require.Equal(t, int64(3), m.TotalMessages)
	require.NotNil(t, m.NewestMsgAgeSec)
	require.NotNil(t, m.OldestMsgAgeSec)
	require.GreaterOrEqual(t, *m.OldestMsgAgeSec, *m.NewestMsgAgeSec)
	require.GreaterOrEqual(t, *m.NewestMsgAgeSec, 0)

	_, err = q.Read(ctx, name, 60, 1)
	require.NoError(t, err)
	ok, err := q.Delete(ctx, name, a)
	require.NoError(t, err)
	require.True(t, ok)
	m, err = q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(2), m.QueueLength)
	require.Equal(t, int64(1), m.QueueVisibleLength)
	require.Equal(t, int64(3), m.TotalMessages, "total counts every message ever sent")
}

func testConcurrentReaders(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	const messages, readers = 120, 4
	for i := range messages {
		send(t, ctx, q, name, fmt.Sprintf(`{"i":%d}`, i))
	}
	var (
		mu   sync.Mutex
		got  []int64
		wg   sync.WaitGroup
		errs = make(chan error, readers)
	)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msgs, err := q.Read(ctx, name, 60, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(msgs) == 0 {
					return
				}
				mu.Lock()
				got = append(got, ids(msgs)...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i := 1; i < len(got); i++ {
		require.NotEqual(t, got[i-1], got[i], "message %d delivered twice", got[i])
	}
	require.Len(t, got, messages, "every message delivered once")
}

func testBadArguments(t *testing.T, f Factory) {
	ctx, q, name := setup(t, f)
	_, err := q.Send(ctx, name, json.RawMessage(`{not json`), 0)
	require.Error(t, err)
	_, err = q.Send(ctx, name, json.RawMessage(`{}`), -time.Second)
	require.Error(t, err)
	_, err = q.Read(ctx, name, 30, 0)
	require.Error(t, err)
	_, err = q.Read(ctx, name, -1, 1)
	require.Error(t, err)
	m, err := q.Metrics(ctx, name)
	require.NoError(t, err)
	require.Equal(t, int64(0), m.TotalMessages, "rejected calls changed nothing")
}

func testMissingQueue(t *testing.T, f Factory) {
	t.Parallel()
	ctx := context.Background()
	q := f(t)
	missing := NewQueueName()
	_, err := q.Send(ctx, missing, json.RawMessage(`{}`), 0)
	require.Error(t, err)
	_, err = q.Read(ctx, missing, 1, 1)
	require.Error(t, err)
	_, err = q.Metrics(ctx, missing)
	require.Error(t, err)
}
