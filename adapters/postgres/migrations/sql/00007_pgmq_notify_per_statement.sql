-- One message-ready notification per INSERT statement instead of per row (issue 11).
--
-- PostgreSQL serialises the commits of all transactions that issued NOTIFY, and a
-- row trigger calls pg_notify twice for every message, so a send_batch of ten sent
-- twenty notifications. On databases this project set up the trigger becomes
--
--   AFTER INSERT ON pgmq.q_<queue> REFERENCING NEW TABLE AS new_messages
--   FOR EACH STATEMENT EXECUTE FUNCTION public.pgmq_notify_message_ready()
--
-- with the same name (pgmq_message_ready_trigger_q_<queue>). It notifies the
-- namespace channel, then the global one, once per statement, with the contract
-- §4.6 payload of the statement's lowest msg_id. pgmq's send and send_batch are each
-- one INSERT, also in the real extension, so a send_batch call yields one
-- notification per channel. A statement that inserts no row notifies nothing.
--
-- The function keeps its name and branches on TG_LEVEL: row triggers (those made by
-- the reference's migrations or before this migration) keep working and keep one
-- notification per row.
--
-- Which form new triggers get is recorded in the function's comment, which the
-- attach code (pgmq_ensure_message_ready_trigger, hence the event trigger, and the
-- services' SQL in adapters/pgmq/attach.go) reads. Statement form is chosen when the
-- pgmq schema is the project's own SQL (00003's schema comment), or the real pgmq
-- extension on a database that shows no sign of the reference's migrations (their
-- sqlx bookkeeping table, or pgmq_auto_add_headers_trigger(), which only they
-- create). Elsewhere — a reference database, a foreign pgmq schema — the trigger
-- form stays per row, as 00004 left it: reference components there may expect a
-- notification per message. Only in statement mode are existing AFTER INSERT FOR
-- EACH ROW triggers that call the function converted.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_notify_message_ready() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    queue_name text := substring(TG_TABLE_NAME FROM 3);
    namespace  text := coalesce(substring(substring(TG_TABLE_NAME FROM 3) FROM '(\w+)_queue'), 'default');
    channel    text;
    payload    text;
    first_id   bigint;
    first_vt   timestamptz;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        first_id := NEW.msg_id;
        first_vt := NEW.vt;
    ELSE
        -- new_messages is the transition table the statement-level trigger declares.
        SELECT m.msg_id, m.vt INTO first_id, first_vt FROM new_messages m ORDER BY m.msg_id LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    payload := json_build_object(
        'event_type', 'message_ready',
        'msg_id', first_id,
        'queue_name', queue_name,
        'namespace', namespace,
        'ready_at', now(),
        'visibility_timeout_seconds', extract(epoch FROM (first_vt - now()))::integer)::text;
    IF octet_length(payload) > 7800 THEN
        payload := left(payload, 7800);
        WHILE octet_length(payload) > 7800 LOOP
            payload := left(payload, length(payload) - 1);
        END LOOP;
    END IF;
    channel := 'pgmq_message_ready.' || namespace;
    -- A channel name over 63 bytes would make pg_notify fail the INSERT; such a
    -- namespace cannot be served anyway (D-k), so only the global channel fires.
    IF octet_length(channel) <= 63 THEN
        PERFORM pg_notify(channel, payload);
    END IF;
    PERFORM pg_notify('pgmq_message_ready', payload);
    RETURN NULL;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $do$
DECLARE
    per_statement boolean;
BEGIN
    per_statement :=
        coalesce(obj_description(to_regnamespace('pgmq'), 'pg_namespace'), '') LIKE 'tasker:%'
        OR (EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')
            AND to_regclass('public._sqlx_migrations') IS NULL
            AND to_regprocedure('public.pgmq_auto_add_headers_trigger()') IS NULL);
    IF per_statement THEN
        COMMENT ON FUNCTION public.pgmq_notify_message_ready() IS
            'tasker: message-ready NOTIFY (contract §4.6); attach FOR EACH STATEMENT REFERENCING NEW TABLE AS new_messages';
    ELSE
        COMMENT ON FUNCTION public.pgmq_notify_message_ready() IS
            'tasker: message-ready NOTIFY (contract §4.6); attach FOR EACH ROW (reference database or foreign pgmq)';
    END IF;
END
$do$;
-- +goose StatementEnd

-- pgmq_ensure_message_ready_trigger: as in 00004, but the trigger form follows the
-- function's comment (see above).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_ensure_message_ready_trigger(queue_name text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    rel regclass := to_regclass(format('pgmq.%I', 'q_' || queue_name));
    fn  regprocedure := 'public.pgmq_notify_message_ready()'::regprocedure;
BEGIN
    IF rel IS NULL THEN
        RETURN false;
    END IF;
    -- Same lock as the project's pgmq.create: two services attaching at once
    -- must not both pass the existence check.
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND NOT tgisinternal AND tgfoid = fn) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = fn
                  AND obj_description(p.oid, 'pg_proc') LIKE 'tasker:%FOR EACH STATEMENT%'
                  AND p.prosrc LIKE '%new_messages%') THEN
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON pgmq.%I REFERENCING NEW TABLE AS new_messages
             FOR EACH STATEMENT EXECUTE FUNCTION public.pgmq_notify_message_ready()',
            left('pgmq_message_ready_trigger_q_' || queue_name, 63), 'q_' || queue_name);
    ELSE
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON pgmq.%I FOR EACH ROW EXECUTE FUNCTION public.pgmq_notify_message_ready()',
            left('pgmq_message_ready_trigger_q_' || queue_name, 63), 'q_' || queue_name);
    END IF;
    RETURN true;
END
$fn$;
-- +goose StatementEnd

-- In statement mode, replace the row triggers (AFTER INSERT FOR EACH ROW, tgtype 5)
-- that call the function on the queue tables; then (any mode) attach where missing.
-- Partitions are skipped: a partitioned queue's trigger is on its parent.
-- +goose StatementBegin
DO $do$
DECLARE
    r record;
    tbl text;
BEGIN
    IF coalesce(obj_description('public.pgmq_notify_message_ready()'::regprocedure, 'pg_proc'), '')
           LIKE 'tasker:%FOR EACH STATEMENT%' THEN
        FOR r IN SELECT c.relname, t.tgname
                   FROM pg_trigger t
                   JOIN pg_class c ON c.oid = t.tgrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'pgmq' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                    AND c.relname LIKE 'q\_%'
                    AND NOT t.tgisinternal AND t.tgtype = 5
                    AND t.tgfoid = 'public.pgmq_notify_message_ready()'::regprocedure
                  ORDER BY c.relname, t.tgname LOOP
            PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(substring(r.relname FROM 3)));
            EXECUTE format('DROP TRIGGER %I ON pgmq.%I', r.tgname, r.relname);
        END LOOP;
    END IF;

    FOR tbl IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'pgmq' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND c.relname LIKE 'q\_%'
                ORDER BY c.relname LOOP
        PERFORM public.pgmq_ensure_message_ready_trigger(substring(tbl FROM 3));
    END LOOP;
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty, like 00004: the function serves both trigger forms.
