package pgmq

import (
	"context"
	"strings"
)

// ensureNotificationsSQL adds the headers column where missing and attaches the
// message-ready trigger unless a trigger on q_<queue> already calls
// pgmq_notify_message_ready() (contract §4.1, §4.6, D-h). It is plain SQL rather
// than a call to the project's pgmq_ensure_* helpers because a reference database
// has no such helpers.
//
// The trigger is per statement (REFERENCING NEW TABLE AS new_messages, one
// notification per INSERT) when the function's comment says so and its body reads
// that transition table — as migration 00007 sets up on the project's databases —
// and per row otherwise, e.g. with the reference's own function, which handles rows
// only. DO blocks take no parameters, so the queue name (validated
// to ^[a-z0-9_]+$ first) is spliced in; the advisory lock is the one the project's
// pgmq.create takes, so concurrent services cannot both attach.
const ensureNotificationsSQL = `DO $tasker$
DECLARE
    qname text := '__QUEUE__';
    tbl   text;
    rel   regclass;
    fn    regprocedure := to_regprocedure('public.pgmq_notify_message_ready()');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(qname));
    IF to_regclass(format('pgmq.%I', 'q_' || qname)) IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_table',
            MESSAGE = format('relation "pgmq.q_%s" does not exist', qname);
    END IF;
    FOREACH tbl IN ARRAY ARRAY['q_' || qname, 'a_' || qname] LOOP
        rel := to_regclass(format('pgmq.%I', tbl));
        IF rel IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = rel AND attname = 'headers' AND NOT attisdropped) THEN
            EXECUTE format('ALTER TABLE pgmq.%I ADD COLUMN headers jsonb', tbl);
        END IF;
    END LOOP;
    IF fn IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_function',
            MESSAGE = 'function public.pgmq_notify_message_ready() does not exist: apply the migrations (tasker-orchestration migrate)';
    END IF;
    rel := to_regclass(format('pgmq.%I', 'q_' || qname));
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgfoid = fn AND NOT tgisinternal) THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = fn
                  AND obj_description(p.oid, 'pg_proc') LIKE 'tasker:%FOR EACH STATEMENT%'
                  AND p.prosrc LIKE '%new_messages%') THEN
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON pgmq.%I REFERENCING NEW TABLE AS new_messages
            FOR EACH STATEMENT EXECUTE FUNCTION public.pgmq_notify_message_ready()',
            left('pgmq_message_ready_trigger_q_' || qname, 63), 'q_' || qname);
    ELSE
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON pgmq.%I FOR EACH ROW EXECUTE FUNCTION public.pgmq_notify_message_ready()',
            left('pgmq_message_ready_trigger_q_' || qname, 63), 'q_' || qname);
    END IF;
END
$tasker$`

// EnsureNotifications makes an existing queue notify on insert: headers column on
// q_/a_ and the message-ready trigger, each only if missing. CreateQueue calls it;
// call it directly for queues created by other clients.
func (c *Client) EnsureNotifications(ctx context.Context, queue string) error {
	if err := ValidateQueueName(queue); err != nil {
		return err
	}
	if _, err := c.q.ExecContext(ctx, strings.Replace(ensureNotificationsSQL, "__QUEUE__", queue, 1)); err != nil {
		return wrap("attach notifications to", queue, err)
	}
	return nil
}

// TriggerName is the message-ready trigger name for queue, as PostgreSQL stores it
// (identifiers are cut at 63 bytes).
func TriggerName(queue string) string {
	n := "pgmq_message_ready_trigger_q_" + queue
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}
