package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TaskStore writes new tasks (contract §10.1). It implements ports.TaskCreator.
type TaskStore struct {
	db *sqlx.DB
}

var _ ports.TaskCreator = (*TaskStore)(nil)

// NewTaskStore returns a TaskStore over db, whose connections must use TimeZone=UTC (see Open).
func NewTaskStore(db *sqlx.DB) *TaskStore { return &TaskStore{db: db} }

// CreateTask inserts the task, finds or creates dependent systems and named
// steps, inserts the steps, their edges and the initial pending transitions,
// all in one transaction: any failure rolls everything back. Primary keys
// are client-generated UUIDv7 so step_mapping is known without RETURNING
// round trips.
func (s *TaskStore) CreateTask(ctx context.Context, t ports.NewTask) (domain.TaskCreationResponse, error) {
	resp := domain.TaskCreationResponse{
		TaskUUID:          orchUUIDv7(),
		Status:            "created",
		StepCount:         len(t.Steps),
		StepMapping:       make(map[string]uuid.UUID, len(t.Steps)),
		HandlerConfigName: t.TaskName,
	}
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		created, err := insertTask(ctx, tx, resp.TaskUUID, t)
		if err != nil {
			return err
		}
		resp.CreatedAt = created
		namedSteps, err := namedStepUUIDs(ctx, tx, t.Steps)
		if err != nil {
			return err
		}
		stepUUIDs := make([]uuid.UUID, len(t.Steps))
		for i, st := range t.Steps {
			stepUUIDs[i] = orchUUIDv7()
			resp.StepMapping[st.Name] = stepUUIDs[i]
		}
		if err := insertSteps(ctx, tx, resp.TaskUUID, t.Steps, stepUUIDs, namedSteps); err != nil {
			return err
		}
		if err := insertEdges(ctx, tx, t.Steps, resp.StepMapping); err != nil {
			return err
		}
		return insertInitialTransitions(ctx, tx, resp.TaskUUID, stepUUIDs)
	})
	if err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("create task %s/%s: %w", t.Request.Namespace, t.Request.Name, err)
	}
	return resp, nil
}

func insertTask(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, t ports.NewTask) (time.Time, error) {
	r := t.Request
	tags, err := json.Marshal(orchNonNil(r.Tags))
	if err != nil {
		return time.Time{}, fmt.Errorf("encode tags: %w", err)
	}
	bypass, err := json.Marshal(orchNonNil(r.BypassSteps))
	if err != nil {
		return time.Time{}, fmt.Errorf("encode bypass_steps: %w", err)
	}
	priority, claimTimeout := 0, 60
	if r.Priority != nil {
		priority = *r.Priority
	}
	if r.ClaimTimeoutSeconds != nil {
		claimTimeout = *r.ClaimTimeoutSeconds
	}
	var created time.Time
	err = tx.QueryRowxContext(ctx, `
INSERT INTO tasker_tasks (task_uuid, named_task_uuid, complete, requested_at, initiator, source_system, reason,
                          bypass_steps, tags, context, identity_hash, priority, claim_timeout_seconds,
                          created_at, updated_at)
VALUES ($1, $2, false, NOW(), $3, $4, $5, $6::json, $7::jsonb, $8::jsonb, $9, $10, $11, NOW(), NOW())
RETURNING created_at`,
		taskUUID, t.NamedTaskUUID, r.Initiator, r.SourceSystem, r.Reason, string(bypass), string(tags),
		string(t.Context), t.IdentityHash, priority, claimTimeout).Scan(&created)
	if err != nil {
		return time.Time{}, fmt.Errorf("insert task: %w", err)
	}
	return created.UTC(), nil
}

// namedStepUUIDs finds or creates the dependent systems and named steps of
// all steps with four set-based statements. Each INSERT … ON CONFLICT DO
// NOTHING is followed by a separate SELECT: under READ COMMITTED the SELECT
// takes a new snapshot, so it also sees rows a concurrent creator committed
// while the INSERT waited on them.
func namedStepUUIDs(ctx context.Context, tx *sqlx.Tx, steps []ports.NewStep) ([]uuid.UUID, error) {
	var systems []string
	seen := map[string]bool{}
	for _, st := range steps {
		if !seen[st.SystemDependency] {
			seen[st.SystemDependency] = true
			systems = append(systems, st.SystemDependency)
		}
	}
	ids := make([]uuid.UUID, len(systems))
	for i := range ids {
		ids[i] = orchUUIDv7()
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_dependent_systems (dependent_system_uuid, name, created_at, updated_at)
SELECT s.id, s.name, NOW(), NOW() FROM unnest($1::uuid[], $2::text[]) AS s(id, name)
ON CONFLICT (name) DO NOTHING`, pq.Array(orchUUIDStrings(ids)), pq.Array(systems)); err != nil {
		return nil, fmt.Errorf("create dependent systems %v: %w", systems, err)
	}
	var sysRows []struct {
		UUID uuid.UUID `db:"dependent_system_uuid"`
		Name string    `db:"name"`
	}
	if err := tx.SelectContext(ctx, &sysRows, `SELECT dependent_system_uuid, name FROM tasker_dependent_systems WHERE name = ANY($1::text[])`,
		pq.Array(systems)); err != nil {
		return nil, fmt.Errorf("find dependent systems %v: %w", systems, err)
	}
	sysByName := make(map[string]uuid.UUID, len(sysRows))
	for _, r := range sysRows {
		sysByName[r.Name] = r.UUID
	}
	stepIDs, stepSys, stepNames := make([]string, len(steps)), make([]string, len(steps)), make([]string, len(steps))
	for i, st := range steps {
		sys, ok := sysByName[st.SystemDependency]
		if !ok {
			return nil, fmt.Errorf("dependent system %q not found after insert", st.SystemDependency)
		}
		stepIDs[i], stepSys[i], stepNames[i] = orchUUIDv7().String(), sys.String(), st.Name
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_named_steps (named_step_uuid, dependent_system_uuid, name, created_at, updated_at)
SELECT s.id, s.sys, s.name, NOW(), NOW() FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS s(id, sys, name)
ON CONFLICT (dependent_system_uuid, name) DO NOTHING`, pq.Array(stepIDs), pq.Array(stepSys), pq.Array(stepNames)); err != nil {
		return nil, fmt.Errorf("create named steps: %w", err)
	}
	var nsRows []struct {
		UUID   uuid.UUID `db:"named_step_uuid"`
		System uuid.UUID `db:"dependent_system_uuid"`
		Name   string    `db:"name"`
	}
	if err := tx.SelectContext(ctx, &nsRows, `
SELECT ns.named_step_uuid, ns.dependent_system_uuid, ns.name FROM tasker_named_steps ns
JOIN unnest($1::uuid[], $2::text[]) AS s(sys, name) ON ns.dependent_system_uuid = s.sys AND ns.name = s.name`,
		pq.Array(stepSys), pq.Array(stepNames)); err != nil {
		return nil, fmt.Errorf("find named steps: %w", err)
	}
	type key struct {
		sys  uuid.UUID
		name string
	}
	byKey := make(map[key]uuid.UUID, len(nsRows))
	for _, r := range nsRows {
		byKey[key{r.System, r.Name}] = r.UUID
	}
	out := make([]uuid.UUID, len(steps))
	for i, st := range steps {
		id, ok := byKey[key{sysByName[st.SystemDependency], st.Name}]
		if !ok {
			return nil, fmt.Errorf("named step %q not found after insert", st.Name)
		}
		out[i] = id
	}
	return out, nil
}

// insertSteps inserts every step in one statement, in template order (the
// ordinality keeps created_at ties in that order for ORDER BY created_at).
func insertSteps(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, steps []ports.NewStep, ids, named []uuid.UUID) error {
	retryable := make([]bool, len(steps))
	limits := make([]int64, len(steps))
	inputs := make([]sql.NullString, len(steps))
	for i, st := range steps {
		retryable[i], limits[i] = st.Retryable, int64(st.RetryLimit)
		if len(st.Inputs) > 0 {
			inputs[i] = sql.NullString{String: string(st.Inputs), Valid: true}
		}
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid, retryable, retry_limit,
                                   in_process, processed, attempts, inputs, skippable, created_at, updated_at)
SELECT s.id, $1, s.named, s.retryable, s.lim, false, false, 0, s.inputs::jsonb, false, NOW(), NOW()
FROM unnest($2::uuid[], $3::uuid[], $4::boolean[], $5::integer[], $6::text[])
     WITH ORDINALITY AS s(id, named, retryable, lim, inputs, ord)
ORDER BY s.ord`,
		taskUUID, pq.Array(orchUUIDStrings(ids)), pq.Array(orchUUIDStrings(named)), pq.Array(retryable),
		pq.Array(limits), pq.Array(inputs)); err != nil {
		return fmt.Errorf("insert steps: %w", err)
	}
	return nil
}

func insertEdges(ctx context.Context, tx *sqlx.Tx, steps []ports.NewStep, mapping map[string]uuid.UUID) error {
	var from, to []uuid.UUID
	for _, st := range steps {
		for _, dep := range st.Dependencies {
			parent, ok := mapping[dep]
			if !ok {
				return fmt.Errorf("step %q depends on unknown step %q", st.Name, dep)
			}
			from = append(from, parent)
			to = append(to, mapping[st.Name])
		}
	}
	if len(from) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(from))
	for i := range ids {
		ids[i] = orchUUIDv7()
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_workflow_step_edges (workflow_step_edge_uuid, from_step_uuid, to_step_uuid, name, created_at, updated_at)
SELECT e.id, e.f, e.t, 'provides', NOW(), NOW()
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS e(id, f, t)`,
		pq.Array(orchUUIDStrings(ids)), pq.Array(orchUUIDStrings(from)), pq.Array(orchUUIDStrings(to))); err != nil {
		return fmt.Errorf("insert edges: %w", err)
	}
	return nil
}

// insertInitialTransitions writes the creation rows of §3.3: from_state NULL,
// sort_key 1, most_recent true, initialization metadata.
func insertInitialTransitions(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, steps []uuid.UUID) error {
	meta := string(domain.InitialTransitionMetadata)
	if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_task_transitions (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key,
                                     most_recent, created_at, updated_at)
VALUES ($1, $2, 'pending', NULL, $3::jsonb, 1, true, NOW(), NOW())`, orchUUIDv7(), taskUUID, meta); err != nil {
		return fmt.Errorf("insert task transition: %w", err)
	}
	ids := make([]uuid.UUID, len(steps))
	for i := range ids {
		ids[i] = orchUUIDv7()
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state,
                                              metadata, sort_key, most_recent, created_at, updated_at)
SELECT s.id, s.step, 'pending', NULL, $3::jsonb, 1, true, NOW(), NOW()
FROM unnest($1::uuid[], $2::uuid[]) AS s(id, step)`,
		pq.Array(orchUUIDStrings(ids)), pq.Array(orchUUIDStrings(steps)), meta); err != nil {
		return fmt.Errorf("insert step transitions: %w", err)
	}
	return nil
}

// orchUUIDv7 returns a new UUIDv7. uuid.NewV7 fails only when the system random
// source fails, which leaves no sane way to continue.
func orchUUIDv7() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

func orchUUIDStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func orchNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
