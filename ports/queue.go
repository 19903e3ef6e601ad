package ports

import (
	"context"
	"encoding/json"
	"time"
)

// QueueMessage is one pgmq message record (contract §4.2).
type QueueMessage struct {
	MsgID      int64
	ReadCt     int
	EnqueuedAt time.Time
	VT         time.Time
	Message    json.RawMessage
	Headers    json.RawMessage
}

// QueueMetrics is pgmq.metrics_result for one queue. Ages are nil for an empty queue.
type QueueMetrics struct {
	QueueName          string
	QueueLength        int64
	NewestMsgAgeSec    *int
	OldestMsgAgeSec    *int
	TotalMessages      int64
	ScrapeTime         time.Time
	QueueVisibleLength int64
}

// Queue is the message queue the services exchange step and completion
// messages over (pgmq 1.5). Operations run in autocommit; sends and deletes
// that belong to a business transaction are done by the stores instead.
type Queue interface {
	// CreateQueue creates the queue idempotently, with the headers column and
	// the message-ready trigger (contract §4.1).
	CreateQueue(ctx context.Context, queue string) error
	// Send enqueues msg, visible after delay, and returns its msg_id.
	Send(ctx context.Context, queue string, msg json.RawMessage, delay time.Duration) (int64, error)
	// Read takes up to qty visible messages and hides them for vtSeconds.
	Read(ctx context.Context, queue string, vtSeconds int, qty int) ([]QueueMessage, error)
	// Delete removes a message; false when it did not exist.
	Delete(ctx context.Context, queue string, msgID int64) (bool, error)
	// Archive moves a message to a_<queue>; false when it did not exist.
	Archive(ctx context.Context, queue string, msgID int64) (bool, error)
	// SetVT makes the message invisible for vtSeconds from now; false when it did not exist.
	SetVT(ctx context.Context, queue string, msgID int64, vtSeconds int) (bool, error)
	// Metrics reports depth and age of one queue.
	Metrics(ctx context.Context, queue string) (QueueMetrics, error)
}

// HeartbeatProbe tells a live holder from a lost one. A worker running a
// step extends its message's visibility every vt/3, so when that message
// becomes visible again the holder stopped: unless another message for the
// step is still invisible (a duplicate held by a live worker), the step can
// be rescued at once instead of after the claim timeout.
type HeartbeatProbe interface {
	// OtherHolder reports whether queue has a message other than msgID for
	// stepUUID that is invisible now.
	OtherHolder(ctx context.Context, queue string, msgID int64, stepUUID string) (bool, error)
}
