-- Stats-proof plans for the static dispatch of the project's own pgmq SQL (00005).
--
-- PL/pgSQL caches one plan per statement and session, built from the queue table's
-- statistics at that moment. A queue table analysed or vacuumed while empty (the
-- usual state of a drained queue) looks empty to the planner, and the cached plan of
-- read was then a sequential scan, a sort and a nested loop over the whole table:
-- kept for the session while the queue filled, it cost every read a pass over every
-- message, in flight or deleted but not yet vacuumed (seen: 2.3 ms per worker read
-- during a burst of 8,000 messages instead of 0.6 ms, a fifth of a seeded database's
-- throughput). pgmq's own dynamic SQL is planned on every call with the table's
-- current size, so it never had this problem.
--
-- tasker_rebuild_dispatch() is redefined so that the branches it writes keep to the
-- indexes whatever the statistics say:
--   - read updates the rows whose msg_id is in the array of the ids it locked
--     (msg_id = ANY (ARRAY(…))), a primary-key lookup per message, instead of
--     joining the locking CTE to the table, and its function turns sequential scans,
--     bitmap scans and sorts off, which leaves the ordered walk of the primary key
--     that stops after qty visible messages;
--   - delete and set_vt turn sequential scans off (primary-key lookups).
-- Names, signatures, results and semantics are unchanged (contract §4.2). As in 00005,
-- nothing runs unless pgmq is the project's own SQL.

-- +goose Up
-- +goose StatementBegin
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')
       OR coalesce(obj_description('pgmq'::regnamespace, 'pg_namespace'), '') NOT LIKE 'tasker:%' THEN
        RAISE NOTICE 'pgmq is not the project''s own SQL: stats-proof dispatch not installed';
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
            E'\n    ELSIF $1 = %L THEN\n        RETURN QUERY'
            ' UPDATE %s m SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1'
            ' WHERE m.msg_id = ANY (ARRAY(SELECT r.msg_id FROM %s r'
            ' WHERE r.vt <= clock_timestamp() AND (cond = ''{}''::jsonb OR r.message @> cond)'
            ' ORDER BY r.msg_id ASC LIMIT $3 FOR UPDATE SKIP LOCKED))'
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
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql
SET enable_seqscan = off SET enable_bitmapscan = off SET enable_sort = off AS $body$
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
RETURNS SETOF bigint LANGUAGE plpgsql
SET enable_seqscan = off AS $body$
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
RETURNS SETOF pgmq.message_record LANGUAGE plpgsql
SET enable_seqscan = off AS $body$
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

    PERFORM pgmq.tasker_rebuild_dispatch();
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty, like 00005: the functions keep their semantics either way.
