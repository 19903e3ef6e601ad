package postgres_test

import (
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

// transitionRow is one row of a transition table as the tests inspect it.
type transitionRow struct {
	ToState    string         `db:"to_state"`
	FromState  sql.NullString `db:"from_state"`
	Metadata   []byte         `db:"metadata"`
	SortKey    int            `db:"sort_key"`
	MostRecent bool           `db:"most_recent"`
	CreatedAt  time.Time      `db:"created_at"`
	UpdatedAt  time.Time      `db:"updated_at"`
}

func stepTransitionRows(t testing.TB, db *sqlx.DB, stepUUID uuid.UUID) []transitionRow {
	t.Helper()
	var rows []transitionRow
	require.NoError(t, db.Select(&rows, `SELECT to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at
		FROM tasker_workflow_step_transitions WHERE workflow_step_uuid = $1 ORDER BY sort_key`, stepUUID))
	return rows
}

func taskTransitionRows(t testing.TB, db *sqlx.DB, taskUUID uuid.UUID) []transitionRow {
	t.Helper()
	var rows []transitionRow
	require.NoError(t, db.Select(&rows, `SELECT to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at
		FROM tasker_task_transitions WHERE task_uuid = $1 ORDER BY sort_key`, taskUUID))
	return rows
}

// requireWellFormedHistory checks the §3.3 invariants of a transition history:
// contiguous sort_keys from 1, exactly the last row most_recent, each
// from_state equal to the previous to_state.
func requireWellFormedHistory(t testing.TB, rows []transitionRow) {
	t.Helper()
	require.NotEmpty(t, rows)
	for i, r := range rows {
		require.Equal(t, i+1, r.SortKey, "sort_key of row %d", i)
		require.Equal(t, i == len(rows)-1, r.MostRecent, "most_recent of row %d", i)
		if i > 0 {
			require.True(t, r.FromState.Valid, "from_state of row %d", i)
			require.Equal(t, rows[i-1].ToState, r.FromState.String, "from_state of row %d", i)
		}
	}
}

// eventMetadata decodes transition metadata and its double-encoded event.
type eventMetadata struct {
	Event     string         `json:"event"`
	Timestamp string         `json:"timestamp"`
	WorkerID  string         `json:"worker_id"`
	Decoded   map[string]any `json:"-"`
	Raw       map[string]any `json:"-"`
}

func decodeEventMetadata(t testing.TB, meta []byte) eventMetadata {
	t.Helper()
	var m eventMetadata
	require.NoError(t, json.Unmarshal(meta, &m))
	require.NoError(t, json.Unmarshal(meta, &m.Raw))
	require.NotEmpty(t, m.Event, "metadata.event must be a JSON string: %s", meta)
	require.NoError(t, json.Unmarshal([]byte(m.Event), &m.Decoded), "event string must hold JSON")
	_, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	require.NoError(t, err, "timestamp %q must be RFC 3339", m.Timestamp)
	require.Equal(t, byte('Z'), m.Timestamp[len(m.Timestamp)-1], "timestamp must be UTC")
	return m
}

// stepColumns are the §3.2 side-effect columns of a step.
type stepColumns struct {
	InProcess       bool         `db:"in_process"`
	Processed       bool         `db:"processed"`
	ProcessedAt     sql.NullTime `db:"processed_at"`
	Attempts        int          `db:"attempts"`
	LastAttemptedAt sql.NullTime `db:"last_attempted_at"`
	Results         []byte       `db:"results"`
	UpdatedAt       time.Time    `db:"updated_at"`
}

func readStepColumns(t testing.TB, db *sqlx.DB, stepUUID uuid.UUID) stepColumns {
	t.Helper()
	var c stepColumns
	require.NoError(t, db.Get(&c, `SELECT in_process, processed, processed_at, COALESCE(attempts, 0) AS attempts,
		last_attempted_at, results, updated_at FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, stepUUID))
	return c
}

func successResult(stepUUID uuid.UUID, result string) domain.StepExecutionResult {
	return domain.StepExecutionResult{
		StepUUID: stepUUID, Success: true, Result: json.RawMessage(result), Status: domain.ResultStatusCompleted,
		Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 5, CompletedAt: time.Now().UTC()},
	}
}

func failureResult(stepUUID uuid.UUID, message string, errorType string) domain.StepExecutionResult {
	return domain.StepExecutionResult{
		StepUUID: stepUUID, Success: false, Status: domain.ResultStatusFailed,
		Error:    &domain.StepExecutionError{Message: message, ErrorType: &errorType, Retryable: true},
		Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 7, Retryable: true, ErrorType: &errorType, CompletedAt: time.Now().UTC()},
	}
}
