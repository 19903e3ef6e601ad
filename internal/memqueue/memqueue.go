// Package memqueue is an in-memory ports.Queue with pgmq's semantics, for
// tests of the services that consume queues. It runs the Queue port's
// contract suite (adapters/pgmq/queuetest) like the pgmq adapter does, so a
// test that passes against it does not rely on behaviour pgmq lacks: msg_ids
// increase per queue, a read hides its messages for the visibility timeout
// and a later read redelivers them with read_ct incremented, a delayed send
// stays invisible for the delay, delete/archive/set_vt report whether the
// message existed, and invalid names and missing queues are errors.
//
// Queue names are checked by pgmq.ValidateQueueName and a missing queue
// wraps pgmq.ErrQueueNotFound, the adapter's own rule and sentinel, so
// callers branch on the same error whichever implementation they run on.
//
// It also implements ports.HeartbeatProbe over the same messages, checked
// by that port's contract suite (adapters/pgmq/heartbeattest).
//
// What it does not model: transactions (the stores send and delete inside
// theirs; a test fakes those itself), notifications, and jsonb's
// normalisation of the body (it is stored as sent, so compare bodies as JSON).
package memqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/ports"
)

// Queue is an in-memory ports.Queue holding any number of named queues. It
// is safe for concurrent use: every operation is atomic, so concurrent
// readers never receive the same message (pgmq's FOR UPDATE SKIP LOCKED).
type Queue struct {
	clock ports.Clock

	mu     sync.Mutex
	queues map[string]*queue
}

// queue is one pgmq queue: q_<name> and a_<name>.
type queue struct {
	lastID   int64                // the msg_id sequence: every message ever sent
	msgs     []ports.QueueMessage // q_<name>, in msg_id order
	archived []ports.QueueMessage // a_<name>, in archiving order
}

var (
	_ ports.Queue          = (*Queue)(nil)
	_ ports.HeartbeatProbe = (*Queue)(nil)
)

// Option configures a Queue.
type Option func(*Queue)

// WithClock makes the Queue read the time from c instead of the system
// clock, so a test can expire visibility timeouts and delays by moving its
// clock instead of waiting. Only c.Now is used.
func WithClock(c ports.Clock) Option {
	return func(q *Queue) {
		if c != nil {
			q.clock = c
		}
	}
}

// New returns an empty Queue (no queues exist until CreateQueue).
func New(opts ...Option) *Queue {
	q := &Queue{clock: ports.SystemClock{}, queues: map[string]*queue{}}
	for _, o := range opts {
		o(q)
	}
	return q
}

// now is the current time as Postgres stores a timestamptz: UTC, to the
// microsecond, without a monotonic reading (so stored times compare equal
// however they were obtained).
func (q *Queue) now() time.Time {
	return q.clock.Now().UTC().Truncate(time.Microsecond)
}

// CreateQueue creates the queue; an existing queue keeps its messages.
func (q *Queue) CreateQueue(ctx context.Context, name string) error {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return err
	}
	if err := ctxErr(ctx); err != nil {
		return wrap("create queue", name, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queues[name] == nil {
		q.queues[name] = &queue{}
	}
	return nil
}

// Send enqueues msg, visible after delay rounded up to whole seconds (pgmq
// delays are integer seconds, and a message must never be visible early).
func (q *Queue) Send(ctx context.Context, name string, msg json.RawMessage, delay time.Duration) (int64, error) {
	return q.SendWithHeaders(ctx, name, msg, nil, delay)
}

// SendWithHeaders is Send with pgmq's headers column (the stores send W3C
// trace context there; ports.Queue.Send sends none). Nil headers are NULL.
func (q *Queue) SendWithHeaders(ctx context.Context, name string, msg, headers json.RawMessage, delay time.Duration) (int64, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return 0, err
	}
	if !json.Valid(msg) {
		return 0, fmt.Errorf("memqueue send to %q: message is not valid JSON", name)
	}
	if headers != nil && !json.Valid(headers) {
		return 0, fmt.Errorf("memqueue send to %q: headers are not valid JSON", name)
	}
	if delay < 0 {
		return 0, fmt.Errorf("memqueue send to %q: delay must not be negative, got %s", name, delay)
	}
	secs := math.Ceil(delay.Seconds())
	if secs > math.MaxInt32 {
		return 0, fmt.Errorf("memqueue send to %q: delay %s is too long", name, delay)
	}
	qu, unlock, err := q.lockQueue(ctx, "send to", name)
	if err != nil {
		return 0, err
	}
	defer unlock()
	now := q.now()
	qu.lastID++
	qu.msgs = append(qu.msgs, ports.QueueMessage{MsgID: qu.lastID, EnqueuedAt: now,
		VT: now.Add(time.Duration(secs) * time.Second), Message: bytes.Clone(msg), Headers: bytes.Clone(headers)})
	return qu.lastID, nil
}

// Read takes up to qty messages whose visibility timeout has passed, oldest
// msg_id first, hides them for vtSeconds and increments their read_ct.
func (q *Queue) Read(ctx context.Context, name string, vtSeconds int, qty int) ([]ports.QueueMessage, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return nil, err
	}
	if qty < 1 || qty > math.MaxInt32 {
		return nil, fmt.Errorf("memqueue read %q: qty must be between 1 and %d, got %d", name, math.MaxInt32, qty)
	}
	if err := checkVT("read", name, vtSeconds); err != nil {
		return nil, err
	}
	qu, unlock, err := q.lockQueue(ctx, "read", name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := q.now()
	var out []ports.QueueMessage
	for i := range qu.msgs {
		if len(out) == qty {
			break
		}
		m := &qu.msgs[i]
		if m.VT.After(now) {
			continue
		}
		m.VT = now.Add(time.Duration(vtSeconds) * time.Second)
		m.ReadCt++
		out = append(out, clone(*m))
	}
	return out, nil
}

// Delete removes a message; false when it is not in the queue.
func (q *Queue) Delete(ctx context.Context, name string, msgID int64) (bool, error) {
	return q.remove(ctx, "delete from", name, msgID, false)
}

// Archive moves a message to the queue's archive (see Archived) in one step,
// so it is never in both or in neither; false when it is not in the queue.
func (q *Queue) Archive(ctx context.Context, name string, msgID int64) (bool, error) {
	return q.remove(ctx, "archive in", name, msgID, true)
}

// remove takes a message out of the queue, into its archive when archive is set.
func (q *Queue) remove(ctx context.Context, op, name string, msgID int64, archive bool) (bool, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return false, err
	}
	qu, unlock, err := q.lockQueue(ctx, op, name)
	if err != nil {
		return false, err
	}
	defer unlock()
	i, ok := qu.find(msgID)
	if !ok {
		return false, nil
	}
	if archive {
		qu.archived = append(qu.archived, qu.msgs[i])
	}
	qu.msgs = slices.Delete(qu.msgs, i, i+1)
	return true, nil
}

// SetVT makes the message invisible for vtSeconds from now (0: visible at
// once), whether or not it is hidden; false when it is not in the queue.
func (q *Queue) SetVT(ctx context.Context, name string, msgID int64, vtSeconds int) (bool, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return false, err
	}
	if err := checkVT("set_vt", name, vtSeconds); err != nil {
		return false, err
	}
	qu, unlock, err := q.lockQueue(ctx, "set_vt in", name)
	if err != nil {
		return false, err
	}
	defer unlock()
	i, ok := qu.find(msgID)
	if !ok {
		return false, nil
	}
	qu.msgs[i].VT = q.now().Add(time.Duration(vtSeconds) * time.Second)
	return true, nil
}

// Metrics reports the queue as pgmq.metrics does: ages in whole seconds
// (rounded) and nil for an empty queue, TotalMessages counting every message
// ever sent (the msg_id sequence), the visible length counting messages
// whose visibility timeout has passed.
func (q *Queue) Metrics(ctx context.Context, name string) (ports.QueueMetrics, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return ports.QueueMetrics{}, err
	}
	qu, unlock, err := q.lockQueue(ctx, "metrics of", name)
	if err != nil {
		return ports.QueueMetrics{}, err
	}
	defer unlock()
	now := q.now()
	m := ports.QueueMetrics{QueueName: name, QueueLength: int64(len(qu.msgs)), TotalMessages: qu.lastID, ScrapeTime: now}
	if len(qu.msgs) == 0 {
		return m, nil
	}
	oldest, newest := qu.msgs[0].EnqueuedAt, qu.msgs[0].EnqueuedAt
	for _, msg := range qu.msgs {
		if msg.EnqueuedAt.Before(oldest) {
			oldest = msg.EnqueuedAt
		}
		if msg.EnqueuedAt.After(newest) {
			newest = msg.EnqueuedAt
		}
		if !msg.VT.After(now) {
			m.QueueVisibleLength++
		}
	}
	m.OldestMsgAgeSec, m.NewestMsgAgeSec = ageSec(now, oldest), ageSec(now, newest)
	return m, nil
}

// OtherHolder reports whether the queue holds a message other than msgID
// whose step_uuid is stepUUID and whose visibility timeout has not passed
// (ports.HeartbeatProbe), as the pgmq adapter's query does: a delayed
// message counts as invisible, and step_uuid is compared as the text
// message->>'step_uuid' yields (a JSON null or a missing key never matches).
func (q *Queue) OtherHolder(ctx context.Context, name string, msgID int64, stepUUID string) (bool, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return false, err
	}
	qu, unlock, err := q.lockQueue(ctx, "probe holders of", name)
	if err != nil {
		return false, err
	}
	defer unlock()
	now := q.now()
	for _, m := range qu.msgs {
		if m.MsgID == msgID || !m.VT.After(now) {
			continue
		}
		if step, ok := textField(m.Message, "step_uuid"); ok && step == stepUUID {
			return true, nil
		}
	}
	return false, nil
}

// textField is jsonb's doc->>key for a JSON object: a string's value, any
// other value's JSON text; false when doc is no object, lacks key, or holds
// null there (SQL NULL, which equals nothing).
func textField(doc json.RawMessage, key string) (string, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(doc, &obj) != nil {
		return "", false
	}
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	return string(raw), true
}

// Archived returns the messages archived in the queue (pgmq's a_<queue>),
// in the order they were archived.
func (q *Queue) Archived(name string) ([]ports.QueueMessage, error) {
	if err := pgmq.ValidateQueueName(name); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	qu, err := q.queue("archived of", name)
	if err != nil {
		return nil, err
	}
	out := make([]ports.QueueMessage, len(qu.archived))
	for i, m := range qu.archived {
		out[i] = clone(m)
	}
	return out, nil
}

// lockQueue is the common start of an operation on one queue, after the
// caller's own argument checks: a cancelled ctx fails it as a statement on
// it would, then q.mu is taken and the queue looked up. On success the
// caller must call unlock; on error q.mu is not held.
func (q *Queue) lockQueue(ctx context.Context, op, name string) (qu *queue, unlock func(), err error) {
	if err := ctxErr(ctx); err != nil {
		return nil, nil, wrap(op, name, err)
	}
	q.mu.Lock()
	qu, err = q.queue(op, name)
	if err != nil {
		q.mu.Unlock()
		return nil, nil, err
	}
	return qu, q.mu.Unlock, nil
}

// queue returns the named queue, or an error wrapping pgmq.ErrQueueNotFound.
// The caller holds q.mu.
func (q *Queue) queue(op, name string) (*queue, error) {
	qu := q.queues[name]
	if qu == nil {
		return nil, wrap(op, name, pgmq.ErrQueueNotFound)
	}
	return qu, nil
}

// find returns the index of msgID in qu.msgs (kept in msg_id order).
func (qu *queue) find(msgID int64) (int, bool) {
	return slices.BinarySearchFunc(qu.msgs, msgID, func(m ports.QueueMessage, id int64) int {
		switch {
		case m.MsgID < id:
			return -1
		case m.MsgID > id:
			return 1
		}
		return 0
	})
}

// checkVT rejects what pgmq's integer vt parameter cannot hold.
func checkVT(op, name string, vtSeconds int) error {
	if vtSeconds < 0 || vtSeconds > math.MaxInt32 {
		return fmt.Errorf("memqueue %s %q: visibility timeout must be between 0 and %d seconds, got %d",
			op, name, math.MaxInt32, vtSeconds)
	}
	return nil
}

// ctxErr is ctx.Err, tolerating a nil ctx: an operation on a cancelled
// context fails as a statement on it would.
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}

func wrap(op, name string, err error) error {
	return fmt.Errorf("memqueue %s %q: %w", op, name, err)
}

// clone copies m's bodies, so callers cannot change a stored message.
func clone(m ports.QueueMessage) ports.QueueMessage {
	m.Message = bytes.Clone(m.Message)
	m.Headers = bytes.Clone(m.Headers)
	return m
}

func ageSec(now, t time.Time) *int {
	s := int(math.Round(now.Sub(t).Seconds()))
	return &s
}
