-- The delegating overloads of the project's own pgmq SQL (00003) as PL/pgSQL.
--
-- As LANGUAGE sql functions called from a query's select list they are parsed and
-- planned again on every call; PL/pgSQL plans their one statement once per session.
-- Only the overloads on the services' hot paths are redefined (send with an integer
-- delay, send_batch, delete and archive of one message); names, signatures, results
-- and semantics are unchanged (contract §4.2). As with 00005, nothing runs unless
-- pgmq is the project's own SQL.

-- +goose Up
-- +goose StatementBegin
DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgmq')
       OR coalesce(obj_description('pgmq'::regnamespace, 'pg_namespace'), '') NOT LIKE 'tasker:%' THEN
        RAISE NOTICE 'pgmq is not the project''s own SQL: wrappers left as they are';
        RETURN;
    END IF;

    CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN QUERY SELECT pgmq.send($1, $2, $3, clock_timestamp() + make_interval(secs => $4));
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN QUERY SELECT pgmq.send($1, $2, NULL::jsonb, clock_timestamp() + make_interval(secs => $3));
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.send(queue_name text, msg jsonb)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN QUERY SELECT pgmq.send($1, $2, NULL::jsonb, clock_timestamp());
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN QUERY SELECT pgmq.send_batch($1, $2, $3, clock_timestamp() + make_interval(secs => $4));
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN QUERY SELECT pgmq.send_batch($1, $2, NULL::jsonb[], clock_timestamp() + make_interval(secs => $3));
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[])
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN QUERY SELECT pgmq.send_batch($1, $2, NULL::jsonb[], clock_timestamp());
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.delete(queue_name text, msg_id bigint)
    RETURNS boolean LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN EXISTS (SELECT 1 FROM pgmq.delete($1, ARRAY[$2]));
    END
    $fn$;

    CREATE OR REPLACE FUNCTION pgmq.archive(queue_name text, msg_id bigint)
    RETURNS boolean LANGUAGE plpgsql AS $fn$
    BEGIN
        RETURN EXISTS (SELECT 1 FROM pgmq.archive($1, ARRAY[$2]));
    END
    $fn$;
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty, like 00003.
