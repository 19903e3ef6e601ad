-- Tables of this project's own (issue 12), prefixed tasker_go_ so they can never
-- clash with a table tasker-core adds later. The services probe for them at
-- start: on a database made only by tasker-core's migrations they are absent,
-- and then idempotent task creation is off and /v1/dlq answers 503 (one WARN).
--
-- tasker_go_idempotency_keys: one row per Idempotency-Key of POST /v1/tasks,
-- inserted in the transaction that creates the task, so the primary key (not a
-- check-then-insert) decides which of N concurrent requests creates it.
-- request_hash is the SHA-256 of the request's canonical JSON: a replay with a
-- different body is refused. response is the original 200 body, replayed as is.
-- Rows older than orchestration.idempotency.retention_hours are deleted.
--
-- tasker_go_dlq_entries: work the orchestration gave up on (a step enqueued too
-- long with no claim, a step message archived as poison, a task in_progress too
-- long with no transition, a request message that can never be processed,
-- whose queue_name and message are kept so it can be sent again). No foreign keys: an entry outlives the rows it names
-- and must not block deleting them. One open entry per (task, step, reason)
-- keeps concurrent staleness detectors from recording one fact twice.

-- +goose Up

CREATE TABLE IF NOT EXISTS tasker_go_idempotency_keys (
    idempotency_key varchar(255) PRIMARY KEY,
    request_hash    char(64) NOT NULL,
    task_uuid       uuid NOT NULL,
    response        jsonb NOT NULL,
    created_at      timestamp(6) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE INDEX IF NOT EXISTS tasker_go_idempotency_keys_created_at_idx
    ON tasker_go_idempotency_keys (created_at);

CREATE TABLE IF NOT EXISTS tasker_go_dlq_entries (
    entry_uuid      uuid PRIMARY KEY,
    task_uuid       uuid,
    step_uuid       uuid,
    namespace       varchar(64) NOT NULL DEFAULT '',
    reason          varchar(32) NOT NULL,
    queue_name      varchar(64),
    message         jsonb,
    status          varchar(16) NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'requeued', 'resolved')),
    detail          text NOT NULL DEFAULT '',
    resolution_note text,
    created_at      timestamp(6) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    updated_at      timestamp(6) without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE UNIQUE INDEX IF NOT EXISTS tasker_go_dlq_entries_open_unique
    ON tasker_go_dlq_entries (task_uuid, COALESCE(step_uuid, '00000000-0000-0000-0000-000000000000'::uuid), reason)
    WHERE status = 'open' AND task_uuid IS NOT NULL;

CREATE INDEX IF NOT EXISTS tasker_go_dlq_entries_list_idx
    ON tasker_go_dlq_entries (created_at DESC, entry_uuid);

-- +goose Down

DROP TABLE IF EXISTS tasker_go_dlq_entries;
DROP TABLE IF EXISTS tasker_go_idempotency_keys;
