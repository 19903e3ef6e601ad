-- Message-ready and queue-created notifications (contract §4.6, D-h).
--
-- Function names and payloads are those of the reference database, so LISTENers
-- cannot tell the two kinds apart. Unlike the reference, the message-ready trigger
-- reaches every queue: the queues existing now are attached below, and an event
-- trigger attaches every pgmq.q_* table created later (also by the real extension's
-- pgmq.create). Services still attach on create (pgmq_ensure_message_ready_trigger or
-- the same SQL in Go) because a reference database has no such event trigger.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_notify_message_ready() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    queue_name text := substring(TG_TABLE_NAME FROM 3);
    namespace  text := coalesce(substring(substring(TG_TABLE_NAME FROM 3) FROM '(\w+)_queue'), 'default');
    channel    text;
    payload    text;
BEGIN
    payload := json_build_object(
        'event_type', 'message_ready',
        'msg_id', NEW.msg_id,
        'queue_name', queue_name,
        'namespace', namespace,
        'ready_at', now(),
        'visibility_timeout_seconds', extract(epoch FROM (NEW.vt - now()))::integer)::text;
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
    RETURN NEW;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_notify_queue_created() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    payload text;
BEGIN
    payload := json_build_object(
        'event_type', 'queue_created',
        'queue_name', NEW.queue_name,
        'namespace', coalesce(substring(NEW.queue_name::text FROM '(\w+)_queue'), 'default'),
        'created_at', coalesce(NEW.created_at, now()))::text;
    PERFORM pg_notify('pgmq_queue_created', left(payload, 7800));
    RETURN NEW;
END
$fn$;
-- +goose StatementEnd

-- pgmq_ensure_headers_column adds the pgmq 1.5 headers column to q_<queue> and
-- a_<queue> where missing (queues made by older pgmq clients lack it). Missing
-- tables are skipped, so it can run while a queue is half created.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_ensure_headers_column(queue_name text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    tbl text;
    rel regclass;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['q_' || queue_name, 'a_' || queue_name] LOOP
        rel := to_regclass(format('pgmq.%I', tbl));
        IF rel IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute
             WHERE attrelid = rel AND attname = 'headers' AND NOT attisdropped) THEN
            EXECUTE format('ALTER TABLE pgmq.%I ADD COLUMN headers jsonb', tbl);
        END IF;
    END LOOP;
END
$fn$;
-- +goose StatementEnd

-- pgmq_ensure_message_ready_trigger attaches pgmq_notify_message_ready() to
-- pgmq.q_<queue> unless a trigger there already calls it. Returns true when it
-- attached one now, false when it was already attached or the queue does not exist.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_ensure_message_ready_trigger(queue_name text) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    rel regclass := to_regclass(format('pgmq.%I', 'q_' || queue_name));
BEGIN
    IF rel IS NULL THEN
        RETURN false;
    END IF;
    -- Same lock as the project's pgmq.create: two services attaching at once
    -- must not both pass the existence check.
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
    IF EXISTS (SELECT 1 FROM pg_trigger
                WHERE tgrelid = rel AND NOT tgisinternal
                  AND tgfoid = 'public.pgmq_notify_message_ready()'::regprocedure) THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TRIGGER %I AFTER INSERT ON pgmq.%I FOR EACH ROW EXECUTE FUNCTION public.pgmq_notify_message_ready()',
        left('pgmq_message_ready_trigger_q_' || queue_name, 63), 'q_' || queue_name);
    RETURN true;
END
$fn$;
-- +goose StatementEnd

-- The event trigger's function: every failure is downgraded to a WARNING, because an
-- error here would abort the CREATE TABLE of whoever ran it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION public.pgmq_on_queue_table_created() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    tbl text;
BEGIN
    FOR tbl IN
        SELECT c.relname FROM pg_event_trigger_ddl_commands() AS cmd
          JOIN pg_class c ON c.oid = cmd.objid
         WHERE cmd.object_type = 'table' AND cmd.schema_name = 'pgmq'
           AND (c.relname LIKE 'q\_%' OR c.relname LIKE 'a\_%')
    LOOP
        BEGIN
            PERFORM public.pgmq_ensure_headers_column(substring(tbl FROM 3));
            IF tbl LIKE 'q\_%' THEN
                PERFORM public.pgmq_ensure_message_ready_trigger(substring(tbl FROM 3));
            END IF;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'tasker: could not attach pgmq notifications to pgmq.%: %', tbl, SQLERRM;
        END;
    END LOOP;
END
$fn$;
-- +goose StatementEnd

-- Attach to what exists now: pgmq.meta and every existing queue table.
-- +goose StatementBegin
DO $do$
DECLARE
    tbl text;
BEGIN
    IF to_regclass('pgmq.meta') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_trigger
         WHERE tgrelid = 'pgmq.meta'::regclass AND NOT tgisinternal
           AND tgfoid = 'public.pgmq_notify_queue_created()'::regprocedure) THEN
        CREATE TRIGGER pgmq_queue_created_trigger AFTER INSERT ON pgmq.meta
            FOR EACH ROW EXECUTE FUNCTION public.pgmq_notify_queue_created();
    END IF;

    FOR tbl IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'pgmq' AND c.relkind IN ('r', 'p') AND c.relname LIKE 'q\_%' LOOP
        PERFORM public.pgmq_ensure_headers_column(substring(tbl FROM 3));
        PERFORM public.pgmq_ensure_message_ready_trigger(substring(tbl FROM 3));
    END LOOP;
END
$do$;
-- +goose StatementEnd

-- Event triggers need a superuser. Without one the migration still succeeds and the
-- services' attach-on-create (D-h) covers new queues.
-- +goose StatementBegin
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tasker_pgmq_queue_table_created') THEN
        CREATE EVENT TRIGGER tasker_pgmq_queue_table_created ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE')
            EXECUTE FUNCTION public.pgmq_on_queue_table_created();
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'tasker: no privilege to create the pgmq event trigger (%); services attach notifications when they create queues', SQLERRM;
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty: on a reference database these functions and triggers are the
-- reference's own.
