package result_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/memnotify"
	"github.com/tasker-systems/tasker-go/internal/memqueue"
	"github.com/tasker-systems/tasker-go/ports"
)

// memQueue is the shared in-memory Queue (internal/memqueue, which passes
// the Queue contract suite) with what these tests need on top: it records
// the deletes and archives the processor asks for, and the messages a batch
// transaction consumed, so the tests can tell who removed a message; it can
// fail reads (readErr) and deletes and archives (opErr: the operation is
// done but its reply is lost), and slow reads down (readDelay) while it
// counts the reads of each queue and how many overlapped.
type memQueue struct {
	*memqueue.Queue
	t *testing.T

	mu       sync.Mutex
	deleted  map[msgRef]bool
	archived map[msgRef]bool
	// consumed are the messages a finalization transaction deleted.
	consumed    map[msgRef]bool
	readErr     error
	opErr       error
	readDelay   time.Duration
	reads       map[string]int
	inFlight    map[string]int
	maxInFlight map[string]int
}

// msgRef names a message: pgmq numbers the messages of each queue from 1.
type msgRef struct {
	queue string
	id    int64
}

// newMemQueue returns a memQueue holding the three orchestration queues.
func newMemQueue(t *testing.T) *memQueue {
	q := &memQueue{Queue: memqueue.New(), t: t, deleted: map[msgRef]bool{}, archived: map[msgRef]bool{},
		consumed: map[msgRef]bool{}, reads: map[string]int{}, inFlight: map[string]int{}, maxInFlight: map[string]int{}}
	for _, name := range []string{domain.QueueStepResults, domain.QueueTaskRequests, domain.QueueTaskFinalizations} {
		require.NoError(t, q.CreateQueue(context.Background(), name))
	}
	return q
}

// consume deletes the messages ids of queue as a batch transaction does
// (through the store, not the Queue port); id 0 is no message.
func (q *memQueue) consume(queue string, ids ...int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		if id == 0 {
			continue
		}
		q.consumed[msgRef{queue, id}] = true
		_, _ = q.Queue.Delete(context.Background(), queue, id)
	}
}

// add sends body to queue and returns the message.
func (q *memQueue) add(queue string, body string) msgRef {
	id, err := q.Send(context.Background(), queue, json.RawMessage(body), 0)
	require.NoError(q.t, err)
	return msgRef{queue, id}
}

func (q *memQueue) Read(ctx context.Context, queue string, vt int, qty int) ([]ports.QueueMessage, error) {
	q.mu.Lock()
	q.reads[queue]++
	q.inFlight[queue]++
	q.maxInFlight[queue] = max(q.maxInFlight[queue], q.inFlight[queue])
	delay := q.readDelay
	q.mu.Unlock()
	time.Sleep(delay)
	q.mu.Lock()
	q.inFlight[queue]--
	err := q.readErr
	q.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return q.Queue.Read(ctx, queue, vt, qty)
}

func (q *memQueue) Delete(ctx context.Context, queue string, id int64) (bool, error) {
	ok, err := q.Queue.Delete(ctx, queue, id)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleted[msgRef{queue, id}] = true
	return ok, errors.Join(err, q.opErr)
}

func (q *memQueue) Archive(ctx context.Context, queue string, id int64) (bool, error) {
	ok, err := q.Queue.Archive(ctx, queue, id)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.archived[msgRef{queue, id}] = true
	return ok, errors.Join(err, q.opErr)
}

// settled reports whether each message was deleted, archived or consumed.
func (q *memQueue) settled(refs ...msgRef) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range refs {
		if !q.deleted[r] && !q.archived[r] && !q.consumed[r] {
			return false
		}
	}
	return true
}

// visible is the number of messages of queue waiting to be read.
func (q *memQueue) visible(queue string) int64 {
	m, err := q.Metrics(context.Background(), queue)
	require.NoError(q.t, err)
	return m.QueueVisibleLength
}

// notifier delivers the given wake-ups once (internal/memnotify, which
// passes the MessageNotifier contract suite); closed ends its stream after
// them (a listener that went away).
func notifier(closed bool, msgs ...ports.MessageReady) *memnotify.Notifier {
	n := memnotify.New(len(msgs))
	for _, m := range msgs {
		n.Notify(m)
	}
	if closed {
		_ = n.Close()
	}
	return n
}

func runProcessor(t *testing.T, p *result.Processor, n ports.MessageNotifier) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx, n) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

func TestRunConsumesAllThreeQueues(t *testing.T) {
	created := uuid.New()
	task, step := uuid.New(), uuid.New()
	f := setup(t, result.Config{PollInterval: 5 * time.Millisecond, BatchSize: 2},
		creator{resp: domain.TaskCreationResponse{TaskUUID: created}},
		ports.StepResultView{TaskUUID: task, StepUUID: step, State: domain.StepComplete})
	q := f.q
	ids := []msgRef{
		q.add(domain.QueueStepResults, string(message(task, step))),
		q.add(domain.QueueStepResults, `"garbage"`),
		q.add(domain.QueueStepResults, `{}`),
		q.add(domain.QueueTaskRequests, `{"request_id":"r1","task_request":{"name":"a","namespace":"b","version":"1"}}`),
		q.add(domain.QueueTaskRequests, `{"request_id":"r2"}`),
		q.add(domain.QueueTaskFinalizations, `{"task_uuid":"`+task.String()+`"}`),
		q.add(domain.QueueTaskFinalizations, `{"task_uuid":"nope"}`),
		q.add(domain.QueueTaskFinalizations, `{"task_uuid":"`+unknownTask.String()+`"}`),
	}
	stop := runProcessor(t, f.p, notifier(false, ports.MessageReady{Queue: domain.QueueStepResults}, ports.MessageReady{Queue: "other_queue"}, ports.MessageReady{PollAll: true}))
	require.Eventually(t, func() bool { return q.settled(ids...) }, 5*time.Second, 5*time.Millisecond)
	stop()
	require.True(t, q.consumed[ids[0]] && !q.deleted[ids[0]], "processed result deleted by its batch transaction only")
	require.True(t, q.archived[ids[1]] && q.archived[ids[2]], "poison results archived")
	require.True(t, q.deleted[ids[3]], "created task request deleted")
	require.True(t, q.archived[ids[4]], "request without task_request archived")
	require.True(t, q.consumed[ids[5]] && !q.deleted[ids[5]], "finalization request deleted by its batch transaction")
	require.True(t, q.archived[ids[6]], "bad finalization request archived")
	require.True(t, q.archived[ids[7]], "finalization request of an unknown task archived")
	require.Equal(t, []uuid.UUID{created}, f.batches.created, "a created task is enqueued at once")
}

func TestTaskRequestDispositions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		archive bool
		deleted bool
	}{
		{"invalid request archived", &domain.ValidationError{Field: "name", Reason: "empty"}, true, false},
		{"invalid template archived", &domain.TemplateValidationError{}, true, false},
		{"unknown template archived", &ports.NotFoundError{What: "x"}, true, false},
		{"transient failure left", errors.New("db down"), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, result.Config{PollInterval: 5 * time.Millisecond}, creator{err: tc.err})
			q := f.q
			id := q.add(domain.QueueTaskRequests, `{"request_id":"r","task_request":{"name":"a","namespace":"b","version":"1"}}`)
			stop := runProcessor(t, f.p, nil)
			require.Eventually(t, func() bool { return q.visible(domain.QueueTaskRequests) == 0 }, 5*time.Second, 5*time.Millisecond)
			stop() // waits for the batch that read the message
			require.Equal(t, tc.archive, q.archived[id])
			require.Equal(t, tc.deleted, q.deleted[id])
			require.Empty(t, f.batches.calls, "nothing created, nothing enqueued")
		})
	}
}

func TestRunSurvivesReadErrorsAndListenFailure(t *testing.T) {
	f := setup(t, result.Config{PollInterval: time.Millisecond}, creator{})
	q := f.q
	q.readErr = errors.New("connection reset")
	q.opErr = errors.New("delete failed")
	stop := runProcessor(t, f.p, notifier(true))
	time.Sleep(20 * time.Millisecond) // several failing polls; the loop keeps running
	q.mu.Lock()
	q.readErr = nil
	q.mu.Unlock()
	id := q.add(domain.QueueTaskFinalizations, `"not json"`)
	require.Eventually(t, func() bool { return q.settled(id) }, 5*time.Second, time.Millisecond)
	stop()
}

// TestStepResultsOfOneReadShareOneBatch: the results of one read, whatever
// their tasks, go to the store as one task batch (one transaction), which
// deletes every message; a failed batch leaves them all.
func TestStepResultsOfOneReadShareOneBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		deleted bool
	}{
		{"processed: every message deleted by the batch", nil, true},
		{"transient failure: every message left", errors.New("db down"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diamond, other := uuid.New(), uuid.New()
			b, c, x := uuid.New(), uuid.New(), uuid.New()
			f := setup(t, result.Config{PollInterval: time.Hour, BatchSize: 10}, creator{},
				ports.StepResultView{TaskUUID: diamond, StepUUID: b, State: domain.StepComplete},
				ports.StepResultView{TaskUUID: diamond, StepUUID: c, State: domain.StepComplete},
				ports.StepResultView{TaskUUID: other, StepUUID: x, State: domain.StepComplete})
			f.batches.err = tc.err
			q := f.q
			ids := []msgRef{
				q.add(domain.QueueStepResults, string(message(diamond, b))),
				q.add(domain.QueueStepResults, string(message(other, x))),
				q.add(domain.QueueStepResults, string(message(diamond, c))),
			}
			stop := runProcessor(t, f.p, nil) // the first drain reads the whole batch
			require.Eventually(t, func() bool {
				f.batches.mu.Lock()
				defer f.batches.mu.Unlock()
				return len(f.batches.calls) == 1
			}, 5*time.Second, time.Millisecond)
			stop()
			got := f.batches.calls[0]
			require.Equal(t, domain.QueueStepResults, got.Queue)
			require.False(t, got.SkipLocked, "result processing waits for its tasks")
			require.Equal(t, []ports.ResultItem{{MsgID: ids[0].id, StepUUID: b}, {MsgID: ids[1].id, StepUUID: x}, {MsgID: ids[2].id, StepUUID: c}}, got.Results)
			for _, id := range ids {
				require.Equal(t, tc.deleted, q.consumed[id], "message %d", id)
				require.False(t, q.deleted[id], "message %d: no delete besides the transaction's", id)
				require.False(t, q.archived[id])
			}
		})
	}
}

// TestBatchesGrowWithTheBacklog: a full read doubles the next one, up to
// MaxBatchSize, so a backlog is processed in few large transactions; a quiet
// queue is read BatchSize at a time.
func TestBatchesGrowWithTheBacklog(t *testing.T) {
	var views []ports.StepResultView
	for range 75 {
		views = append(views, ports.StepResultView{TaskUUID: uuid.New(), StepUUID: uuid.New(), State: domain.StepComplete})
	}
	f := setup(t, result.Config{PollInterval: time.Hour, BatchSize: 5, MaxBatchSize: 40, Concurrency: 1}, creator{}, views...)
	var ids []msgRef
	for _, v := range views {
		ids = append(ids, f.q.add(domain.QueueStepResults, string(message(v.TaskUUID, v.StepUUID))))
	}
	f.process(t, ids...)
	var sizes []int
	for _, c := range f.batches.calls {
		sizes = append(sizes, len(c.Results))
	}
	require.Equal(t, []int{5, 10, 20, 40}, sizes)
}

// TestOnlyOneConsumerPerQueuePolls: of the Concurrency consumers of a queue
// only one reads on the poll tick, so an idle queue costs one read (one
// transaction) per poll interval, not Concurrency; the others read when a
// notification or a full batch wakes them.
func TestOnlyOneConsumerPerQueuePolls(t *testing.T) {
	f := setup(t, result.Config{PollInterval: time.Millisecond, Concurrency: 3}, creator{})
	f.q.readDelay = time.Millisecond
	stop := runProcessor(t, f.p, nil)
	require.Eventually(t, func() bool {
		f.q.mu.Lock()
		defer f.q.mu.Unlock()
		return f.q.reads[domain.QueueStepResults] >= 50
	}, 10*time.Second, time.Millisecond)
	stop()
	f.q.mu.Lock()
	defer f.q.mu.Unlock()
	for _, q := range []string{domain.QueueStepResults, domain.QueueTaskRequests, domain.QueueTaskFinalizations} {
		require.Equal(t, 1, f.q.maxInFlight[q], "idle reads of %s never overlap: one consumer polls", q)
	}
}

// TestFullReadWakesTheOtherConsumers: without notifications, a read that
// comes back full wakes the other consumers, so a backlog is read by
// Concurrency consumers at once, not only by the polling one.
func TestFullReadWakesTheOtherConsumers(t *testing.T) {
	views := make([]ports.StepResultView, 200)
	for i := range views {
		views[i] = ports.StepResultView{TaskUUID: uuid.New(), StepUUID: uuid.New(), State: domain.StepComplete}
	}
	f := setup(t, result.Config{PollInterval: time.Hour, BatchSize: 1, MaxBatchSize: 1, Concurrency: 2}, creator{}, views...)
	var ids []msgRef
	for _, v := range views {
		ids = append(ids, f.q.add(domain.QueueStepResults, string(message(v.TaskUUID, v.StepUUID))))
	}
	f.q.readDelay = time.Millisecond
	f.process(t, ids...)
	f.q.mu.Lock()
	defer f.q.mu.Unlock()
	require.Equal(t, 2, f.q.maxInFlight[domain.QueueStepResults], "the second consumer joined the first on the backlog")
}

// deadLetters records the poison messages handed to the DLQ.
type deadLetters struct {
	mu   sync.Mutex
	msgs []ports.PoisonMessage
}

func (d *deadLetters) RecordPoison(_ context.Context, m ports.PoisonMessage) (domain.DLQEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, m)
	return domain.DLQEntry{EntryUUID: uuid.New()}, nil
}

// failedReads reads every visible message of queue n times with a zero
// visibility timeout, as n earlier consumers that took each message and
// failed before deleting it: like pgmq, every read increments read_ct and
// leaves the message to be read again.
func (q *memQueue) failedReads(queue string, n int) {
	for range n {
		_, err := q.Queue.Read(context.Background(), queue, 0, 100)
		require.NoError(q.t, err)
	}
}

// TestReceiveLimitOnEveryQueue: on each of the three queues the
// orchestration consumes, a message read more than pgmq.max_receive_count
// times (every earlier attempt failed) is archived and dead-lettered without
// being handled; a message read exactly max_receive_count times is handled.
func TestReceiveLimitOnEveryQueue(t *testing.T) {
	task, step := uuid.New(), uuid.New()
	q := newMemQueue(t)
	b := newBatches(ports.StepResultView{TaskUUID: task, StepUUID: step, State: domain.StepComplete})
	b.q = q
	dl := &deadLetters{}
	p := result.New(result.Config{PollInterval: 5 * time.Millisecond, MaxReceiveCount: 3},
		result.Deps{Queue: q, Batches: b, Creator: creator{resp: domain.TaskCreationResponse{TaskUUID: uuid.New()}}, DeadLetters: dl})
	bodies := map[string]string{
		domain.QueueStepResults:       string(message(task, step)),
		domain.QueueTaskRequests:      `{"request_id":"r1","task_request":{"name":"a","namespace":"b","version":"1"}}`,
		domain.QueueTaskFinalizations: `{"task_uuid":"` + task.String() + `"}`,
	}
	// The processor's own read is the 4th of over and the 3rd of atLimit.
	over, atLimit := map[string]msgRef{}, map[string]msgRef{}
	for queue, body := range bodies {
		over[queue] = q.add(queue, body)
		q.failedReads(queue, 1)
		atLimit[queue] = q.add(queue, body)
		q.failedReads(queue, 2)
	}
	var refs []msgRef
	for queue := range bodies {
		refs = append(refs, over[queue], atLimit[queue])
	}
	stop := runProcessor(t, p, nil)
	require.Eventually(t, func() bool { return q.settled(refs...) }, 5*time.Second, 5*time.Millisecond)
	stop()
	dl.mu.Lock()
	defer dl.mu.Unlock()
	require.Len(t, dl.msgs, 3, "one DLQ entry per queue")
	q.mu.Lock()
	defer q.mu.Unlock()
	for queue := range bodies {
		require.True(t, q.archived[over[queue]], "%s: read 4 times > 3: archived", queue)
		require.False(t, q.archived[atLimit[queue]], "%s: read 3 times: handled", queue)
		require.True(t, q.deleted[atLimit[queue]] || q.consumed[atLimit[queue]], "%s: read 3 times: handled", queue)
		archived, err := q.Archived(queue)
		require.NoError(t, err)
		require.Len(t, archived, 1, "%s: only the message over the limit is in the archive", queue)
		require.Equal(t, over[queue].id, archived[0].MsgID)
		require.Equal(t, 4, archived[0].ReadCt)
		found := false
		for _, m := range dl.msgs {
			if m.Queue == queue && m.MsgID == over[queue].id {
				found = true
				require.Equal(t, 4, m.ReadCt)
				require.Contains(t, m.Detail, "max_receive_count (3)")
				require.JSONEq(t, bodies[queue], string(m.Message))
			}
		}
		require.True(t, found, "%s: dead-lettered", queue)
	}
}
