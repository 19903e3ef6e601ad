package pgmq_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// triggerForm describes the message-ready trigger on pgmq.q_<queue>.
type triggerForm struct {
	Name     string         `db:"tgname"`
	Type     int            `db:"tgtype"` // 5: AFTER INSERT FOR EACH ROW; 4: AFTER INSERT FOR EACH STATEMENT
	NewTable sql.NullString `db:"tgnewtable"`
}

func messageReadyTriggers(t *testing.T, db *sqlx.DB, queue string) []triggerForm {
	t.Helper()
	var out []triggerForm
	require.NoError(t, db.Select(&out, `SELECT tgname, tgtype, tgnewtable FROM pg_trigger
		WHERE tgrelid = ('pgmq.q_' || $1)::regclass AND NOT tgisinternal
		  AND tgfoid = 'public.pgmq_notify_message_ready()'::regprocedure ORDER BY tgname`, queue))
	return out
}

var (
	statementForm = func(q string) triggerForm {
		return triggerForm{Name: pgmq.TriggerName(q), Type: 4, NewTable: sql.NullString{String: "new_messages", Valid: true}}
	}
	rowForm = func(q string) triggerForm { return triggerForm{Name: pgmq.TriggerName(q), Type: 5} }
)

func batchOf(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(`{"task_uuid":"t","step_uuid":"s"}`)
	}
	return out
}

// On the project's database the trigger is per statement: a send_batch of ten in
// one transaction notifies once per channel (namespace, then global) with the
// §4.6 payload of its lowest msg_id; a second statement notifies again; a
// statement inserting nothing does not notify.
func TestSendBatchNotifiesOncePerStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	c := pgmq.New(db)
	require.NoError(t, c.CreateQueue(ctx, "batch_queue"))
	require.Equal(t, []triggerForm{statementForm("batch_queue")}, messageReadyTriggers(t, db, "batch_queue"))
	l := listen(t, dsn, "pgmq_message_ready.batch", "pgmq_message_ready")

	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	ids, err := pgmq.New(tx).SendBatch(ctx, "batch_queue", batchOf(10), 3*time.Second)
	require.NoError(t, err)
	require.Len(t, ids, 10)
	require.NoError(t, tx.Commit())

	ch, p := receive(t, l)
	require.Equal(t, "pgmq_message_ready.batch", ch, "namespace channel first")
	require.Len(t, p, 6, "payload %v", p)
	require.Equal(t, "message_ready", p["event_type"])
	require.Equal(t, float64(ids[0]), p["msg_id"], "the statement's lowest msg_id")
	require.Equal(t, "batch_queue", p["queue_name"])
	require.Equal(t, "batch", p["namespace"])
	require.Regexp(t, isoUTC, p["ready_at"])
	require.InDelta(t, 3, p["visibility_timeout_seconds"], 1)
	ch, global := receive(t, l)
	require.Equal(t, "pgmq_message_ready", ch)
	require.Equal(t, p, global, "same payload on the global channel")
	requireNoMore(t, l)

	// Two statements in one transaction: one notification per statement.
	tx, err = db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	first, err := pgmq.New(tx).SendBatch(ctx, "batch_queue", batchOf(3), 0)
	require.NoError(t, err)
	single, err := pgmq.New(tx).Send(ctx, "batch_queue", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `SELECT pgmq.send_batch('batch_queue'::text, ARRAY[]::jsonb[])`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	var got []float64
	for range 4 {
		_, p := receive(t, l)
		got = append(got, p["msg_id"].(float64))
	}
	require.Equal(t, []float64{float64(first[0]), float64(first[0]), float64(single), float64(single)}, got)
	requireNoMore(t, l)
}

// A database whose q_ table has a row trigger, as the reference's migrations
// create it (AFTER INSERT FOR EACH ROW EXECUTE FUNCTION pgmq_notify_message_ready()),
// keeps it: CreateQueue does not add a second trigger, the project's function
// notifies once per row, and the worker's and the orchestration's listeners wake.
func TestRowTriggerStillNotifiesEveryMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	c := pgmq.New(db)
	for _, q := range []string{"rowns_queue", "orchestration_step_results"} {
		require.NoError(t, c.CreateQueue(ctx, q))
		_, err = db.ExecContext(ctx, `DROP TRIGGER `+pgmq.TriggerName(q)+` ON pgmq.q_`+q+`;
			CREATE TRIGGER `+pgmq.TriggerName(q)+` AFTER INSERT ON pgmq.q_`+q+`
				FOR EACH ROW EXECUTE FUNCTION pgmq_notify_message_ready()`)
		require.NoError(t, err)
		require.NoError(t, c.CreateQueue(ctx, q), "attach is idempotent over a row trigger")
		require.Equal(t, []triggerForm{rowForm(q)}, messageReadyTriggers(t, db, q))
	}
	requireRowNotificationsWake(t, ctx, c, dsn)
}

// A reference database (the reference's migrations only) has a row-only
// function and no event trigger. Services attach the row form there, even if the
// function kept the project's comment, because the body does not read the
// statement's transition table.
func TestReferenceDatabaseGetsRowTriggers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.URL(t)
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	// A per-row-only function written for this test in the reference's manner:
	// it reads NEW, so a statement-level trigger would fail every insert.
	_, err = db.ExecContext(ctx, `DROP EVENT TRIGGER tasker_pgmq_queue_table_created;
		CREATE OR REPLACE FUNCTION public.pgmq_notify_message_ready() RETURNS trigger LANGUAGE plpgsql AS $f$
		DECLARE
			q  text := substring(TG_TABLE_NAME FROM 3);
			ns text := coalesce(substring(substring(TG_TABLE_NAME FROM 3) FROM '(\w+)_queue'), 'default');
			p  text;
		BEGIN
			p := json_build_object('event_type', 'message_ready', 'msg_id', NEW.msg_id, 'queue_name', q,
				'namespace', ns, 'ready_at', now(),
				'visibility_timeout_seconds', extract(epoch FROM (NEW.vt - now()))::integer)::text;
			PERFORM pg_notify('pgmq_message_ready.' || ns, p);
			PERFORM pg_notify('pgmq_message_ready', p);
			RETURN NEW;
		END $f$`)
	require.NoError(t, err)
	var comment string
	require.NoError(t, db.Get(&comment, `SELECT obj_description('public.pgmq_notify_message_ready()'::regprocedure, 'pg_proc')`))
	require.Contains(t, comment, "FOR EACH STATEMENT", "CREATE OR REPLACE kept the project's comment")
	c := pgmq.New(db)
	for _, q := range []string{"rowns_queue", "orchestration_step_results"} {
		require.NoError(t, c.CreateQueue(ctx, q))
		require.Equal(t, []triggerForm{rowForm(q)}, messageReadyTriggers(t, db, q))
	}
	requireRowNotificationsWake(t, ctx, c, dsn)
}

// requireRowNotificationsWake sends a batch of three to rowns_queue and one
// message to orchestration_step_results, both row-triggered: the raw channels
// carry one notification per message, the worker's namespace listener gets a
// wake-up per message, and the orchestration's global listener names its queue.
func requireRowNotificationsWake(t *testing.T, ctx context.Context, c *pgmq.Client, dsn string) {
	t.Helper()
	raw := listen(t, dsn, "pgmq_message_ready.rowns")
	worker, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.NamespaceReadyChannel("rowns")}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, worker.Close()) })
	orch, err := pgmq.NewListener(ctx, pgmq.ListenerConfig{DSN: dsn, Channels: []string{pgmq.GlobalReadyChannel}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, orch.Close()) })
	names := orch.Notifications()

	ids, err := c.SendBatch(ctx, "rowns_queue", batchOf(3), 0)
	require.NoError(t, err)
	for _, id := range ids {
		_, p := receive(t, raw)
		require.Equal(t, float64(id), p["msg_id"])
		require.Equal(t, ports.MessageReady{Queue: "rowns_queue", Namespace: "rowns", MsgID: id}, nextReady(t, worker.Notifications()))
	}
	requireNoMore(t, raw)

	_, err = c.Send(ctx, "orchestration_step_results", json.RawMessage(`{}`), 0)
	require.NoError(t, err)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-names:
			if m.Queue == "orchestration_step_results" {
				return
			}
		case <-deadline:
			t.Fatal("no orchestration wake-up within 10 s")
		}
	}
}
