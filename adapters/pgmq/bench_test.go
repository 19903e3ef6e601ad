package pgmq_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/pgmq/queuetest"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// BenchmarkMessageLifecycle measures one message's full autocommit path as the
// worker sees it: send, read (vt 30 s, batch 1), delete. Reported as messages/s.
func BenchmarkMessageLifecycle(b *testing.B) {
	ctx := context.Background()
	c := pgmq.New(testdb.New(b))
	name := queuetest.NewQueueName()
	require.NoError(b, c.CreateQueue(ctx, name))
	msg := json.RawMessage(`{"task_uuid":"0198f0c2-0000-7000-8000-000000000001","step_uuid":"0198f0c2-0000-7000-8000-000000000002"}`)
	start := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Send(ctx, name, msg, 0); err != nil {
			b.Fatal(err)
		}
		msgs, err := c.Read(ctx, name, 30, 1)
		if err != nil || len(msgs) != 1 {
			b.Fatalf("read: %v (%d messages)", err, len(msgs))
		}
		if ok, err := c.Delete(ctx, name, msgs[0].MsgID); err != nil || !ok {
			b.Fatalf("delete: %v %v", err, ok)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkReadBatch10 measures draining a backlog with the default batch size
// (contract §4.7: 10 per read), reported as messages read per second of read time.
func BenchmarkReadBatch10(b *testing.B) {
	ctx := context.Background()
	c := pgmq.New(testdb.New(b))
	name := queuetest.NewQueueName()
	require.NoError(b, c.CreateQueue(ctx, name))
	batch := make([]json.RawMessage, 10)
	for i := range batch {
		batch[i] = json.RawMessage(`{"task_uuid":"t","step_uuid":"s"}`)
	}
	var read int
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		if _, err := c.SendBatch(ctx, name, batch, 0); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		msgs, err := c.Read(ctx, name, 30, 10)
		elapsed += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		read += len(msgs)
		b.StopTimer()
		for _, m := range msgs { // keep the queue at steady state: hidden rows would pile up
			if _, err := c.Delete(ctx, name, m.MsgID); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(read)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkSendBatch10Trigger compares send_batch of ten messages (autocommit)
// under the statement-level message-ready trigger the project attaches with the
// per-row trigger of a reference database: 2 instead of 20 pg_notify calls.
func BenchmarkSendBatch10Trigger(b *testing.B) {
	for _, form := range []string{"statement", "row"} {
		b.Run(form, func(b *testing.B) {
			ctx := context.Background()
			db := testdb.New(b)
			c := pgmq.New(db)
			name := queuetest.NewQueueName()
			require.NoError(b, c.CreateQueue(ctx, name))
			if form == "row" {
				_, err := db.ExecContext(ctx, `DROP TRIGGER `+pgmq.TriggerName(name)+` ON pgmq.q_`+name+`;
					CREATE TRIGGER `+pgmq.TriggerName(name)+` AFTER INSERT ON pgmq.q_`+name+`
						FOR EACH ROW EXECUTE FUNCTION pgmq_notify_message_ready()`)
				require.NoError(b, err)
			}
			batch := make([]json.RawMessage, 10)
			for i := range batch {
				batch[i] = json.RawMessage(`{"task_uuid":"0198f0c2-0000-7000-8000-000000000001","step_uuid":"0198f0c2-0000-7000-8000-000000000002"}`)
			}
			for b.Loop() {
				if _, err := c.SendBatch(ctx, name, batch, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
