package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DLQStore keeps the dead-letter entries (tasker_go_dlq_entries, migration
// 00008): poison messages, the staleness detector's findings, and their
// requeue and resolution. On a database without the table every method
// fails with ports.ErrDLQUnavailable.
type DLQStore struct {
	db       *sqlx.DB
	goTables goTablesProbe
	// orch finalizes a requeued task whose steps all finished meanwhile.
	orch *OrchestrationStore
}

var (
	_ ports.DLQStore           = (*DLQStore)(nil)
	_ ports.DeadLetterRecorder = (*DLQStore)(nil)
	_ ports.StalenessScanner   = (*DLQStore)(nil)
)

// NewDLQStore returns a DLQStore over db (TimeZone=UTC, see Open).
func NewDLQStore(db *sqlx.DB) *DLQStore { return &DLQStore{db: db, orch: NewOrchestrationStore(db)} }

// available fails with ports.ErrDLQUnavailable when the table is missing.
func (s *DLQStore) available(ctx context.Context) error {
	if _, err := s.goTables.present(ctx, s.db); err != nil {
		return err
	}
	s.goTables.mu.Lock()
	ok := s.goTables.tables.DLQ
	s.goTables.mu.Unlock()
	if !ok {
		return ports.ErrDLQUnavailable
	}
	return nil
}

// dlqRow is one row of tasker_go_dlq_entries.
type dlqRow struct {
	EntryUUID      uuid.UUID      `db:"entry_uuid"`
	TaskUUID       uuid.NullUUID  `db:"task_uuid"`
	StepUUID       uuid.NullUUID  `db:"step_uuid"`
	Namespace      string         `db:"namespace"`
	Reason         string         `db:"reason"`
	Status         string         `db:"status"`
	Detail         string         `db:"detail"`
	QueueName      sql.NullString `db:"queue_name"`
	Message        []byte         `db:"message"`
	ResolutionNote sql.NullString `db:"resolution_note"`
	CreatedAt      sql.NullTime   `db:"created_at"`
	UpdatedAt      sql.NullTime   `db:"updated_at"`
}

const dlqColumns = `entry_uuid, task_uuid, step_uuid, namespace, reason, status, detail, queue_name, message,
	resolution_note, created_at, updated_at`

func (r dlqRow) entry() domain.DLQEntry {
	return domain.DLQEntry{EntryUUID: r.EntryUUID, TaskUUID: r.TaskUUID.UUID, StepUUID: r.StepUUID.UUID,
		Namespace: r.Namespace, Reason: domain.DLQReason(r.Reason), Status: domain.DLQStatus(r.Status), Detail: r.Detail,
		QueueName: r.QueueName.String, Message: r.Message, ResolutionNote: r.ResolutionNote.String,
		CreatedAt: r.CreatedAt.Time.UTC(), UpdatedAt: r.UpdatedAt.Time.UTC()}
}

func nullUUID(id uuid.UUID) uuid.NullUUID { return uuid.NullUUID{UUID: id, Valid: id != uuid.Nil} }

// insertEntry records e; an open entry for the same (task, step, reason)
// already there makes it a no-op (false).
func insertEntry(ctx context.Context, q sqlx.QueryerContext, e domain.DLQEntry) (domain.DLQEntry, bool, error) {
	var msg any
	if len(e.Message) > 0 {
		msg = string(e.Message)
	}
	var r dlqRow
	err := sqlx.GetContext(ctx, q, &r, `INSERT INTO `+DLQTable+` (entry_uuid, task_uuid, step_uuid, namespace, reason, status,
		detail, queue_name, message, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, 'open', $6, NULLIF($7, ''), $8::jsonb, NOW(), NOW())
	ON CONFLICT (task_uuid, COALESCE(step_uuid, '00000000-0000-0000-0000-000000000000'::uuid), reason)
		WHERE status = 'open' AND task_uuid IS NOT NULL DO NOTHING
	RETURNING `+dlqColumns,
		orchUUIDv7(), nullUUID(e.TaskUUID), nullUUID(e.StepUUID), e.Namespace, string(e.Reason), e.Detail, e.QueueName, msg)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.DLQEntry{}, false, nil
	}
	if err != nil {
		return domain.DLQEntry{}, false, fmt.Errorf("record dlq entry: %w", err)
	}
	return r.entry(), true, nil
}

// RecordPoison implements ports.DeadLetterRecorder: the message is kept in
// the entry (its queue and body) so requeue can send it again. The
// namespace is the step's task's when the message names a known step.
func (s *DLQStore) RecordPoison(ctx context.Context, m ports.PoisonMessage) (domain.DLQEntry, error) {
	if err := s.available(ctx); err != nil {
		return domain.DLQEntry{}, err
	}
	e := domain.DLQEntry{TaskUUID: m.TaskUUID, StepUUID: m.StepUUID, Reason: domain.DLQPoisonMessage,
		Detail: m.Detail, QueueName: m.Queue, Message: m.Message}
	if m.StepUUID != uuid.Nil {
		var row struct {
			Task uuid.UUID `db:"task_uuid"`
			NS   string    `db:"name"`
		}
		err := s.db.GetContext(ctx, &row, `SELECT ws.task_uuid, ns.name FROM tasker_workflow_steps ws
			JOIN tasker_tasks t ON t.task_uuid = ws.task_uuid
			JOIN tasker_named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
			JOIN tasker_task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
			WHERE ws.workflow_step_uuid = $1`, m.StepUUID)
		if err == nil {
			e.TaskUUID, e.Namespace = row.Task, row.NS
		} else if !errors.Is(err, sql.ErrNoRows) {
			return domain.DLQEntry{}, fmt.Errorf("record poison message: %w", err)
		}
	}
	out, inserted, err := insertEntry(ctx, s.db, e)
	if err != nil || inserted {
		return out, err
	}
	// An open entry for this step already exists: return it.
	var r dlqRow
	err = s.db.GetContext(ctx, &r, `SELECT `+dlqColumns+` FROM `+DLQTable+`
		WHERE task_uuid = $1 AND step_uuid IS NOT DISTINCT FROM $2 AND reason = $3 AND status = 'open'`,
		nullUUID(e.TaskUUID), nullUUID(e.StepUUID), string(e.Reason))
	if err != nil {
		return domain.DLQEntry{}, fmt.Errorf("read open dlq entry: %w", err)
	}
	return r.entry(), nil
}

// ListDLQ implements ports.DLQStore: newest first, filtered, paginated.
func (s *DLQStore) ListDLQ(ctx context.Context, f ports.DLQFilter) (ports.DLQPage, error) {
	if err := s.available(ctx); err != nil {
		return ports.DLQPage{}, err
	}
	var lf listFilter
	lf.addIf("namespace = $%d", f.Namespace)
	lf.addIf("reason = $%d", string(f.Reason))
	lf.addIf("status = $%d", string(f.Status))
	cond := lf.where()
	var page ports.DLQPage
	if err := s.db.GetContext(ctx, &page.TotalCount, `SELECT COUNT(*) FROM `+DLQTable+cond, lf.args...); err != nil {
		return ports.DLQPage{}, fmt.Errorf("count dlq entries: %w", err)
	}
	per := max(f.PerPage, 1)
	limit, args := lf.page(per, (max(f.Page, 1)-1)*per)
	var rows []dlqRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+dlqColumns+` FROM `+DLQTable+cond+
		` ORDER BY created_at DESC, entry_uuid DESC`+limit, args...); err != nil {
		return ports.DLQPage{}, fmt.Errorf("list dlq entries: %w", err)
	}
	page.Entries = make([]domain.DLQEntry, len(rows))
	for i, r := range rows {
		page.Entries[i] = r.entry()
	}
	return page, nil
}

// GetDLQ implements ports.DLQStore.
func (s *DLQStore) GetDLQ(ctx context.Context, id uuid.UUID) (domain.DLQEntry, error) {
	if err := s.available(ctx); err != nil {
		return domain.DLQEntry{}, err
	}
	return getEntry(ctx, s.db, id, false)
}

func getEntry(ctx context.Context, q sqlx.QueryerContext, id uuid.UUID, lock bool) (domain.DLQEntry, error) {
	stmt := `SELECT ` + dlqColumns + ` FROM ` + DLQTable + ` WHERE entry_uuid = $1`
	if lock {
		stmt += ` FOR UPDATE`
	}
	var r dlqRow
	err := sqlx.GetContext(ctx, q, &r, stmt, id)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.DLQEntry{}, &ports.NotFoundError{What: fmt.Sprintf("DLQ entry not found: %s", id)}
	}
	if err != nil {
		return domain.DLQEntry{}, fmt.Errorf("read dlq entry %s: %w", id, err)
	}
	return r.entry(), nil
}

// ResolveDLQ implements ports.DLQStore: an open or requeued entry becomes
// resolved with the note; a resolved one is a ConflictError.
func (s *DLQStore) ResolveDLQ(ctx context.Context, id uuid.UUID, note string) (domain.DLQEntry, error) {
	return s.changeEntry(ctx, id, func(_ *sqlx.Tx, e domain.DLQEntry) (entryUpdate, error) {
		if e.Status == domain.DLQResolved {
			return entryUpdate{}, &ports.ConflictError{Message: fmt.Sprintf("DLQ entry %s is already resolved", id)}
		}
		return entryUpdate{what: "resolve dlq entry " + id.String(), set: `status = 'resolved', resolution_note = $2`, args: []any{note}}, nil
	})
}

// entryUpdate is the row change that ends a changeEntry: the SET
// assignments (updated_at is added), whose placeholders start at $2 ($1
// is the entry's uuid), and what the update does, for its error.
type entryUpdate struct {
	what string
	set  string
	args []any
}

// changeEntry reads entry id locked (FOR UPDATE) in one transaction, lets
// change check its status and do the work that goes with the new one, and
// then applies the update change returned. The lock makes the status check
// and the update one step, so two operators acting on the same entry at
// once cannot both succeed.
func (s *DLQStore) changeEntry(ctx context.Context, id uuid.UUID,
	change func(tx *sqlx.Tx, e domain.DLQEntry) (entryUpdate, error)) (domain.DLQEntry, error) {
	if err := s.available(ctx); err != nil {
		return domain.DLQEntry{}, err
	}
	var out domain.DLQEntry
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		e, err := getEntry(ctx, tx, id, true)
		if err != nil {
			return err
		}
		u, err := change(tx, e)
		if err != nil {
			return err
		}
		var r dlqRow
		if err := tx.GetContext(ctx, &r, `UPDATE `+DLQTable+` SET `+u.set+`, updated_at = NOW()
			WHERE entry_uuid = $1 RETURNING `+dlqColumns, append([]any{id}, u.args...)...); err != nil {
			return fmt.Errorf("%s: %w", u.what, err)
		}
		out = r.entry()
		return nil
	})
	return out, err
}

// RequeueDLQ implements ports.DLQStore, in one transaction with the entry
// locked: a poison message is sent again to its queue; a stale step gets a
// fresh attempt budget (attempts 0, no backoff) and is moved back to pending
// (through error when it was enqueued or in_progress, so an old message for
// it is harmless: its claim is a compare-and-set), and its task, when in
// error, is reset to pending, so the enqueue cycle enqueues the step and
// starts the task again. A task timeout does the same for every step of the
// task in error. Only open entries can be requeued.
func (s *DLQStore) RequeueDLQ(ctx context.Context, id uuid.UUID) (domain.DLQEntry, error) {
	return s.changeEntry(ctx, id, func(tx *sqlx.Tx, e domain.DLQEntry) (entryUpdate, error) {
		if e.Status != domain.DLQOpen {
			return entryUpdate{}, &ports.ConflictError{Message: fmt.Sprintf("DLQ entry %s is %s; only open entries can be requeued", id, e.Status)}
		}
		switch {
		case e.TaskUUID == uuid.Nil || (e.Reason == domain.DLQPoisonMessage && e.StepUUID == uuid.Nil):
			if e.QueueName == "" || len(e.Message) == 0 {
				return entryUpdate{}, &ports.ConflictError{Message: fmt.Sprintf("DLQ entry %s has no message to send again", id)}
			}
			if _, err := tx.ExecContext(ctx, `SELECT pgmq.send($1::text, $2::jsonb, 0::integer)`, e.QueueName, string(e.Message)); err != nil {
				return entryUpdate{}, fmt.Errorf("send message again: %w", err)
			}
		default:
			if err := s.requeueTaskWork(ctx, tx, e); err != nil {
				return entryUpdate{}, err
			}
		}
		return entryUpdate{what: fmt.Sprintf("mark dlq entry %s requeued", id), set: `status = 'requeued'`}, nil
	})
}

// requeueTaskWork gives the entry's step (or every errored step of its
// task) a fresh start, resets the task from error and evaluates its
// finalization: after a task timeout its running steps may all have
// finished meanwhile, and no enqueue would ever look at it again.
func (s *DLQStore) requeueTaskWork(ctx context.Context, tx *sqlx.Tx, e domain.DLQEntry) error {
	task, err := LockTaskTx(ctx, tx, e.TaskUUID)
	if err != nil {
		if errors.Is(err, ports.ErrNotFound) {
			return &ports.ConflictError{Message: fmt.Sprintf("task %s of DLQ entry %s no longer exists", e.TaskUUID, e.EntryUUID)}
		}
		return err
	}
	if task.State.IsTerminal() {
		return &ports.ConflictError{Message: fmt.Sprintf("task %s is %s; nothing to requeue", e.TaskUUID, task.State)}
	}
	steps := []uuid.UUID{e.StepUUID}
	if e.StepUUID == uuid.Nil {
		steps = nil
		if err := tx.SelectContext(ctx, &steps, `SELECT ws.workflow_step_uuid FROM tasker_workflow_steps ws
			JOIN tasker_workflow_step_transitions cur ON cur.workflow_step_uuid = ws.workflow_step_uuid AND cur.most_recent
			WHERE ws.task_uuid = $1 AND cur.to_state = 'error' ORDER BY ws.workflow_step_uuid`, e.TaskUUID); err != nil {
			return fmt.Errorf("errored steps of task %s: %w", e.TaskUUID, err)
		}
	}
	meta := map[string]any{"dlq_entry_uuid": e.EntryUUID.String(), "dlq_action": "requeue"}
	for _, st := range steps {
		l, err := LockStepTx(ctx, tx, st)
		if err != nil {
			return err
		}
		if l.State.IsTerminal() {
			continue
		}
		if l.State == domain.StepEnqueued || l.State == domain.StepInProgress {
			if _, _, err := applyStepTransition(ctx, tx, l, domain.StepEvent{Type: domain.EventFail,
				Message: "requeued from the DLQ"}, meta); err != nil {
				return err
			}
			l.State = domain.StepError
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tasker_workflow_steps SET attempts = 0, backoff_request_seconds = NULL,
			in_process = false, updated_at = NOW() WHERE workflow_step_uuid = $1`, st); err != nil {
			return fmt.Errorf("fresh attempt budget for step %s: %w", st, err)
		}
		if l.State == domain.StepError {
			if _, _, err := applyStepTransition(ctx, tx, l, domain.StepEvent{Type: domain.EventRetry}, meta); err != nil {
				return err
			}
		}
	}
	if task.State == domain.TaskError {
		if _, _, err := TransitionTaskTx(ctx, tx, e.TaskUUID, domain.TaskEvent{Type: domain.EventReset}, meta); err != nil {
			return err
		}
	}
	if _, err := s.orch.finalizeLockedTask(ctx, tx, e.TaskUUID); err != nil {
		return fmt.Errorf("finalize requeued task %s: %w", e.TaskUUID, err)
	}
	return nil
}
