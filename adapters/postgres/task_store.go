package postgres

import (
	"context"
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

// namedStepUUIDs finds or creates the dependent system and named step of
// every step. INSERT … ON CONFLICT DO NOTHING followed by a SELECT is safe
// under concurrent creators: the loser of an insert race waits for the
// winner's commit and then finds its row.
func namedStepUUIDs(ctx context.Context, tx *sqlx.Tx, steps []ports.NewStep) ([]uuid.UUID, error) {
	systems := map[string]uuid.UUID{}
	out := make([]uuid.UUID, len(steps))
	for i, st := range steps {
		sys, ok := systems[st.SystemDependency]
		if !ok {
			if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_dependent_systems (dependent_system_uuid, name, created_at, updated_at)
VALUES ($1, $2, NOW(), NOW()) ON CONFLICT (name) DO NOTHING`, orchUUIDv7(), st.SystemDependency); err != nil {
				return nil, fmt.Errorf("create dependent system %q: %w", st.SystemDependency, err)
			}
			if err := tx.GetContext(ctx, &sys, `SELECT dependent_system_uuid FROM tasker_dependent_systems WHERE name = $1`,
				st.SystemDependency); err != nil {
				return nil, fmt.Errorf("find dependent system %q: %w", st.SystemDependency, err)
			}
			systems[st.SystemDependency] = sys
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_named_steps (named_step_uuid, dependent_system_uuid, name, created_at, updated_at)
VALUES ($1, $2, $3, NOW(), NOW()) ON CONFLICT (dependent_system_uuid, name) DO NOTHING`, orchUUIDv7(), sys, st.Name); err != nil {
			return nil, fmt.Errorf("create named step %q: %w", st.Name, err)
		}
		if err := tx.GetContext(ctx, &out[i], `
SELECT named_step_uuid FROM tasker_named_steps WHERE dependent_system_uuid = $1 AND name = $2`, sys, st.Name); err != nil {
			return nil, fmt.Errorf("find named step %q: %w", st.Name, err)
		}
	}
	return out, nil
}

func insertSteps(ctx context.Context, tx *sqlx.Tx, taskUUID uuid.UUID, steps []ports.NewStep, ids, named []uuid.UUID) error {
	for i, st := range steps {
		var inputs any
		if len(st.Inputs) > 0 {
			inputs = string(st.Inputs)
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO tasker_workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid, retryable, retry_limit,
                                   in_process, processed, attempts, inputs, skippable, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, false, false, 0, $6::jsonb, false, NOW(), NOW())`,
			ids[i], taskUUID, named[i], st.Retryable, st.RetryLimit, inputs); err != nil {
			return fmt.Errorf("insert step %q: %w", st.Name, err)
		}
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
