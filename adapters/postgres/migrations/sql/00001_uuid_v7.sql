-- uuid_generate_v7(): the primary-key default of every tasker_* table (contract §2).
--
-- Resolution order, never replacing a function that already exists:
--   1. an existing uuid_generate_v7() visible on the search path (pg_uuidv7 or a
--      reference database) is kept as it is;
--   2. otherwise the pg_uuidv7 extension is used when it can be created;
--   3. otherwise the project's own SQL implementation below is installed in public.
-- The fallback follows RFC 9562 §5.7: 48-bit Unix milliseconds, version 7, 12 bits of
-- sub-millisecond precision in rand_a (method 3: ids sort by creation time to about
-- a quarter microsecond), variant 10, then 62 random bits from gen_random_uuid().

-- +goose Up
-- +goose StatementBegin
DO $do$
BEGIN
    IF to_regprocedure('uuid_generate_v7()') IS NOT NULL THEN
        RETURN;
    END IF;

    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_uuidv7;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_uuidv7 unavailable (%), installing the SQL uuid_generate_v7()', SQLERRM;
    END;

    IF to_regprocedure('uuid_generate_v7()') IS NOT NULL THEN
        RETURN;
    END IF;

    EXECUTE $ddl$
        CREATE FUNCTION public.uuid_generate_v7() RETURNS uuid
        LANGUAGE plpgsql VOLATILE PARALLEL SAFE
        AS $fn$
        DECLARE
            unix_us bigint := floor(extract(epoch FROM clock_timestamp()) * 1000000);
            unix_ms bigint := unix_us / 1000;
            sub_ms  integer := ((unix_us % 1000) * 4096 / 1000)::integer;
            buf     bytea := uuid_send(gen_random_uuid());
        BEGIN
            buf := overlay(buf PLACING substring(int8send(unix_ms) FROM 3 FOR 6) FROM 1 FOR 6);
            buf := set_byte(buf, 6, 112 | (sub_ms >> 8));
            buf := set_byte(buf, 7, sub_ms & 255);
            buf := set_byte(buf, 8, 128 | (get_byte(buf, 8) & 63));
            RETURN encode(buf, 'hex')::uuid;
        END
        $fn$
    $ddl$;
    COMMENT ON FUNCTION public.uuid_generate_v7() IS
        'tasker: RFC 9562 UUIDv7 generator used when the pg_uuidv7 extension is unavailable';
END
$do$;
-- +goose StatementEnd

-- +goose Down
-- Intentionally empty: the function may belong to pg_uuidv7 or to a reference
-- database, and every tasker_* table depends on it.
