-- Planned-once queue operations for the project's own pgmq SQL (00003).
--
-- pgmq's functions reach pgmq.q_<queue> through dynamic SQL, which PostgreSQL
-- parses and plans on every call: for a batch of ten messages that planning costs
-- more than the inserts themselves, and the worker calls send_batch, delete and read
-- on every step batch. Static SQL in PL/pgSQL is planned once per session instead.
-- So the hot functions — send, send_batch, read, delete and set_vt (their base
-- forms; the other overloads delegate to them) — are regenerated with one static
-- branch per existing queue, keeping the dynamic statement as the fallback for any
-- other name. Semantics, names and signatures are unchanged (contract §4.2).
--
-- pgmq.tasker_rebuild_dispatch() writes the branches; a row trigger on pgmq.meta
-- runs it whenever a queue is created or dropped, so a queue is in the dispatch as
-- soon as pgmq.create commits. It is SECURITY DEFINER because it replaces functions
-- owned by the migrating role, while queues may be created by service roles.
--
-- Nothing here runs on a database whose pgmq is the real extension or came from
-- elsewhere (a reference database): only the project's own SQL is marked by the
-- schema comment 00003 sets.

-- +goose Up
-- +goose StatementBegin
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')
       OR coalesce(obj_description('pgmq'::regnamespace, 'pg_namespace'), '') NOT LIKE 'tasker:%' THEN
        RAISE NOTICE 'pgmq is not the project''s own SQL: static dispatch not installed';
        RETURN;
    END IF;

    EXECUTE $def$
CREATE OR REPLACE FUNCTION pgmq.tasker_rebuild_dispatch() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pgmq AS $fn$
DECLARE
    q        record;
    send_br  text := '';
    batch_br text := '';
    read_br  text := '';
    del_br   text := '';
    vt_br    text := '';
BEGIN
    -- One rebuild at a time: the next one waits and then sees this one's queues.
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.tasker_rebuild_dispatch'));
    FOR q IN SELECT m.queue_name::text AS name, format('pgmq.%I', 'q_' || m.queue_name) AS tbl
               FROM pgmq.meta m
              WHERE m.queue_name::text ~ '^[a-z0-9_]{1,47}$'
                AND to_regclass(format('pgmq.%I', 'q_' || m.queue_name)) IS NOT NULL
              ORDER BY m.queue_name LOOP
        send_br := send_br || format(
            E'\n    ELSIF $1 = %L THEN\n        RETURN QUERY INSERT INTO %s AS q (vt, message, headers) VALUES ($4, $2, $3) RETURNING q.msg_id;',
            q.name, q.tbl);
        batch_br := batch_br || format(
            E'\n    ELSIF $1 = %L THEN\n        RETURN QUERY INSERT INTO %s AS q (vt, message, headers)'
            ' SELECT $4, m.msg, $3[m.ord] FROM unnest($2) WITH ORDINALITY AS m(msg, ord) ORDER BY m.ord RETURNING q.msg_id;',
            q.name, q.tbl);
        read_br := read_br || format(
            E'\n    ELSIF $1 = %L THEN\n        RETURN QUERY WITH cte AS ('
            'SELECT r.msg_id FROM %s r WHERE r.vt <= clock_timestamp() AND (cond = ''{}''::jsonb OR r.message @> cond)'
            ' ORDER BY r.msg_id ASC LIMIT $3 FOR UPDATE SKIP LOCKED)'
            ' UPDATE %s m SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1'
            ' FROM cte WHERE m.msg_id = cte.msg_id'
            ' RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers;',
            q.name, q.tbl, q.tbl);
        del_br := del_br || format(
            E'\n    ELSIF $1 = %L THEN\n        RETURN QUERY DELETE FROM %s d WHERE d.msg_id = ANY($2) RETURNING d.msg_id;',
            q.name, q.tbl);
        vt_br := vt_br || format(
            E'\n    ELSIF $1 = %L THEN\n        RETURN QUERY UPDATE %s u SET vt = clock_timestamp() + make_interval(secs => $3)'
            ' WHERE u.msg_id = $2 RETURNING u.msg_id, u.read_ct, u.enqueued_at, u.vt, u.message, u.headers;',
            q.name, q.tbl);
    END LOOP;

    EXECUTE format($src$
CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $body$
#variable_conflict use_column
BEGIN
    IF false THEN NULL;%s
    ELSE
        PERFORM pgmq.validate_queue_name($1);
        RETURN QUERY EXECUTE format(
            'INSERT INTO pgmq.%%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
            'q_' || $1) USING $4, $2, $3;
    END IF;
END
$body$$src$, send_br);

    EXECUTE format($src$
CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $body$
#variable_conflict use_column
BEGIN
    IF $3 IS NOT NULL AND cardinality($3) <> cardinality($2) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('send_batch: %%s headers for %%s messages', cardinality($3), cardinality($2));
    END IF;
    IF false THEN NULL;%s
    ELSE
        PERFORM pgmq.validate_queue_name($1);
        RETURN QUERY EXECUTE format(
            'INSERT INTO pgmq.%%I (vt, message, headers)
             SELECT $1, m.msg, $3[m.ord] FROM unnest($2) WITH ORDINALITY AS m(msg, ord)
             ORDER BY m.ord RETURNING msg_id',
            'q_' || $1) USING $4, $2, $3;
    END IF;
END
$body$$src$, batch_br);

    EXECUTE format($src$
CREATE OR REPLACE FUNCTION pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $body$
#variable_conflict use_column
DECLARE
    cond jsonb := coalesce($4, '{}'::jsonb);
BEGIN
    IF false THEN NULL;%s
    ELSE
        PERFORM pgmq.validate_queue_name($1);
        RETURN QUERY EXECUTE format(
            'WITH cte AS (
                 SELECT msg_id FROM pgmq.%%1$I
                 WHERE vt <= clock_timestamp() AND ($3 = ''{}''::jsonb OR message @> $3)
                 ORDER BY msg_id ASC
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             UPDATE pgmq.%%1$I m
                SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
               FROM cte
              WHERE m.msg_id = cte.msg_id
             RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers',
            'q_' || $1) USING $3, $2, cond;
    END IF;
END
$body$$src$, read_br);

    EXECUTE format($src$
CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $body$
#variable_conflict use_column
BEGIN
    IF false THEN NULL;%s
    ELSE
        PERFORM pgmq.validate_queue_name($1);
        RETURN QUERY EXECUTE format('DELETE FROM pgmq.%%I WHERE msg_id = ANY($1) RETURNING msg_id',
            'q_' || $1) USING $2;
    END IF;
END
$body$$src$, del_br);

    EXECUTE format($src$
CREATE OR REPLACE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql AS $body$
#variable_conflict use_column
BEGIN
    IF false THEN NULL;%s
    ELSE
        PERFORM pgmq.validate_queue_name($1);
        RETURN QUERY EXECUTE format(
            'UPDATE pgmq.%%I SET vt = clock_timestamp() + make_interval(secs => $2)
              WHERE msg_id = $1
             RETURNING msg_id, read_ct, enqueued_at, vt, message, headers',
            'q_' || $1) USING $2, $3;
    END IF;
END
$body$$src$, vt_br);
END
$fn$;
$def$;

    EXECUTE $def$
CREATE OR REPLACE FUNCTION pgmq.tasker_meta_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.tasker_rebuild_dispatch();
    RETURN NULL;
END
$fn$;
$def$;

    DROP TRIGGER IF EXISTS tasker_rebuild_dispatch_trigger ON pgmq.meta;
    CREATE TRIGGER tasker_rebuild_dispatch_trigger AFTER INSERT OR DELETE ON pgmq.meta
        FOR EACH ROW EXECUTE FUNCTION pgmq.tasker_meta_changed();

    PERFORM pgmq.tasker_rebuild_dispatch();
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty, like 00003: the functions keep their semantics either way.
