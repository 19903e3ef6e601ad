-- Tasker tables (contract §2.1–§2.9). Column names, types, defaults, NOT NULLs,
-- CHECKs and the two partial unique indexes match the reference schema exactly.
-- Deliberate difference (D-f): no UNIQUE (task_namespace_uuid, name) on
-- tasker_named_tasks, so several versions of one task may coexist.
-- created_at/updated_at have no default on purpose: every INSERT supplies NOW().
-- Foreign keys have no ON DELETE cascade (contract §2).
-- Everything is IF NOT EXISTS so the file can run against a database that
-- already has (part of) the schema.

-- +goose Up

CREATE TABLE IF NOT EXISTS tasker_task_namespaces (
    task_namespace_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    name                varchar(64) NOT NULL,
    description         varchar(255),
    created_at          timestamp(6) without time zone NOT NULL,
    updated_at          timestamp(6) without time zone NOT NULL,
    CONSTRAINT tasker_task_namespaces_name_key UNIQUE (name)
);

CREATE TABLE IF NOT EXISTS tasker_named_tasks (
    named_task_uuid     uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    task_namespace_uuid uuid NOT NULL REFERENCES tasker_task_namespaces (task_namespace_uuid),
    name                varchar(64) NOT NULL,
    description         varchar(255),
    version             varchar(16) NOT NULL DEFAULT '0.1.0',
    configuration       jsonb DEFAULT '{}'::jsonb,
    created_at          timestamp(6) without time zone NOT NULL,
    updated_at          timestamp(6) without time zone NOT NULL,
    CONSTRAINT tasker_named_tasks_namespace_name_version_unique UNIQUE (task_namespace_uuid, name, version)
);

CREATE TABLE IF NOT EXISTS tasker_dependent_systems (
    dependent_system_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    name                  varchar(64) NOT NULL,
    description           varchar(255),
    created_at            timestamp(6) without time zone NOT NULL,
    updated_at            timestamp(6) without time zone NOT NULL,
    CONSTRAINT tasker_dependent_systems_name_key UNIQUE (name)
);

CREATE TABLE IF NOT EXISTS tasker_named_steps (
    named_step_uuid       uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    dependent_system_uuid uuid NOT NULL REFERENCES tasker_dependent_systems (dependent_system_uuid),
    name                  varchar(128) NOT NULL,
    description           varchar(255),
    created_at            timestamp(6) without time zone NOT NULL,
    updated_at            timestamp(6) without time zone NOT NULL,
    CONSTRAINT tasker_named_steps_system_name_unique UNIQUE (dependent_system_uuid, name)
);

CREATE TABLE IF NOT EXISTS tasker_tasks (
    task_uuid             uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    named_task_uuid       uuid NOT NULL REFERENCES tasker_named_tasks (named_task_uuid),
    complete              boolean NOT NULL DEFAULT false,
    requested_at          timestamp without time zone NOT NULL,
    completed_at          timestamp without time zone,
    initiator             varchar(128),
    source_system         varchar(128),
    reason                varchar(128),
    bypass_steps          json,
    tags                  jsonb,
    context               jsonb,
    identity_hash         varchar(128) NOT NULL,
    created_at            timestamp(6) without time zone NOT NULL,
    updated_at            timestamp(6) without time zone NOT NULL,
    claim_id              varchar,
    reference_id          varchar(255),
    priority              integer NOT NULL DEFAULT 0,
    claim_timeout_seconds integer NOT NULL DEFAULT 60,
    claimed_at            timestamp(6) without time zone,
    claimed_by            varchar
);

CREATE TABLE IF NOT EXISTS tasker_workflow_steps (
    workflow_step_uuid      uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    task_uuid               uuid NOT NULL REFERENCES tasker_tasks (task_uuid),
    named_step_uuid         uuid NOT NULL REFERENCES tasker_named_steps (named_step_uuid),
    retryable               boolean NOT NULL DEFAULT true,
    retry_limit             integer DEFAULT 3,
    in_process              boolean NOT NULL DEFAULT false,
    processed               boolean NOT NULL DEFAULT false,
    processed_at            timestamp without time zone,
    attempts                integer,
    last_attempted_at       timestamp without time zone,
    backoff_request_seconds integer,
    inputs                  jsonb,
    results                 jsonb,
    skippable               boolean NOT NULL DEFAULT false,
    created_at              timestamp(6) without time zone NOT NULL,
    updated_at              timestamp(6) without time zone NOT NULL,
    claim_id                varchar,
    reference_id            varchar(255),
    priority                integer NOT NULL DEFAULT 0,
    claim_timeout_seconds   integer NOT NULL DEFAULT 60
);

CREATE TABLE IF NOT EXISTS tasker_workflow_step_edges (
    workflow_step_edge_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    from_step_uuid          uuid NOT NULL REFERENCES tasker_workflow_steps (workflow_step_uuid),
    to_step_uuid            uuid NOT NULL REFERENCES tasker_workflow_steps (workflow_step_uuid),
    name                    varchar NOT NULL,
    created_at              timestamp(6) without time zone NOT NULL,
    updated_at              timestamp(6) without time zone NOT NULL
);

CREATE TABLE IF NOT EXISTS tasker_task_transitions (
    task_transition_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    task_uuid            uuid NOT NULL REFERENCES tasker_tasks (task_uuid),
    to_state             varchar NOT NULL,
    from_state           varchar,
    metadata             jsonb DEFAULT '{}'::jsonb,
    sort_key             integer NOT NULL,
    most_recent          boolean NOT NULL DEFAULT false,
    created_at           timestamp(6) without time zone NOT NULL,
    updated_at           timestamp(6) without time zone NOT NULL,
    CONSTRAINT chk_task_transitions_to_state CHECK (to_state IN
        ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    CONSTRAINT chk_task_transitions_from_state CHECK (from_state IS NULL OR from_state IN
        ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually'))
);

CREATE TABLE IF NOT EXISTS tasker_workflow_step_transitions (
    workflow_step_transition_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    workflow_step_uuid            uuid NOT NULL REFERENCES tasker_workflow_steps (workflow_step_uuid),
    to_state                      varchar NOT NULL,
    from_state                    varchar,
    metadata                      jsonb DEFAULT '{}'::jsonb,
    sort_key                      integer NOT NULL,
    most_recent                   boolean NOT NULL DEFAULT false,
    created_at                    timestamp(6) without time zone NOT NULL,
    updated_at                    timestamp(6) without time zone NOT NULL,
    CONSTRAINT chk_workflow_step_transitions_to_state CHECK (to_state IN
        ('pending', 'enqueued', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    CONSTRAINT chk_workflow_step_transitions_from_state CHECK (from_state IS NULL OR from_state IN
        ('pending', 'enqueued', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually'))
);

CREATE TABLE IF NOT EXISTS tasker_named_tasks_named_steps (
    ntns_uuid           uuid PRIMARY KEY DEFAULT uuid_generate_v7(),
    named_task_uuid     uuid NOT NULL REFERENCES tasker_named_tasks (named_task_uuid),
    named_step_uuid     uuid NOT NULL REFERENCES tasker_named_steps (named_step_uuid),
    skippable           boolean NOT NULL DEFAULT false,
    default_retryable   boolean NOT NULL DEFAULT true,
    default_retry_limit integer NOT NULL DEFAULT 3,
    created_at          timestamp(6) without time zone NOT NULL,
    updated_at          timestamp(6) without time zone NOT NULL,
    CONSTRAINT tasker_named_tasks_named_steps_unique UNIQUE (named_task_uuid, named_step_uuid)
);

-- At most one current transition per entity (contract §2.8). Names are normative.
CREATE UNIQUE INDEX IF NOT EXISTS idx_task_transitions_uuid_most_recent
    ON tasker_task_transitions (task_uuid, most_recent) WHERE most_recent = true;
CREATE UNIQUE INDEX IF NOT EXISTS idx_workflow_step_transitions_uuid_most_recent
    ON tasker_workflow_step_transitions (workflow_step_uuid, most_recent) WHERE most_recent = true;

-- (entity, sort_key) is deliberately NOT unique (contract §2.8); this index
-- serves MAX(sort_key) and history reads.
CREATE INDEX IF NOT EXISTS idx_task_transitions_task_sort_key
    ON tasker_task_transitions (task_uuid, sort_key);
CREATE INDEX IF NOT EXISTS idx_workflow_step_transitions_step_sort_key
    ON tasker_workflow_step_transitions (workflow_step_uuid, sort_key);
CREATE INDEX IF NOT EXISTS idx_workflow_step_transitions_step_error
    ON tasker_workflow_step_transitions (workflow_step_uuid, created_at) WHERE to_state = 'error';

-- Hot-path lookups: parents/children of a step, steps of a task, tasks by state.
CREATE INDEX IF NOT EXISTS idx_workflow_step_edges_to_step
    ON tasker_workflow_step_edges (to_step_uuid);
CREATE INDEX IF NOT EXISTS idx_workflow_step_edges_from_step
    ON tasker_workflow_step_edges (from_step_uuid);
CREATE INDEX IF NOT EXISTS idx_workflow_steps_task
    ON tasker_workflow_steps (task_uuid);
CREATE INDEX IF NOT EXISTS idx_workflow_steps_named_step
    ON tasker_workflow_steps (named_step_uuid);
CREATE INDEX IF NOT EXISTS idx_tasks_named_task
    ON tasker_tasks (named_task_uuid);
CREATE INDEX IF NOT EXISTS idx_tasks_incomplete_created
    ON tasker_tasks (created_at) WHERE complete = false;
CREATE INDEX IF NOT EXISTS idx_named_tasks_namespace
    ON tasker_named_tasks (task_namespace_uuid);
CREATE INDEX IF NOT EXISTS idx_named_steps_dependent_system
    ON tasker_named_steps (dependent_system_uuid);

-- +goose Down

DROP TABLE IF EXISTS tasker_named_tasks_named_steps;
DROP TABLE IF EXISTS tasker_workflow_step_transitions;
DROP TABLE IF EXISTS tasker_task_transitions;
DROP TABLE IF EXISTS tasker_workflow_step_edges;
DROP TABLE IF EXISTS tasker_workflow_steps;
DROP TABLE IF EXISTS tasker_tasks;
DROP TABLE IF EXISTS tasker_named_steps;
DROP TABLE IF EXISTS tasker_dependent_systems;
DROP TABLE IF EXISTS tasker_named_tasks;
DROP TABLE IF EXISTS tasker_task_namespaces;
