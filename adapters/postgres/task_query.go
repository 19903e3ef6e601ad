package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TaskQuery reads tasks and steps for the orchestration API. It implements
// ports.TaskQuery with the shared readiness SQL, so the readiness the API
// shows is exactly what the enqueue cycle acts on.
type TaskQuery struct {
	db *sqlx.DB
}

var _ ports.TaskQuery = (*TaskQuery)(nil)

// NewTaskQuery returns a TaskQuery over db.
func NewTaskQuery(db *sqlx.DB) *TaskQuery { return &TaskQuery{db: db} }

const taskSelect = `
SELECT t.task_uuid, t.named_task_uuid, nt.name, n.name AS namespace, nt.version,
       COALESCE(tt.to_state, 'pending') AS state, t.created_at, t.updated_at, t.completed_at,
       t.context, t.initiator, t.source_system, t.reason, t.priority, t.tags
FROM tasker_tasks t
JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid
LEFT JOIN tasker_task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent = true`

type taskRow struct {
	TaskUUID      uuid.UUID      `db:"task_uuid"`
	NamedTaskUUID uuid.UUID      `db:"named_task_uuid"`
	Name          string         `db:"name"`
	Namespace     string         `db:"namespace"`
	Version       string         `db:"version"`
	State         string         `db:"state"`
	CreatedAt     time.Time      `db:"created_at"`
	UpdatedAt     time.Time      `db:"updated_at"`
	CompletedAt   sql.NullTime   `db:"completed_at"`
	Context       []byte         `db:"context"`
	Initiator     sql.NullString `db:"initiator"`
	SourceSystem  sql.NullString `db:"source_system"`
	Reason        sql.NullString `db:"reason"`
	Priority      int            `db:"priority"`
	Tags          []byte         `db:"tags"`
	TotalCount    int64          `db:"total_count"`
}

func (r taskRow) view() (ports.TaskView, error) {
	st, err := domain.ParseTaskState(r.State)
	if err != nil {
		return ports.TaskView{}, fmt.Errorf("task %s: %w", r.TaskUUID, err)
	}
	str := func(s sql.NullString) *string {
		if !s.Valid {
			return nil
		}
		return &s.String
	}
	return ports.TaskView{
		TaskUUID: r.TaskUUID, NamedTaskUUID: r.NamedTaskUUID, Name: r.Name, Namespace: r.Namespace,
		Version: r.Version, State: st, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		CompletedAt: orchUTCPtr(r.CompletedAt), Context: json.RawMessage(r.Context),
		Initiator: str(r.Initiator), SourceSystem: str(r.SourceSystem), Reason: str(r.Reason),
		Priority: r.Priority, Tags: json.RawMessage(r.Tags), Steps: []ports.StepView{},
	}, nil
}

// GetTask implements ports.TaskQuery.
func (q *TaskQuery) GetTask(ctx context.Context, taskUUID uuid.UUID) (ports.TaskView, error) {
	var row taskRow
	err := q.db.GetContext(ctx, &row, taskSelect+` WHERE t.task_uuid = $1`, taskUUID)
	if errors.Is(err, sql.ErrNoRows) {
		return ports.TaskView{}, &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
	}
	if err != nil {
		return ports.TaskView{}, fmt.Errorf("get task %s: %w", taskUUID, err)
	}
	v, err := row.view()
	if err != nil {
		return v, err
	}
	steps, err := loadStepViews(ctx, q.db, "ws.task_uuid = $1", "ws.workflow_step_uuid", taskUUID)
	if err != nil {
		return v, fmt.Errorf("get task %s: %w", taskUUID, err)
	}
	v.Steps = steps
	v.Counts = orchCountSteps(steps)
	return v, nil
}

// ListTasks implements ports.TaskQuery. Counts are computed for the page's
// tasks in one readiness query; the steps themselves are not returned.
func (q *TaskQuery) ListTasks(ctx context.Context, f ports.TaskFilter) (ports.TaskPage, error) {
	var lf listFilter
	lf.addIf("n.name = $%d", f.Namespace)
	lf.addIf("COALESCE(tt.to_state, 'pending') = $%d", string(f.Status))
	lf.addIf("t.initiator = $%d", f.Initiator)
	lf.addIf("t.source_system = $%d", f.SourceSystem)
	where := lf.where()
	limit, args := lf.page(f.PerPage, (f.Page-1)*f.PerPage)
	query := strings.Replace(taskSelect, "t.tags\n", "t.tags, COUNT(*) OVER () AS total_count\n", 1) + where +
		" ORDER BY t.created_at DESC, t.task_uuid DESC" + limit
	var rows []taskRow
	if err := q.db.SelectContext(ctx, &rows, query, args...); err != nil {
		return ports.TaskPage{}, fmt.Errorf("list tasks: %w", err)
	}
	page := ports.TaskPage{Tasks: make([]ports.TaskView, 0, len(rows))}
	if len(rows) == 0 {
		// The window count is only available with rows; count separately for pages past the end.
		cq := "SELECT COUNT(*) FROM tasker_tasks t JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid " +
			"JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid " +
			"LEFT JOIN tasker_task_transitions tt ON tt.task_uuid = t.task_uuid AND tt.most_recent = true" + where
		if err := q.db.GetContext(ctx, &page.TotalCount, cq, lf.args...); err != nil {
			return ports.TaskPage{}, fmt.Errorf("count tasks: %w", err)
		}
		return page, nil
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.TaskUUID
	}
	steps, err := loadStepViews(ctx, q.db, "ws.task_uuid = ANY($1::uuid[])", "ws.workflow_step_uuid", pq.Array(orchUUIDStrings(ids)))
	if err != nil {
		return ports.TaskPage{}, fmt.Errorf("list tasks: %w", err)
	}
	byTask := map[uuid.UUID][]ports.StepView{}
	for _, s := range steps {
		byTask[s.TaskUUID] = append(byTask[s.TaskUUID], s)
	}
	for _, r := range rows {
		v, err := r.view()
		if err != nil {
			return ports.TaskPage{}, err
		}
		v.Counts = orchCountSteps(byTask[r.TaskUUID])
		page.Tasks = append(page.Tasks, v)
		page.TotalCount = r.TotalCount
	}
	return page, nil
}

// ListSteps implements ports.TaskQuery.
func (q *TaskQuery) ListSteps(ctx context.Context, taskUUID uuid.UUID) ([]ports.StepView, error) {
	if err := q.taskExists(ctx, taskUUID); err != nil {
		return nil, err
	}
	steps, err := loadStepViews(ctx, q.db, "ws.task_uuid = $1", "ws.created_at, ws.workflow_step_uuid", taskUUID)
	if err != nil {
		return nil, fmt.Errorf("list steps of task %s: %w", taskUUID, err)
	}
	return steps, nil
}

// GetStep implements ports.TaskQuery.
func (q *TaskQuery) GetStep(ctx context.Context, taskUUID, stepUUID uuid.UUID) (ports.StepView, error) {
	steps, err := loadStepViews(ctx, q.db, "ws.workflow_step_uuid = $1 AND ws.task_uuid = $2", "ws.workflow_step_uuid", stepUUID, taskUUID)
	if err != nil {
		return ports.StepView{}, fmt.Errorf("get step %s: %w", stepUUID, err)
	}
	if len(steps) == 0 {
		return ports.StepView{}, &ports.NotFoundError{What: fmt.Sprintf("Step not found: %s", stepUUID)}
	}
	return steps[0], nil
}

func (q *TaskQuery) taskExists(ctx context.Context, taskUUID uuid.UUID) error {
	var exists bool
	if err := q.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM tasker_tasks WHERE task_uuid = $1)`, taskUUID); err != nil {
		return fmt.Errorf("find task %s: %w", taskUUID, err)
	}
	if !exists {
		return &ports.NotFoundError{What: fmt.Sprintf("Task not found: %s", taskUUID)}
	}
	return nil
}

// Ping checks that the database answers, for the readiness probe.
func (q *TaskQuery) Ping(ctx context.Context) error {
	return q.db.PingContext(ctx)
}

// QueueDepths reports the queue_length of each named pgmq queue (for the
// queue-depth gauges); missing queues are omitted. No names means every
// queue in pgmq.meta, so namespace queues appear as they are created.
func (q *TaskQuery) QueueDepths(ctx context.Context, queues []string) (map[string]int64, error) {
	if len(queues) == 0 {
		var rows []struct {
			Name   string `db:"queue_name"`
			Length int64  `db:"queue_length"`
		}
		if err := q.db.SelectContext(ctx, &rows, `SELECT queue_name, queue_length FROM pgmq.metrics_all()`); err != nil {
			return nil, fmt.Errorf("queue depths: %w", err)
		}
		out := make(map[string]int64, len(rows))
		for _, r := range rows {
			out[r.Name] = r.Length
		}
		return out, nil
	}
	out := make(map[string]int64, len(queues))
	for _, name := range queues {
		var n int64
		err := q.db.GetContext(ctx, &n, `SELECT queue_length FROM pgmq.metrics($1::text)`, name)
		if err != nil {
			continue // a queue that does not exist yet has no depth
		}
		out[name] = n
	}
	return out, nil
}
