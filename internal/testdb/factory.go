package testdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

// Factories write rows with the same SQL shapes as production code (contract
// §6.4, §10.1, §3.3) so tests exercise realistic data. They fail the test on
// any error. They deliberately do not import adapters/postgres, so tests of
// that package can use them without an import cycle.

// Ptr returns a pointer to v, for the optional fields of the specs below.
func Ptr[T any](v T) *T { return &v }

// CreateNamespace finds or creates a namespace by name and returns its uuid.
func CreateNamespace(t testing.TB, db *sqlx.DB, name string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `INSERT INTO tasker_task_namespaces (name, description, created_at, updated_at)
		VALUES ($1, $2, NOW(), NOW()) ON CONFLICT (name) DO NOTHING`, name, "Namespace "+name)
	require.NoError(t, err, "create namespace %s", name)
	var id uuid.UUID
	require.NoError(t, db.GetContext(ctx, &id, `SELECT task_namespace_uuid FROM tasker_task_namespaces WHERE name = $1`, name))
	return id
}

// RegisterTemplate upserts the named task for tmpl (namespace created if
// needed) with configuration = json.Marshal(tmpl), like registration (§6.4),
// and returns the named_task_uuid.
func RegisterTemplate(t testing.TB, db *sqlx.DB, tmpl domain.TaskTemplate) uuid.UUID {
	t.Helper()
	nsUUID := CreateNamespace(t, db, tmpl.NamespaceName)
	cfg, err := json.Marshal(tmpl)
	require.NoError(t, err)
	var id uuid.UUID
	err = db.GetContext(context.Background(), &id, `
		INSERT INTO tasker_named_tasks (task_namespace_uuid, name, version, description, configuration, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::jsonb, NOW(), NOW())
		ON CONFLICT (task_namespace_uuid, name, version) DO UPDATE
		SET description = EXCLUDED.description, configuration = EXCLUDED.configuration, updated_at = NOW()
		RETURNING named_task_uuid`, nsUUID, tmpl.Name, tmpl.Version, tmpl.Description, string(cfg))
	require.NoError(t, err, "register template %s/%s@%s", tmpl.NamespaceName, tmpl.Name, tmpl.Version)
	return id
}

// StepSpec describes one step of a TaskSpec.
type StepSpec struct {
	Name string
	// Deps names the parent steps (edges from each dep to this step).
	Deps []string
	// Retryable defaults to true when nil.
	Retryable *bool
	// RetryLimit is the maximum number of attempts; 0 means the default 3.
	RetryLimit int
	// Inputs is stored in tasker_workflow_steps.inputs (NULL when nil).
	Inputs map[string]any
	// SystemDependency is the dependent system; "" means "default".
	SystemDependency string
}

// TaskSpec describes a task to create with CreateTask.
type TaskSpec struct {
	// Namespace, Name, Version identify the named task; defaults "test_ns",
	// "test_task", "1.0.0". A template is registered from the spec when that
	// version does not exist yet; an existing registration is reused as is.
	Namespace, Name, Version string
	// Context is stored as tasker_tasks.context (NULL when nil).
	Context  any
	Priority int
	Steps    []StepSpec
}

// CreatedTask is what CreateTask wrote.
type CreatedTask struct {
	TaskUUID      uuid.UUID
	NamedTaskUUID uuid.UUID
	// Steps maps step name → workflow_step_uuid.
	Steps map[string]uuid.UUID
}

// TemplateFromSpec builds the domain template a TaskSpec implies; each step's
// handler callable is its name.
func TemplateFromSpec(spec TaskSpec) domain.TaskTemplate {
	spec = withSpecDefaults(spec)
	tmpl := domain.TaskTemplate{Name: spec.Name, NamespaceName: spec.Namespace, Version: spec.Version,
		SystemDependencies: domain.SystemDependencies{Primary: "default"}}
	for _, s := range spec.Steps {
		d := domain.StepDefinition{Name: s.Name, Handler: domain.HandlerDefinition{Callable: s.Name, Initialization: s.Inputs},
			Dependencies: s.Deps, Retry: domain.RetryConfiguration{Retryable: s.Retryable == nil || *s.Retryable,
				Limit: int64(s.RetryLimit), Backoff: domain.BackoffExponential}}
		if d.Retry.Limit == 0 {
			d.Retry.Limit = 3
		}
		if s.SystemDependency != "" {
			d.SystemDependency = Ptr(s.SystemDependency)
		}
		tmpl.Steps = append(tmpl.Steps, d)
	}
	return tmpl
}

func withSpecDefaults(spec TaskSpec) TaskSpec {
	if spec.Namespace == "" {
		spec.Namespace = "test_ns"
	}
	if spec.Name == "" {
		spec.Name = "test_task"
	}
	if spec.Version == "" {
		spec.Version = "1.0.0"
	}
	return spec
}

// CreateTask writes a task the way task initialization does (contract §10.1):
// task row, dependent systems and named steps (find or create), one workflow
// step per StepSpec in order, 'provides' edges from each dependency, and the
// initial pending transition (from_state NULL, sort_key 1, most_recent,
// domain.InitialTransitionMetadata) for the task and every step.
func CreateTask(t testing.TB, db *sqlx.DB, spec TaskSpec) CreatedTask {
	t.Helper()
	ctx := context.Background()
	spec = withSpecDefaults(spec)
	var namedTask uuid.UUID
	err := db.GetContext(ctx, &namedTask, `SELECT nt.named_task_uuid FROM tasker_named_tasks nt
		JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
		WHERE n.name = $1 AND nt.name = $2 AND nt.version = $3`, spec.Namespace, spec.Name, spec.Version)
	if err != nil {
		namedTask = RegisterTemplate(t, db, TemplateFromSpec(spec))
	}
	var ctxJSON any
	canonical := "null"
	if spec.Context != nil {
		b, err := json.Marshal(spec.Context)
		require.NoError(t, err)
		ctxJSON, canonical = string(b), string(b)
	}
	sum := sha256.Sum256([]byte(namedTask.String() + canonical))
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()

	out := CreatedTask{NamedTaskUUID: namedTask, Steps: map[string]uuid.UUID{}}
	require.NoError(t, tx.GetContext(ctx, &out.TaskUUID, `
		INSERT INTO tasker_tasks (named_task_uuid, complete, requested_at, context, identity_hash, priority,
		                          claim_timeout_seconds, tags, bypass_steps, created_at, updated_at)
		VALUES ($1, false, NOW(), $2::jsonb, $3, $4, 60, '[]'::jsonb, '[]'::json, NOW(), NOW())
		RETURNING task_uuid`, namedTask, ctxJSON, hex.EncodeToString(sum[:]), spec.Priority), "insert task")

	for _, s := range spec.Steps {
		system := s.SystemDependency
		if system == "" {
			system = "default"
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tasker_dependent_systems (name, created_at, updated_at)
			VALUES ($1, NOW(), NOW()) ON CONFLICT (name) DO NOTHING`, system)
		require.NoError(t, err)
		var sysUUID, namedStep uuid.UUID
		require.NoError(t, tx.GetContext(ctx, &sysUUID, `SELECT dependent_system_uuid FROM tasker_dependent_systems WHERE name = $1`, system))
		_, err = tx.ExecContext(ctx, `INSERT INTO tasker_named_steps (dependent_system_uuid, name, created_at, updated_at)
			VALUES ($1, $2, NOW(), NOW()) ON CONFLICT (dependent_system_uuid, name) DO NOTHING`, sysUUID, s.Name)
		require.NoError(t, err)
		require.NoError(t, tx.GetContext(ctx, &namedStep, `SELECT named_step_uuid FROM tasker_named_steps
			WHERE dependent_system_uuid = $1 AND name = $2`, sysUUID, s.Name))
		limit := s.RetryLimit
		if limit == 0 {
			limit = 3
		}
		var inputs any
		if len(s.Inputs) > 0 {
			b, err := json.Marshal(s.Inputs)
			require.NoError(t, err)
			inputs = string(b)
		}
		var stepUUID uuid.UUID
		require.NoError(t, tx.GetContext(ctx, &stepUUID, `
			INSERT INTO tasker_workflow_steps (task_uuid, named_step_uuid, retryable, retry_limit, in_process, processed,
			                                   attempts, inputs, skippable, created_at, updated_at)
			VALUES ($1, $2, $3, $4, false, false, 0, $5::jsonb, false, NOW(), NOW())
			RETURNING workflow_step_uuid`, out.TaskUUID, namedStep, s.Retryable == nil || *s.Retryable, limit, inputs),
			"insert step %s", s.Name)
		out.Steps[s.Name] = stepUUID
	}
	for _, s := range spec.Steps {
		for _, dep := range s.Deps {
			from, ok := out.Steps[dep]
			require.True(t, ok, "step %s depends on unknown step %s", s.Name, dep)
			_, err := tx.ExecContext(ctx, `INSERT INTO tasker_workflow_step_edges (from_step_uuid, to_step_uuid, name, created_at, updated_at)
				VALUES ($1, $2, 'provides', NOW(), NOW())`, from, out.Steps[s.Name])
			require.NoError(t, err)
		}
	}
	initial := string(domain.InitialTransitionMetadata)
	_, err = tx.ExecContext(ctx, `INSERT INTO tasker_task_transitions (task_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
		VALUES ($1, 'pending', NULL, $2::jsonb, 1, true, NOW(), NOW())`, out.TaskUUID, initial)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO tasker_workflow_step_transitions (workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
		SELECT workflow_step_uuid, 'pending', NULL, $2::jsonb, 1, true, NOW(), NOW() FROM tasker_workflow_steps WHERE task_uuid = $1`,
		out.TaskUUID, initial)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	return out
}

// SetStepState makes state the current state of a step for test setup: it
// appends a transition row (sort_key MAX+1, from_state = previous state or
// 'pending', most_recent flipped, metadata {"test_setup": true}) and applies the
// §3.2 step-row flags of that state (results untouched; see SetStepResults).
// It bypasses the state machine on purpose, so any state can be reached.
func SetStepState(t testing.TB, db *sqlx.DB, stepUUID uuid.UUID, state domain.StepState) {
	t.Helper()
	require.True(t, state.Valid(), "invalid step state %q", state)
	var q string
	switch state {
	case domain.StepInProgress:
		q = `UPDATE tasker_workflow_steps SET in_process = true, attempts = COALESCE(attempts, 0) + 1,
			last_attempted_at = NOW(), updated_at = NOW() WHERE workflow_step_uuid = $1`
	case domain.StepComplete, domain.StepCancelled, domain.StepResolvedManually:
		q = `UPDATE tasker_workflow_steps SET in_process = false, processed = true, processed_at = NOW(),
			updated_at = NOW() WHERE workflow_step_uuid = $1`
	default:
		q = `UPDATE tasker_workflow_steps SET in_process = false, updated_at = NOW() WHERE workflow_step_uuid = $1`
	}
	setState(t, db, "tasker_workflow_steps", "workflow_step_uuid", "tasker_workflow_step_transitions", stepUUID, string(state), q)
}

// SetTaskState makes state the current state of a task for test setup (→
// complete also sets complete and completed_at), bypassing the state machine.
func SetTaskState(t testing.TB, db *sqlx.DB, taskUUID uuid.UUID, state domain.TaskState) {
	t.Helper()
	require.True(t, state.Valid(), "invalid task state %q", state)
	setState(t, db, "tasker_tasks", "task_uuid", "tasker_task_transitions", taskUUID, string(state),
		`UPDATE tasker_tasks SET complete = $2, completed_at = CASE WHEN $2 THEN NOW() END,
		updated_at = NOW() WHERE task_uuid = $1`, state == domain.TaskComplete)
}

// setState is the one transaction of SetStepState and SetTaskState: lock the
// row of table whose key is id (the test fails when there is none), append
// the transition to state in transitions, run update ($1 is id, then args)
// and commit.
func setState(t testing.TB, db *sqlx.DB, table, key, transitions string, id uuid.UUID, state, update string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	var one int
	require.NoError(t, tx.GetContext(ctx, &one, `SELECT 1 FROM `+table+` WHERE `+key+` = $1 FOR UPDATE`, id), "%s %s", table, id)
	appendTransition(t, tx, transitions, key, id, state)
	_, err = tx.ExecContext(ctx, update, append([]any{id}, args...)...)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
}

func appendTransition(t testing.TB, tx *sqlx.Tx, table, col string, id uuid.UUID, to string) {
	t.Helper()
	ctx := context.Background()
	var sortKey int
	var from *string
	require.NoError(t, tx.GetContext(ctx, &sortKey, `SELECT COALESCE(MAX(sort_key), 0) + 1 FROM `+table+` WHERE `+col+` = $1`, id))
	err := tx.GetContext(ctx, &from, `SELECT to_state FROM `+table+` WHERE `+col+` = $1 AND most_recent = true`, id)
	if err != nil {
		from = Ptr("pending")
	}
	_, err = tx.ExecContext(ctx, `UPDATE `+table+` SET most_recent = false, updated_at = NOW() WHERE `+col+` = $1 AND most_recent = true`, id)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO `+table+` (`+col+`, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
		VALUES ($1, $2, $3, '{"test_setup":true}'::jsonb, $4, true, NOW(), NOW())`, id, to, *from, sortKey)
	require.NoError(t, err)
}

// SetStepResults stores results verbatim in tasker_workflow_steps.results
// (NULL when nil), e.g. a full StepExecutionResult or a legacy raw value.
func SetStepResults(t testing.TB, db *sqlx.DB, stepUUID uuid.UUID, results json.RawMessage) {
	t.Helper()
	var v any
	if results != nil {
		v = string(results)
	}
	_, err := db.ExecContext(context.Background(), `UPDATE tasker_workflow_steps SET results = $2::jsonb, updated_at = NOW()
		WHERE workflow_step_uuid = $1`, stepUUID, v)
	require.NoError(t, err)
}

// CreateQueue creates a pgmq queue idempotently (pgmq.create).
func CreateQueue(t testing.TB, db *sqlx.DB, queue string) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `SELECT pgmq.create($1::text)`, queue)
	require.NoError(t, err, "create queue %s", queue)
}

// SendStepMessage creates queue if needed and sends the step message
// {"task_uuid","step_uuid"} (contract §4.3) with delay 0; it returns the msg_id.
func SendStepMessage(t testing.TB, db *sqlx.DB, queue string, taskUUID, stepUUID uuid.UUID) int64 {
	t.Helper()
	ctx := context.Background()
	CreateQueue(t, db, queue)
	msg, err := json.Marshal(domain.SimpleStepMessage{TaskUUID: taskUUID, StepUUID: stepUUID})
	require.NoError(t, err)
	var id int64
	require.NoError(t, db.GetContext(ctx, &id, `SELECT pgmq.send($1::text, $2::jsonb, $3::integer)`, queue, string(msg), 0))
	return id
}

// QueueMessage is a message row read by QueueMessages.
type QueueMessage struct {
	MsgID   int64
	ReadCt  int
	Message json.RawMessage
}

// QueueMessages returns every message currently in pgmq.q_<queue> (visible or
// not) in msg_id order, without reading them (read_ct and vt unchanged).
func QueueMessages(t testing.TB, db *sqlx.DB, queue string) []QueueMessage {
	t.Helper()
	var rows []struct {
		MsgID   int64  `db:"msg_id"`
		ReadCt  int    `db:"read_ct"`
		Message []byte `db:"message"`
	}
	require.NoError(t, db.SelectContext(context.Background(), &rows,
		`SELECT msg_id, read_ct, message FROM pgmq.`+pqIdent("q_"+queue)+` ORDER BY msg_id`), "read queue %s", queue)
	out := make([]QueueMessage, 0, len(rows))
	for _, r := range rows {
		out = append(out, QueueMessage{MsgID: r.MsgID, ReadCt: r.ReadCt, Message: json.RawMessage(r.Message)})
	}
	return out
}

// pqIdent quotes an identifier for SQL.
func pqIdent(s string) string {
	out := []byte{'"'}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, s[i])
	}
	return string(append(out, '"'))
}
