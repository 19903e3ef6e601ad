package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
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
	// stmts holds the two statements of the usual creation path.
	stmts *stmtCache
	// named caches named_step_uuid by (dependent system, step name). Named
	// steps are never changed or removed once created (contract §10.1 finds
	// or creates them), so every task of a template after the first skips
	// the lookup's round trip.
	named sync.Map
	// goTables says whether this project's own tables (migration 00008) exist;
	// probed once, on the first keyed creation.
	goTables goTablesProbe
	// group coalesces concurrent creations into shared statements and commits.
	group createGroup
}

var _ ports.TaskCreator = (*TaskStore)(nil)

// NewTaskStore returns a TaskStore over db, whose connections must use TimeZone=UTC (see Open).
func NewTaskStore(db *sqlx.DB) *TaskStore { return &TaskStore{db: db, stmts: newStmtCache(db)} }

// CreateTask inserts the task, finds or creates dependent systems and named
// steps, inserts the steps, their edges and the initial pending transitions,
// atomically: any failure leaves nothing behind. Primary keys are
// client-generated UUIDv7 so step_mapping is known without RETURNING round
// trips.
//
// Dependent systems and named steps almost always exist already (every task
// of a template shares them, and they are cached), so the usual path is one
// statement that inserts everything, atomic on its own with no BEGIN/COMMIT
// round trips; concurrent creations share that statement and its commit
// (createGroup). Only when some are missing does it find or create them
// first, in a transaction with the insert.
func (s *TaskStore) CreateTask(ctx context.Context, t ports.NewTask) (domain.TaskCreationResponse, error) {
	resp := domain.TaskCreationResponse{
		TaskUUID:          orchUUIDv7(),
		Status:            "created",
		StepCount:         len(t.Steps),
		StepMapping:       make(map[string]uuid.UUID, len(t.Steps)),
		HandlerConfigName: t.TaskName,
	}
	stepUUIDs := make([]uuid.UUID, len(t.Steps))
	for i, st := range t.Steps {
		stepUUIDs[i] = orchUUIDv7()
		resp.StepMapping[st.Name] = stepUUIDs[i]
	}
	rows, err := newTaskRows(resp.TaskUUID, t, stepUUIDs, resp.StepMapping)
	if err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("create task %s/%s: %w", t.Request.Namespace, t.Request.Name, err)
	}
	if t.IdempotencyKey != "" {
		ok, err := s.goTables.present(ctx, s.db)
		if err != nil {
			return domain.TaskCreationResponse{}, fmt.Errorf("create task %s/%s: %w", t.Request.Namespace, t.Request.Name, err)
		}
		if ok {
			return s.createKeyed(ctx, t, rows, resp)
		}
	}
	named, err := s.existingNamedSteps(ctx, t.Steps)
	if err == nil && named != nil {
		resp.CreatedAt, err = s.insertOrGroup(ctx, rows, named)
	} else if err == nil {
		err = WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
			named, err := namedStepUUIDs(ctx, tx, t.Steps)
			if err != nil {
				return err
			}
			resp.CreatedAt, err = s.insertTaskRows(ctx, tx, rows, named)
			return err
		})
	}
	if err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("create task %s/%s: %w", t.Request.Namespace, t.Request.Name, err)
	}
	return resp, nil
}

// existingNamedStepsSQL finds the named step of each (system, name) pair,
// keyed by the pair's position.
const existingNamedStepsSQL = `
SELECT s.ord, ns.named_step_uuid
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(sys, name, ord)
JOIN tasker_dependent_systems ds ON ds.name = s.sys
JOIN tasker_named_steps ns ON ns.dependent_system_uuid = ds.dependent_system_uuid AND ns.name = s.name`

// existingNamedSteps returns the named step uuid of every step, in step
// order, or nil when at least one dependent system or named step is missing.
func (s *TaskStore) existingNamedSteps(ctx context.Context, steps []ports.NewStep) ([]uuid.UUID, error) {
	systems, names := make([]string, len(steps)), make([]string, len(steps))
	out := make([]uuid.UUID, len(steps))
	cached := true
	for i, st := range steps {
		systems[i], names[i] = st.SystemDependency, st.Name
		if v, ok := s.named.Load(namedStepKey(st.SystemDependency, st.Name)); ok {
			out[i] = v.(uuid.UUID)
		} else {
			cached = false
		}
	}
	if cached {
		return out, nil
	}
	st, err := s.stmts.pooled(ctx, existingNamedStepsSQL)
	if err != nil {
		return nil, err
	}
	var found []struct {
		Ord  int       `db:"ord"`
		UUID uuid.UUID `db:"named_step_uuid"`
	}
	if err := st.SelectContext(ctx, &found, pq.Array(systems), pq.Array(names)); err != nil {
		return nil, fmt.Errorf("find named steps: %w", err)
	}
	if len(found) != len(steps) {
		return nil, nil
	}
	for _, f := range found {
		if f.Ord < 1 || f.Ord > len(steps) {
			return nil, fmt.Errorf("find named steps: position %d out of range", f.Ord)
		}
		out[f.Ord-1] = f.UUID
	}
	for i, id := range out {
		s.named.Store(namedStepKey(systems[i], names[i]), id)
	}
	return out, nil
}

func namedStepKey(system, name string) string { return system + "\x00" + name }

// taskRows are the parameters of insertTaskSQL except the named steps.
type taskRows struct {
	taskUUID, named, taskTransID        uuid.UUID
	initiator, sourceSystem, reason     string
	bypass, tags, context, identityHash string
	priority, claimTimeout              int
	stepIDs, stepTransIDs               []string
	retryable                           []bool
	limits                              []int64
	inputs                              []sql.NullString
	edgeIDs, edgeFrom, edgeTo           []string
}

// newTaskRows prepares every row of a new task; an unknown dependency is an
// error before anything is written.
func newTaskRows(taskUUID uuid.UUID, t ports.NewTask, stepUUIDs []uuid.UUID, mapping map[string]uuid.UUID) (taskRows, error) {
	r := t.Request
	tags, err := json.Marshal(orchNonNil(r.Tags))
	if err != nil {
		return taskRows{}, fmt.Errorf("encode tags: %w", err)
	}
	bypass, err := json.Marshal(orchNonNil(r.BypassSteps))
	if err != nil {
		return taskRows{}, fmt.Errorf("encode bypass_steps: %w", err)
	}
	rows := taskRows{taskUUID: taskUUID, named: t.NamedTaskUUID, taskTransID: orchUUIDv7(),
		initiator: r.Initiator, sourceSystem: r.SourceSystem, reason: r.Reason,
		bypass: string(bypass), tags: string(tags), context: string(t.Context), identityHash: t.IdentityHash,
		priority: 0, claimTimeout: 60, stepIDs: orchUUIDStrings(stepUUIDs),
		retryable: make([]bool, len(t.Steps)), limits: make([]int64, len(t.Steps)),
		inputs: make([]sql.NullString, len(t.Steps))}
	if r.Priority != nil {
		rows.priority = *r.Priority
	}
	if r.ClaimTimeoutSeconds != nil {
		rows.claimTimeout = *r.ClaimTimeoutSeconds
	}
	for i, st := range t.Steps {
		rows.retryable[i], rows.limits[i] = st.Retryable, int64(st.RetryLimit)
		if len(st.Inputs) > 0 {
			rows.inputs[i] = sql.NullString{String: string(st.Inputs), Valid: true}
		}
		rows.stepTransIDs = append(rows.stepTransIDs, orchUUIDv7().String())
		for _, dep := range st.Dependencies {
			parent, ok := mapping[dep]
			if !ok {
				return taskRows{}, fmt.Errorf("step %q depends on unknown step %q", st.Name, dep)
			}
			rows.edgeIDs = append(rows.edgeIDs, orchUUIDv7().String())
			rows.edgeFrom = append(rows.edgeFrom, parent.String())
			rows.edgeTo = append(rows.edgeTo, stepUUIDs[i].String())
		}
	}
	return rows, nil
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

// insertTaskSQL writes a whole task in one statement (§10.1 steps 2–5): the
// task row, the steps in template order (the ordinality keeps created_at ties
// in that order for ORDER BY created_at), the 'provides' edges and the initial
// pending transitions (from_state NULL, sort_key 1, most_recent,
// initialization metadata). Foreign keys are checked at the end of the
// statement, so children may reference the task inserted beside them.
const insertTaskSQL = `
WITH task AS (
	INSERT INTO tasker_tasks (task_uuid, named_task_uuid, complete, requested_at, initiator, source_system, reason,
	                          bypass_steps, tags, context, identity_hash, priority, claim_timeout_seconds,
	                          created_at, updated_at)
	VALUES ($1, $2, false, NOW(), $3, $4, $5, $6::json, $7::jsonb, $8::jsonb, $9, $10, $11, NOW(), NOW())
	RETURNING created_at
),
steps AS (
	INSERT INTO tasker_workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid, retryable, retry_limit,
	                                   in_process, processed, attempts, inputs, skippable, created_at, updated_at)
	SELECT s.id, $1, s.named, s.retryable, s.lim, false, false, 0, s.inputs::jsonb, false, NOW(), NOW()
	FROM unnest($12::uuid[], $13::uuid[], $14::boolean[], $15::integer[], $16::text[])
	     WITH ORDINALITY AS s(id, named, retryable, lim, inputs, ord)
	ORDER BY s.ord
	RETURNING 1
),
edges AS (
	INSERT INTO tasker_workflow_step_edges (workflow_step_edge_uuid, from_step_uuid, to_step_uuid, name, created_at, updated_at)
	SELECT e.id, e.f, e.t, 'provides', NOW(), NOW()
	FROM unnest($17::uuid[], $18::uuid[], $19::uuid[]) AS e(id, f, t)
	RETURNING 1
),
task_transition AS (
	INSERT INTO tasker_task_transitions (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key,
	                                     most_recent, created_at, updated_at)
	VALUES ($20, $1, 'pending', NULL, $21::jsonb, 1, true, NOW(), NOW())
	RETURNING 1
),
step_transitions AS (
	INSERT INTO tasker_workflow_step_transitions (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state,
	                                              metadata, sort_key, most_recent, created_at, updated_at)
	SELECT s.id, s.step, 'pending', NULL, $21::jsonb, 1, true, NOW(), NOW()
	FROM unnest($22::uuid[], $12::uuid[]) AS s(id, step)
	RETURNING 1
)
SELECT task.created_at, (SELECT COUNT(*) FROM steps) AS steps, (SELECT COUNT(*) FROM edges) AS edges,
       (SELECT COUNT(*) FROM task_transition) + (SELECT COUNT(*) FROM step_transitions) AS transitions
FROM task`

// insertTaskRows runs insertTaskSQL on the pool (tx nil) or in tx, and
// checks every row was written.
func (s *TaskStore) insertTaskRows(ctx context.Context, tx *sqlx.Tx, r taskRows, named []uuid.UUID) (time.Time, error) {
	var st *sqlx.Stmt
	var err error
	if tx == nil {
		st, err = s.stmts.pooled(ctx, insertTaskSQL)
	} else {
		st, err = s.stmts.inTx(ctx, tx, insertTaskSQL)
	}
	if err != nil {
		return time.Time{}, err
	}
	var out struct {
		CreatedAt   time.Time `db:"created_at"`
		Steps       int       `db:"steps"`
		Edges       int       `db:"edges"`
		Transitions int       `db:"transitions"`
	}
	err = st.GetContext(ctx, &out, r.taskUUID, r.named, r.initiator, r.sourceSystem, r.reason, r.bypass, r.tags,
		r.context, r.identityHash, r.priority, r.claimTimeout,
		pq.Array(r.stepIDs), pq.Array(orchUUIDStrings(named)), pq.Array(r.retryable), pq.Array(r.limits), pq.Array(r.inputs),
		pq.Array(r.edgeIDs), pq.Array(r.edgeFrom), pq.Array(r.edgeTo),
		r.taskTransID, string(domain.InitialTransitionMetadata), pq.Array(r.stepTransIDs))
	if err != nil {
		return time.Time{}, fmt.Errorf("insert task: %w", err)
	}
	if out.Steps != len(r.stepIDs) || out.Edges != len(r.edgeIDs) || out.Transitions != len(r.stepIDs)+1 {
		return time.Time{}, fmt.Errorf("insert task: wrote %d steps, %d edges, %d transitions", out.Steps, out.Edges, out.Transitions)
	}
	return out.CreatedAt.UTC(), nil
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
