// Package pgmq implements the Queue port (contract §4) over the pgmq 1.5 SQL
// functions, with sqlx and lib/pq. It behaves the same on the real pgmq extension
// and on the project's own pgmq SQL (adapters/postgres/migrations), because it only
// calls the public pgmq functions, every parameter explicitly cast (the functions
// are overloaded, so uncast parameters would be ambiguous).
//
// A Client wraps any sqlx.ExtContext: a *sqlx.DB for autocommit operations (reads,
// the worker's visibility heartbeats) or a *sqlx.Tx when a send or delete must
// commit or roll back together with business writes (contract §9.3, §10.2):
//
//	tx, _ := db.BeginTxx(ctx, nil)
//	// ... persist the step outcome ...
//	_, err := pgmq.New(tx).Send(ctx, domain.QueueStepResults, msg, 0)
//	ok, err := pgmq.New(tx).Delete(ctx, queue, msgID)
//	err = tx.Commit()
package pgmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/ports"
)

// Client calls the pgmq functions through q. Creating one per transaction is
// cheap. A Client on a *sqlx.DB also prepares its hot-path read on first use
// (see preparedRead).
type Client struct {
	q sqlx.ExtContext

	readMu   sync.Mutex
	readStmt *sqlx.Stmt
}

var _ ports.Queue = (*Client)(nil)

// New returns a Client that runs its statements on q (a *sqlx.DB, *sqlx.Conn or *sqlx.Tx).
func New(q sqlx.ExtContext) *Client { return &Client{q: q} }

// MaxReadMessageBytes bounds the message body a read brings into the
// process. A larger body is replaced in SQL by the stub
// {"oversized_message_bytes": N}, which every consumer treats as an
// unparseable (poison) message, so a 20 MB message costs the service a few
// bytes instead of 20 MB of RSS per read (issue 13). 4 MiB admits the
// largest valid message: a task request with a 1 MiB context.
const MaxReadMessageBytes = 4 << 20

// OversizedKey is the key of the stub that replaces an oversized message.
const OversizedKey = "oversized_message_bytes"

var readSQL = `SELECT msg_id, read_ct, enqueued_at, vt,
		CASE WHEN octet_length(message::text) > ` + strconv.Itoa(MaxReadMessageBytes) + `
			THEN jsonb_build_object('` + OversizedKey + `', octet_length(message::text)) ELSE message END AS message,
		headers
		FROM pgmq.read($1::text, $2::integer, $3::integer) ORDER BY msg_id`

// pooledReadSQL is readSQL for a read that is a transaction of its own (the
// Client runs on a pool): it also sets synchronous_commit off for that
// transaction, so the read's commit does not wait for a WAL flush. A read
// only moves its messages' vt and read_ct. Should the server crash before
// the WAL writer flushes that commit (within 3 × wal_writer_delay), the
// messages come back visible with their old read_ct, as if the read had
// never happened: a redelivery, which at-least-once delivery allows.
// Whatever the reader then makes durable (a claim, an outcome, a result
// batch) commits synchronously, and that flush covers the read's earlier WAL
// too. Every step's message is read twice end to end (by a worker, and its
// completion by the orchestration), so this takes two of its five waits for
// a disk flush off the step's path. A Client on a *sqlx.Tx keeps readSQL: it
// must not change the commit of its caller's transaction.
var pooledReadSQL = `SELECT r.msg_id, r.read_ct, r.enqueued_at, r.vt,
		CASE WHEN octet_length(r.message::text) > ` + strconv.Itoa(MaxReadMessageBytes) + `
			THEN jsonb_build_object('` + OversizedKey + `', octet_length(r.message::text)) ELSE r.message END AS message,
		r.headers
		FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit,
		     pgmq.read($1::text, $2::integer, $3::integer) AS r ORDER BY r.msg_id`

// preparedRead returns pooledReadSQL prepared on the pool when the Client
// runs on a *sqlx.DB, else nil. Intake reads on every notification, and lib/pq
// sends an unprepared parameterised query in two round trips (parse, then
// bind/execute) where a prepared one takes one. A failed preparation is
// not kept, so the next read retries it; the caller then uses the plain query.
func (c *Client) preparedRead(ctx context.Context) *sqlx.Stmt {
	db, ok := c.q.(*sqlx.DB)
	if !ok {
		return nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.readStmt == nil {
		if st, err := db.PreparexContext(context.WithoutCancel(ctx), pooledReadSQL); err == nil {
			c.readStmt = st
		}
	}
	return c.readStmt
}

// ErrQueueNotFound reports an operation on a queue whose tables do not exist.
// Callers creating queues lazily (the orchestration's {ns}_queue) branch on it.
var ErrQueueNotFound = errors.New("queue does not exist")

// CreateQueue creates the queue with pgmq.create (idempotent), then makes sure the
// headers column exists on q_/a_ and the message-ready trigger is attached (D-h),
// so queues made by older clients or before the migration get both too.
func (c *Client) CreateQueue(ctx context.Context, queue string) error {
	if err := ValidateQueueName(queue); err != nil {
		return err
	}
	if _, err := c.q.ExecContext(ctx, `SELECT pgmq.create($1::text)`, queue); err != nil {
		return wrap("create queue", queue, err)
	}
	return c.EnsureNotifications(ctx, queue)
}

// Send enqueues msg (a JSON document) on queue, visible after delay, and returns its
// msg_id. pgmq delays are whole seconds: a fractional delay is rounded up so a
// message is never visible early.
func (c *Client) Send(ctx context.Context, queue string, msg json.RawMessage, delay time.Duration) (int64, error) {
	if err := ValidateQueueName(queue); err != nil {
		return 0, err
	}
	if !json.Valid(msg) {
		return 0, fmt.Errorf("pgmq send to %q: message is not valid JSON", queue)
	}
	secs, err := delaySeconds(delay)
	if err != nil {
		return 0, fmt.Errorf("pgmq send to %q: %w", queue, err)
	}
	var id int64
	if err := c.q.QueryRowxContext(ctx, `SELECT pgmq.send($1::text, $2::jsonb, $3::integer)`,
		queue, string(msg), secs).Scan(&id); err != nil {
		return 0, wrap("send to", queue, err)
	}
	return id, nil
}

// SendBatch enqueues msgs in order in one statement and returns their msg_ids in
// the same order.
func (c *Client) SendBatch(ctx context.Context, queue string, msgs []json.RawMessage, delay time.Duration) ([]int64, error) {
	if err := ValidateQueueName(queue); err != nil {
		return nil, err
	}
	docs := make([]string, len(msgs))
	for i, m := range msgs {
		if !json.Valid(m) {
			return nil, fmt.Errorf("pgmq send batch to %q: message %d is not valid JSON", queue, i)
		}
		docs[i] = string(m)
	}
	secs, err := delaySeconds(delay)
	if err != nil {
		return nil, fmt.Errorf("pgmq send batch to %q: %w", queue, err)
	}
	var ids []int64
	if err := sqlx.SelectContext(ctx, c.q, &ids, `SELECT * FROM pgmq.send_batch($1::text, $2::jsonb[], $3::integer)`,
		queue, pq.Array(docs), secs); err != nil {
		return nil, wrap("send batch to", queue, err)
	}
	return ids, nil
}

// Read takes up to qty visible messages in msg_id order and hides them for
// vtSeconds; each read increments read_ct (at-least-once delivery, §4.2).
func (c *Client) Read(ctx context.Context, queue string, vtSeconds int, qty int) ([]ports.QueueMessage, error) {
	if err := ValidateQueueName(queue); err != nil {
		return nil, err
	}
	if qty < 1 {
		return nil, fmt.Errorf("pgmq read %q: qty must be at least 1, got %d", queue, qty)
	}
	if vtSeconds < 0 {
		return nil, fmt.Errorf("pgmq read %q: visibility timeout must not be negative, got %d", queue, vtSeconds)
	}
	var rows []messageRow
	var err error
	if st := c.preparedRead(ctx); st != nil {
		err = st.SelectContext(ctx, &rows, queue, vtSeconds, qty)
	} else {
		query := readSQL
		if _, pooled := c.q.(*sqlx.DB); pooled {
			query = pooledReadSQL
		}
		err = sqlx.SelectContext(ctx, c.q, &rows, query, queue, vtSeconds, qty)
	}
	if err != nil {
		return nil, wrap("read", queue, err)
	}
	out := make([]ports.QueueMessage, len(rows))
	for i, r := range rows {
		out[i] = r.toPort()
	}
	return out, nil
}

// Delete removes a message; false when no such message is in the queue.
func (c *Client) Delete(ctx context.Context, queue string, msgID int64) (bool, error) {
	return c.boolCall(ctx, "delete from", `SELECT pgmq.delete($1::text, $2::bigint)`, queue, msgID)
}

// Archive moves a message to a_<queue>, where it stays for inspection; false when
// no such message is in the queue. Used for poison messages (D-g).
func (c *Client) Archive(ctx context.Context, queue string, msgID int64) (bool, error) {
	return c.boolCall(ctx, "archive in", `SELECT pgmq.archive($1::text, $2::bigint)`, queue, msgID)
}

func (c *Client) boolCall(ctx context.Context, op, query, queue string, msgID int64) (bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return false, err
	}
	var ok bool
	if err := c.q.QueryRowxContext(ctx, query, queue, msgID).Scan(&ok); err != nil {
		return false, wrap(op, queue, fmt.Errorf("message %d: %w", msgID, err))
	}
	return ok, nil
}

// SetVT makes the message invisible for vtSeconds from now (0 makes it visible at
// once); false when no such message is in the queue. The worker's heartbeat uses
// it to keep a message hidden while its handler runs (D-g).
func (c *Client) SetVT(ctx context.Context, queue string, msgID int64, vtSeconds int) (bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return false, err
	}
	if vtSeconds < 0 {
		return false, fmt.Errorf("pgmq set_vt %q: visibility timeout must not be negative, got %d", queue, vtSeconds)
	}
	var ids []int64
	if err := sqlx.SelectContext(ctx, c.q, &ids, `SELECT msg_id FROM pgmq.set_vt($1::text, $2::bigint, $3::integer)`,
		queue, msgID, vtSeconds); err != nil {
		return false, wrap("set_vt in", queue, fmt.Errorf("message %d: %w", msgID, err))
	}
	return len(ids) > 0, nil
}

// Metrics reports depth and age of one queue (pgmq.metrics).
func (c *Client) Metrics(ctx context.Context, queue string) (ports.QueueMetrics, error) {
	if err := ValidateQueueName(queue); err != nil {
		return ports.QueueMetrics{}, err
	}
	var m metricsRow
	if err := sqlx.GetContext(ctx, c.q, &m, `SELECT `+metricsColumns+` FROM pgmq.metrics($1::text)`, queue); err != nil {
		return ports.QueueMetrics{}, wrap("metrics of", queue, err)
	}
	return m.toPort(), nil
}

// MetricsAll reports Metrics for every queue in pgmq.meta, for dashboards and the
// /metrics endpoint.
func (c *Client) MetricsAll(ctx context.Context) ([]ports.QueueMetrics, error) {
	var rows []metricsRow
	if err := sqlx.SelectContext(ctx, c.q, &rows, `SELECT `+metricsColumns+` FROM pgmq.metrics_all() ORDER BY queue_name`); err != nil {
		return nil, fmt.Errorf("pgmq metrics_all: %w", err)
	}
	out := make([]ports.QueueMetrics, len(rows))
	for i, r := range rows {
		out[i] = r.toPort()
	}
	return out, nil
}

// PurgeQueue deletes every message of the queue and returns how many there were.
func (c *Client) PurgeQueue(ctx context.Context, queue string) (int64, error) {
	if err := ValidateQueueName(queue); err != nil {
		return 0, err
	}
	var n int64
	if err := c.q.QueryRowxContext(ctx, `SELECT pgmq.purge_queue($1::text)`, queue).Scan(&n); err != nil {
		return 0, wrap("purge", queue, err)
	}
	return n, nil
}

// DropQueue drops the queue's tables and meta row; false when it did not exist.
func (c *Client) DropQueue(ctx context.Context, queue string) (bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return false, err
	}
	var ok bool
	if err := c.q.QueryRowxContext(ctx, `SELECT pgmq.drop_queue($1::text)`, queue).Scan(&ok); err != nil {
		return false, wrap("drop", queue, err)
	}
	return ok, nil
}

// metricsColumns are named rather than * so that a pgmq release adding a column
// to metrics_result does not break scanning.
const metricsColumns = `queue_name, queue_length, newest_msg_age_sec, oldest_msg_age_sec,
	total_messages, scrape_time, queue_visible_length`

func delaySeconds(d time.Duration) (int, error) {
	if d < 0 {
		return 0, fmt.Errorf("delay must not be negative, got %s", d)
	}
	secs := math.Ceil(d.Seconds())
	if secs > math.MaxInt32 {
		return 0, fmt.Errorf("delay %s is too long", d)
	}
	return int(secs), nil
}

// wrap adds the operation and queue, and maps a missing queue table to ErrQueueNotFound.
func wrap(op, queue string, err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.SQLState() == "42P01" {
		return fmt.Errorf("pgmq %s %q: %w (%s)", op, queue, ErrQueueNotFound, pqErr.Message)
	}
	return fmt.Errorf("pgmq %s %q: %w", op, queue, err)
}

// OtherHolder reports whether queue holds another message than msgID for
// stepUUID that is invisible right now (vt in the future): a worker that
// claimed the step through that message is alive and extending it. It
// implements ports.HeartbeatProbe. The queue is a small working set, so the
// scan this needs is cheap; it runs only for redelivered in_progress steps.
func (c *Client) OtherHolder(ctx context.Context, queue string, msgID int64, stepUUID string) (bool, error) {
	if err := ValidateQueueName(queue); err != nil {
		return false, err
	}
	var found bool
	err := c.q.QueryRowxContext(ctx, `SELECT EXISTS (SELECT 1 FROM pgmq.`+pq.QuoteIdentifier("q_"+queue)+`
		WHERE msg_id <> $1 AND vt > clock_timestamp() AND message->>'step_uuid' = $2)`, msgID, stepUUID).Scan(&found)
	if err != nil {
		return false, wrap("probe holders of", queue, err)
	}
	return found, nil
}
