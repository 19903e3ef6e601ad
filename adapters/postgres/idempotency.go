package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Tables this project adds beside tasker-core's (migration 00008). A database
// made only by tasker-core's migrations lacks them; the services then run
// without idempotent creation and without the DLQ.
const (
	IdempotencyTable = "tasker_go_idempotency_keys"
	DLQTable         = "tasker_go_dlq_entries"
)

// GoTables reports which of this project's own tables exist in db.
type GoTables struct {
	Idempotency bool
	DLQ         bool
}

// ProbeGoTables looks the project's own tables up in the catalog.
func ProbeGoTables(ctx context.Context, db *sqlx.DB) (GoTables, error) {
	var out GoTables
	err := db.QueryRowContext(ctx, `SELECT to_regclass('public.`+IdempotencyTable+`') IS NOT NULL,
		to_regclass('public.`+DLQTable+`') IS NOT NULL`).Scan(&out.Idempotency, &out.DLQ)
	if err != nil {
		return GoTables{}, fmt.Errorf("probe tasker_go tables: %w", err)
	}
	return out, nil
}

// goTablesProbe caches a successful ProbeGoTables; a failed probe is retried
// on the next call.
type goTablesProbe struct {
	mu     sync.Mutex
	done   bool
	tables GoTables
}

func (p *goTablesProbe) present(ctx context.Context, db *sqlx.DB) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		t, err := ProbeGoTables(ctx, db)
		if err != nil {
			return false, err
		}
		p.tables, p.done = t, true
	}
	return p.tables.Idempotency, nil
}

// createKeyed creates the task and records its Idempotency-Key in one
// transaction. The key row is inserted first: a concurrent creation with the
// same key blocks on the primary key until the first commits (then finds its
// row) or rolls back (then creates the task itself), so the database, not a
// check-then-insert, guarantees one task per key.
func (s *TaskStore) createKeyed(ctx context.Context, t ports.NewTask, rows taskRows, resp domain.TaskCreationResponse) (domain.TaskCreationResponse, error) {
	var out domain.TaskCreationResponse
	// Named steps never change once created, so the pooled lookup outside the
	// transaction is as good as one inside it; nil means some are missing.
	known, err := s.existingNamedSteps(ctx, t.Steps)
	if err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("create task %s/%s: %w", t.Request.Namespace, t.Request.Name, err)
	}
	err = WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO `+IdempotencyTable+` (idempotency_key, request_hash, task_uuid, response, created_at)
			VALUES ($1, $2, $3, '{}'::jsonb, NOW()) ON CONFLICT (idempotency_key) DO NOTHING`,
			t.IdempotencyKey, t.RequestHash, resp.TaskUUID)
		if err != nil {
			return fmt.Errorf("record idempotency key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			out, err = replay(ctx, tx, t.IdempotencyKey, t.RequestHash)
			return err
		}
		named := known
		if named == nil {
			if named, err = namedStepUUIDs(ctx, tx, t.Steps); err != nil {
				return err
			}
		}
		if resp.CreatedAt, err = s.insertTaskRows(ctx, tx, rows, named); err != nil {
			return err
		}
		body, err := json.Marshal(resp)
		if err != nil {
			return fmt.Errorf("encode response: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+IdempotencyTable+` SET response = $2::jsonb WHERE idempotency_key = $1`,
			t.IdempotencyKey, string(body)); err != nil {
			return fmt.Errorf("store idempotent response: %w", err)
		}
		out = resp
		return nil
	})
	if err != nil {
		var ce *ports.IdempotencyConflictError
		if errors.As(err, &ce) {
			return domain.TaskCreationResponse{}, err
		}
		return domain.TaskCreationResponse{}, fmt.Errorf("create task %s/%s: %w", t.Request.Namespace, t.Request.Name, err)
	}
	return out, nil
}

// replay reads the response stored under key; a different request hash is a
// conflict.
func replay(ctx context.Context, tx *sqlx.Tx, key, hash string) (domain.TaskCreationResponse, error) {
	var row struct {
		Hash     string `db:"request_hash"`
		Response []byte `db:"response"`
	}
	err := tx.GetContext(ctx, &row, `SELECT request_hash, response FROM `+IdempotencyTable+` WHERE idempotency_key = $1`, key)
	if errors.Is(err, sql.ErrNoRows) {
		// Deleted by retention between the insert and this read: rare enough
		// that the caller's retry creates the task afresh.
		return domain.TaskCreationResponse{}, fmt.Errorf("idempotency key %s vanished during replay: %w", key, ports.ErrUnavailable)
	}
	if err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("read idempotency key: %w", err)
	}
	if row.Hash != hash {
		return domain.TaskCreationResponse{}, &ports.IdempotencyConflictError{Key: key}
	}
	var out domain.TaskCreationResponse
	if err := json.Unmarshal(row.Response, &out); err != nil {
		return domain.TaskCreationResponse{}, fmt.Errorf("decode stored response: %w", err)
	}
	out.Replayed = true
	return out, nil
}

// PurgeIdempotencyKeys deletes keys recorded more than retention ago and
// returns how many. It is a no-op (0, nil) when the table is absent.
func (s *TaskStore) PurgeIdempotencyKeys(ctx context.Context, retention time.Duration) (int64, error) {
	ok, err := s.goTables.present(ctx, s.db)
	if err != nil || !ok {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM `+IdempotencyTable+` WHERE created_at < NOW() - make_interval(secs => $1)`,
		retention.Seconds())
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return res.RowsAffected()
}
