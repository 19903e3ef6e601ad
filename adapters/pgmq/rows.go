package pgmq

import (
	"encoding/json"
	"time"

	"github.com/tasker-systems/tasker-go/ports"
)

// messageRow is pgmq.message_record as scanned. jsonb arrives as []byte, which
// database/sql copies for *[]byte destinations (a json.RawMessage destination could
// alias the driver's buffer).
type messageRow struct {
	MsgID      int64     `db:"msg_id"`
	ReadCt     int       `db:"read_ct"`
	EnqueuedAt time.Time `db:"enqueued_at"`
	VT         time.Time `db:"vt"`
	Message    []byte    `db:"message"`
	Headers    []byte    `db:"headers"`
}

func (r messageRow) toPort() ports.QueueMessage {
	return ports.QueueMessage{
		MsgID:      r.MsgID,
		ReadCt:     r.ReadCt,
		EnqueuedAt: r.EnqueuedAt.UTC(),
		VT:         r.VT.UTC(),
		Message:    json.RawMessage(r.Message),
		Headers:    json.RawMessage(r.Headers),
	}
}

// metricsRow is pgmq.metrics_result as scanned.
type metricsRow struct {
	QueueName          string    `db:"queue_name"`
	QueueLength        int64     `db:"queue_length"`
	NewestMsgAgeSec    *int      `db:"newest_msg_age_sec"`
	OldestMsgAgeSec    *int      `db:"oldest_msg_age_sec"`
	TotalMessages      int64     `db:"total_messages"`
	ScrapeTime         time.Time `db:"scrape_time"`
	QueueVisibleLength int64     `db:"queue_visible_length"`
}

func (r metricsRow) toPort() ports.QueueMetrics {
	return ports.QueueMetrics{
		QueueName:          r.QueueName,
		QueueLength:        r.QueueLength,
		NewestMsgAgeSec:    r.NewestMsgAgeSec,
		OldestMsgAgeSec:    r.OldestMsgAgeSec,
		TotalMessages:      r.TotalMessages,
		ScrapeTime:         r.ScrapeTime.UTC(),
		QueueVisibleLength: r.QueueVisibleLength,
	}
}
