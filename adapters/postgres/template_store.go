package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// ReferenceNamespaceNameConstraint is the unique (task_namespace_uuid, name)
// constraint that only reference databases have (contract §2.2, D-f).
const ReferenceNamespaceNameConstraint = "tasker_named_tasks_namespace_name_unique"

// TemplateConflictError reports that a template could not be registered
// because a database unique constraint rejected it; on a reference database
// this is a second version of an existing (namespace, name) (D-f). The
// worker logs it and skips that template only.
type TemplateConflictError struct {
	Namespace, Name, Version string
	Constraint               string
}

func (e *TemplateConflictError) Error() string {
	return fmt.Sprintf("register template %s/%s@%s: rejected by unique constraint %s (this database allows one version per task name)",
		e.Namespace, e.Name, e.Version, e.Constraint)
}

// TemplateStore is ports.TemplateStore over PostgreSQL (contract §6.4).
type TemplateStore struct {
	db *sqlx.DB
	// stmts holds GetTemplate's statement: every task creation looks its
	// template up, and planning the join costs more than running it.
	stmts *stmtCache
}

var _ ports.TemplateStore = (*TemplateStore)(nil)

// NewTemplateStore returns a TemplateStore on db.
func NewTemplateStore(db *sqlx.DB) *TemplateStore {
	return &TemplateStore{db: db, stmts: newStmtCache(db)}
}

type templateRow struct {
	NamedTaskUUID     uuid.UUID      `db:"named_task_uuid"`
	TaskNamespaceUUID uuid.UUID      `db:"task_namespace_uuid"`
	Namespace         string         `db:"namespace"`
	Name              string         `db:"name"`
	Version           string         `db:"version"`
	Description       sql.NullString `db:"description"`
	Configuration     []byte         `db:"configuration"`
	UpdatedAt         time.Time      `db:"updated_at"`
}

func (r templateRow) registered() ports.RegisteredTemplate {
	return ports.RegisteredTemplate{
		NamedTaskUUID:     r.NamedTaskUUID,
		TaskNamespaceUUID: r.TaskNamespaceUUID,
		Namespace:         r.Namespace,
		Name:              r.Name,
		Version:           r.Version,
		Description:       nullStr(r.Description),
		Configuration:     rawJSON(r.Configuration),
		UpdatedAt:         r.UpdatedAt.UTC(),
	}
}

const selectTemplateSQL = `
SELECT nt.named_task_uuid, nt.task_namespace_uuid, n.name AS namespace, nt.name, nt.version,
       nt.description, nt.configuration, nt.updated_at
FROM tasker_named_tasks nt
JOIN tasker_task_namespaces n ON n.task_namespace_uuid = nt.task_namespace_uuid`

// checkLen rejects values longer than their varchar column instead of letting
// the database fail the transaction with a less specific error.
func checkLen(field, v string, max int) error {
	if v == "" {
		return &domain.ValidationError{Field: field, Reason: "must not be empty"}
	}
	if utf8.RuneCountInString(v) > max {
		return &domain.ValidationError{Field: field, Reason: fmt.Sprintf("must be at most %d characters", max)}
	}
	return nil
}

// RegisterTemplate registers t in one transaction (contract §6.4): find or
// create the namespace by name (INSERT … ON CONFLICT (name) DO NOTHING, then
// SELECT), then upsert the named task on (namespace, name, version) setting
// description, configuration and updated_at. configuration should be the full
// template JSON with defaults materialised; when empty, json.Marshal(t) is
// stored. Registering the same version again is idempotent (it refreshes the
// row); another version of the same name is a separate row. On a reference
// database the second version fails with *TemplateConflictError and nothing
// is written. Empty or over-long names return *domain.ValidationError.
func (s *TemplateStore) RegisterTemplate(ctx context.Context, t domain.TaskTemplate, configuration json.RawMessage) (ports.RegisteredTemplate, error) {
	for _, c := range []struct {
		field, v string
		max      int
	}{{"namespace_name", t.NamespaceName, 64}, {"name", t.Name, 64}, {"version", t.Version, 16}} {
		if err := checkLen(c.field, c.v, c.max); err != nil {
			return ports.RegisteredTemplate{}, fmt.Errorf("register template %s/%s@%s: %w", t.NamespaceName, t.Name, t.Version, err)
		}
	}
	if t.Description != nil && utf8.RuneCountInString(*t.Description) > 255 {
		return ports.RegisteredTemplate{}, fmt.Errorf("register template %s/%s@%s: %w", t.NamespaceName, t.Name, t.Version,
			&domain.ValidationError{Field: "description", Reason: "must be at most 255 characters"})
	}
	if len(configuration) == 0 {
		b, err := json.Marshal(t)
		if err != nil {
			return ports.RegisteredTemplate{}, fmt.Errorf("register template %s/%s@%s: encode configuration: %w", t.NamespaceName, t.Name, t.Version, err)
		}
		configuration = b
	} else if !json.Valid(configuration) {
		return ports.RegisteredTemplate{}, fmt.Errorf("register template %s/%s@%s: %w", t.NamespaceName, t.Name, t.Version,
			&domain.ValidationError{Field: "configuration", Reason: "must be valid JSON"})
	}
	var out ports.RegisteredTemplate
	err := WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		nsUUID, err := ensureNamespaceTx(ctx, tx, t.NamespaceName)
		if err != nil {
			return err
		}
		var id uuid.UUID
		err = tx.QueryRowxContext(ctx, `
			INSERT INTO tasker_named_tasks (task_namespace_uuid, name, version, description, configuration, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5::jsonb, NOW(), NOW())
			ON CONFLICT (task_namespace_uuid, name, version) DO UPDATE
			SET description = EXCLUDED.description, configuration = EXCLUDED.configuration, updated_at = NOW()
			RETURNING named_task_uuid`,
			nsUUID, t.Name, t.Version, t.Description, string(configuration)).Scan(&id)
		if err != nil {
			var pqErr *pq.Error
			if errors.As(err, &pqErr) && pqErr.Code == "23505" {
				return &TemplateConflictError{Namespace: t.NamespaceName, Name: t.Name, Version: t.Version, Constraint: pqErr.Constraint}
			}
			return fmt.Errorf("upsert named task: %w", err)
		}
		var r templateRow
		if err := sqlx.GetContext(ctx, tx, &r, selectTemplateSQL+` WHERE nt.named_task_uuid = $1`, id); err != nil {
			return fmt.Errorf("read back named task: %w", err)
		}
		out = r.registered()
		return nil
	})
	if err != nil {
		var conflict *TemplateConflictError
		if errors.As(err, &conflict) {
			return ports.RegisteredTemplate{}, err
		}
		return ports.RegisteredTemplate{}, fmt.Errorf("register template %s/%s@%s: %w", t.NamespaceName, t.Name, t.Version, err)
	}
	return out, nil
}

// ensureNamespaceTx finds or creates a namespace by name and returns its uuid.
// ON CONFLICT DO NOTHING makes concurrent registrations of the same namespace
// safe; the SELECT then sees whichever row won.
func ensureNamespaceTx(ctx context.Context, tx *sqlx.Tx, name string) (uuid.UUID, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO tasker_task_namespaces (name, description, created_at, updated_at)
		VALUES ($1, $2, NOW(), NOW()) ON CONFLICT (name) DO NOTHING`, name, "Namespace "+name)
	if err != nil {
		return uuid.Nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	var id uuid.UUID
	if err := tx.QueryRowxContext(ctx, `SELECT task_namespace_uuid FROM tasker_task_namespaces WHERE name = $1`, name).Scan(&id); err != nil {
		return uuid.Nil, fmt.Errorf("find namespace %s: %w", name, err)
	}
	return id, nil
}

const getTemplateSQL = selectTemplateSQL + ` WHERE n.name = $1 AND nt.name = $2 AND nt.version = $3`

// GetTemplate returns the named task with exactly (namespace, name, version)
// (D-f: lookups always honour the version); ErrNotFound wrapped when absent.
func (s *TemplateStore) GetTemplate(ctx context.Context, namespace, name, version string) (ports.RegisteredTemplate, error) {
	var r templateRow
	st, err := s.stmts.pooled(ctx, getTemplateSQL)
	if err == nil {
		err = st.GetContext(ctx, &r, namespace, name, version)
	}
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ports.RegisteredTemplate{}, fmt.Errorf("template %s/%s@%s: %w", namespace, name, version, ports.ErrNotFound)
		}
		return ports.RegisteredTemplate{}, fmt.Errorf("template %s/%s@%s: %w", namespace, name, version, err)
	}
	return r.registered(), nil
}

// ListTemplates lists registered templates ordered by namespace, name and
// version, restricted to one namespace unless namespace is "".
func (s *TemplateStore) ListTemplates(ctx context.Context, namespace string) ([]ports.RegisteredTemplate, error) {
	var rows []templateRow
	err := sqlx.SelectContext(ctx, s.db, &rows, selectTemplateSQL+` WHERE ($1::text = '' OR n.name = $1::text)
		ORDER BY n.name, nt.name, nt.version`, namespace)
	if err != nil {
		return nil, fmt.Errorf("list templates (namespace %q): %w", namespace, err)
	}
	out := make([]ports.RegisteredTemplate, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.registered())
	}
	return out, nil
}
