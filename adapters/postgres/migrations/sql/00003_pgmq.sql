-- The queue layer (contract §4.2): pgmq 1.5 tables and functions.
--
-- A database that already has a pgmq schema with pgmq.read and pgmq.send (the real
-- extension, a reference database, or this migration applied before) is left alone.
-- Otherwise the real extension is used when CREATE EXTENSION pgmq succeeds, and only
-- when it does not is the project's own pgmq-compatible SQL installed.
--
-- Plain SQL cannot branch, so the project's implementation is first built in the
-- staging schema tasker_pgmq_install and then, depending on what the database already
-- has, renamed to pgmq, moved into an existing empty pgmq schema, or dropped. All
-- function bodies reach tables through dynamic SQL on pgmq.q_<queue>/pgmq.a_<queue>,
-- so they work unchanged after the rename.

-- +goose Up
-- The delegating SQL functions call pgmq.* which exists only after the rename below.
SET LOCAL check_function_bodies = false;
DROP SCHEMA IF EXISTS tasker_pgmq_install CASCADE;
CREATE SCHEMA tasker_pgmq_install;

CREATE TABLE tasker_pgmq_install.meta (
    queue_name     varchar     NOT NULL UNIQUE,
    is_partitioned boolean     NOT NULL,
    is_unlogged    boolean     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE tasker_pgmq_install.message_record AS (
    msg_id      bigint,
    read_ct     integer,
    enqueued_at timestamptz,
    vt          timestamptz,
    message     jsonb,
    headers     jsonb
);

CREATE TYPE tasker_pgmq_install.metrics_result AS (
    queue_name           text,
    queue_length         bigint,
    newest_msg_age_sec   integer,
    oldest_msg_age_sec   integer,
    total_messages       bigint,
    scrape_time          timestamptz,
    queue_visible_length bigint
);

-- validate_queue_name rejects names that are unsafe as table suffixes or exceed
-- pgmq's 47-character limit (contract §4.1, D-k), before any SQL touches a table.
-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.validate_queue_name(queue_name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF queue_name IS NULL OR queue_name !~ '^[a-z0-9_]+$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid queue name %L: must match ^[a-z0-9_]+$', queue_name);
    END IF;
    IF length(queue_name) > 47 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid queue name %L: longer than 47 characters', queue_name);
    END IF;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install."create"(queue_name text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    -- Serialise concurrent creators of one queue: CREATE TABLE IF NOT EXISTS alone
    -- races on the catalog's unique indexes.
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id      bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
            read_ct     integer NOT NULL DEFAULT 0,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            vt          timestamptz NOT NULL,
            message     jsonb,
            headers     jsonb)', 'q_' || queue_name);
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS pgmq.%I (
            msg_id      bigint PRIMARY KEY,
            read_ct     integer NOT NULL DEFAULT 0,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            archived_at timestamptz NOT NULL DEFAULT now(),
            vt          timestamptz NOT NULL,
            message     jsonb,
            headers     jsonb)', 'a_' || queue_name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)',
        'q_' || queue_name || '_vt_idx', 'q_' || queue_name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
        'archived_at_idx_' || queue_name, 'a_' || queue_name);
    EXECUTE 'INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
             VALUES ($1, false, false) ON CONFLICT (queue_name) DO NOTHING'
        USING queue_name;
END
$fn$;
-- +goose StatementEnd

-- The send family: the two timestamptz forms do the work, the others delegate.
-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send(queue_name text, msg jsonb, headers jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
        'q_' || queue_name) USING delay, msg, headers;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send(queue_name, msg, headers, clock_timestamp() + make_interval(secs => delay));
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send(queue_name text, msg jsonb)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send(queue_name, msg, NULL::jsonb, 0);
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send(queue_name, msg, NULL::jsonb, delay);
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send(queue_name, msg, headers, 0);
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send(queue_name text, msg jsonb, delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send(queue_name, msg, NULL::jsonb, delay);
$fn$;
-- +goose StatementEnd

-- send_batch: headers[i] belongs to msgs[i]; a NULL headers array means no headers.
-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('send_batch: %s headers for %s messages', cardinality(headers), cardinality(msgs));
    END IF;
    RETURN QUERY EXECUTE format(
        'INSERT INTO pgmq.%I (vt, message, headers)
         SELECT $1, m.msg, $3[m.ord] FROM unnest($2) WITH ORDINALITY AS m(msg, ord)
         ORDER BY m.ord RETURNING msg_id',
        'q_' || queue_name) USING delay, msgs, headers;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send_batch(queue_name, msgs, headers, clock_timestamp() + make_interval(secs => delay));
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send_batch(queue_name, msgs, NULL::jsonb[], 0);
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send_batch(queue_name, msgs, NULL::jsonb[], delay);
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send_batch(queue_name, msgs, headers, 0);
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.send_batch(queue_name text, msgs jsonb[], delay timestamptz)
RETURNS SETOF bigint LANGUAGE sql AS $fn$
    SELECT pgmq.send_batch(queue_name, msgs, NULL::jsonb[], delay);
$fn$;
-- +goose StatementEnd

-- read takes up to qty visible messages in msg_id order. SKIP LOCKED lets concurrent
-- readers split the queue instead of blocking on, or double-delivering, a row.
-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.read(queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}')
RETURNS SETOF tasker_pgmq_install.message_record LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    RETURN QUERY EXECUTE format(
        'WITH cte AS (
             SELECT msg_id FROM pgmq.%1$I
             WHERE vt <= clock_timestamp() AND ($3 = ''{}''::jsonb OR message @> $3)
             ORDER BY msg_id ASC
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         UPDATE pgmq.%1$I m
            SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
           FROM cte
          WHERE m.msg_id = cte.msg_id
         RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers',
        'q_' || queue_name) USING qty, vt, coalesce(conditional, '{}'::jsonb);
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    RETURN QUERY EXECUTE format('DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id',
        'q_' || queue_name) USING msg_ids;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.delete(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
    SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id]));
$fn$;
-- +goose StatementEnd

-- archive moves rows to a_<queue> in one statement, so a message is never in both
-- tables nor in neither.
-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    RETURN QUERY EXECUTE format(
        'WITH archived AS (
             DELETE FROM pgmq.%I WHERE msg_id = ANY($1)
             RETURNING msg_id, read_ct, enqueued_at, vt, message, headers)
         INSERT INTO pgmq.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
         SELECT msg_id, read_ct, enqueued_at, vt, message, headers FROM archived
         RETURNING msg_id',
        'q_' || queue_name, 'a_' || queue_name) USING msg_ids;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.archive(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $fn$
    SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id]));
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF tasker_pgmq_install.message_record LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    RETURN QUERY EXECUTE format(
        'UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $2)
          WHERE msg_id = $1
         RETURNING msg_id, read_ct, enqueued_at, vt, message, headers',
        'q_' || queue_name) USING msg_id, vt;
END
$fn$;
-- +goose StatementEnd

-- metrics: total_messages is the identity sequence's position, i.e. every message
-- ever sent, as in pgmq.
-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.metrics(queue_name text)
RETURNS tasker_pgmq_install.metrics_result LANGUAGE plpgsql AS $fn$
DECLARE
    result pgmq.metrics_result;
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    EXECUTE format(
        'WITH q AS (
             SELECT count(*) AS queue_length,
                    count(*) FILTER (WHERE vt <= clock_timestamp()) AS visible,
                    extract(epoch FROM (now() - max(enqueued_at)))::integer AS newest,
                    extract(epoch FROM (now() - min(enqueued_at)))::integer AS oldest
               FROM pgmq.%I),
              s AS (SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS total FROM %s)
         SELECT $1::text, q.queue_length, q.newest, q.oldest, s.total, now(), q.visible
           FROM q, s',
        'q_' || queue_name,
        pg_get_serial_sequence(format('pgmq.%I', 'q_' || queue_name), 'msg_id'))
        INTO result USING queue_name;
    RETURN result;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.metrics_all()
RETURNS SETOF tasker_pgmq_install.metrics_result LANGUAGE plpgsql AS $fn$
DECLARE
    qname  text;
    result pgmq.metrics_result;
BEGIN
    FOR qname IN EXECUTE 'SELECT queue_name FROM pgmq.meta ORDER BY queue_name' LOOP
        BEGIN
            result := pgmq.metrics(qname);
            RETURN NEXT result;
        EXCEPTION WHEN undefined_table THEN
            NULL; -- dropped concurrently
        END;
    END LOOP;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.purge_queue(queue_name text)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    deleted bigint;
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    EXECUTE format('WITH d AS (DELETE FROM pgmq.%I RETURNING 1) SELECT count(*) FROM d',
        'q_' || queue_name) INTO deleted;
    RETURN deleted;
END
$fn$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION tasker_pgmq_install.drop_queue(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    existed boolean;
BEGIN
    PERFORM pgmq.validate_queue_name(queue_name);
    PERFORM pg_advisory_xact_lock(hashtext('pgmq.create'), hashtext(queue_name));
    existed := to_regclass(format('pgmq.%I', 'q_' || queue_name)) IS NOT NULL;
    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', 'q_' || queue_name);
    EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', 'a_' || queue_name);
    EXECUTE 'DELETE FROM pgmq.meta WHERE queue_name = $1' USING queue_name;
    RETURN existed;
END
$fn$;
-- +goose StatementEnd

-- Install, keep or discard the staged implementation.
-- +goose StatementBegin
DO $do$
DECLARE
    has_pgmq_api boolean;
    obj record;
BEGIN
    SELECT count(DISTINCT p.proname) = 2 INTO has_pgmq_api
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'pgmq' AND p.proname IN ('read', 'send');

    IF NOT has_pgmq_api AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgmq') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pgmq;
            has_pgmq_api := true;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pgmq extension unavailable (%), installing the project''s pgmq SQL', SQLERRM;
        END;
    END IF;

    IF has_pgmq_api THEN
        DROP SCHEMA tasker_pgmq_install CASCADE;
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgmq') THEN
        ALTER SCHEMA tasker_pgmq_install RENAME TO pgmq;
    ELSE
        -- An empty (or partial) pgmq schema: move our objects into it.
        FOR obj IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                    WHERE p.pronamespace = 'tasker_pgmq_install'::regnamespace LOOP
            EXECUTE format('ALTER ROUTINE %s SET SCHEMA pgmq', obj.sig);
        END LOOP;
        FOR obj IN SELECT t.typname FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid
                    WHERE t.typnamespace = 'tasker_pgmq_install'::regnamespace AND c.relkind = 'c' LOOP
            EXECUTE format('ALTER TYPE tasker_pgmq_install.%I SET SCHEMA pgmq', obj.typname);
        END LOOP;
        ALTER TABLE tasker_pgmq_install.meta SET SCHEMA pgmq;
        DROP SCHEMA tasker_pgmq_install;
    END IF;
    COMMENT ON SCHEMA pgmq IS 'tasker: the project''s pgmq 1.5 compatible queue layer (no pgmq extension)';
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty: the queues may hold messages, and pgmq may be the real extension.
