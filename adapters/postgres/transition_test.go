package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

func fireStep(db *sqlx.DB, stepUUID uuid.UUID, ev domain.StepEvent, extra map[string]any) (from, to domain.StepState, err error) {
	err = postgres.WithTx(context.Background(), db, func(tx *sqlx.Tx) error {
		var e error
		from, to, e = postgres.TransitionStepTx(context.Background(), tx, stepUUID, ev, extra)
		return e
	})
	return from, to, err
}

func fireTask(db *sqlx.DB, taskUUID uuid.UUID, ev domain.TaskEvent) (from, to domain.TaskState, err error) {
	err = postgres.WithTx(context.Background(), db, func(tx *sqlx.Tx) error {
		var e error
		from, to, e = postgres.TransitionTaskTx(context.Background(), tx, taskUUID, ev, nil)
		return e
	})
	return from, to, err
}

func TestTransitionStepTx(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	okResult := func(id uuid.UUID) *domain.StepExecutionResult { r := successResult(id, `{"n":4}`); return &r }
	badResult := func(id uuid.UUID) *domain.StepExecutionResult { r := failureResult(id, "boom", "io"); return &r }
	cases := []struct {
		name      string
		setup     []domain.StepState // states written before the event
		event     func(id uuid.UUID) domain.StepEvent
		extra     map[string]any
		want      domain.StepState
		wantEvent map[string]any // decoded metadata.event; "data" checked separately when a result
		check     func(t *testing.T, before, after stepColumns, id uuid.UUID)
	}{
		{
			name: "pending Enqueue → enqueued touches only updated_at", want: domain.StepEnqueued,
			event:     func(uuid.UUID) domain.StepEvent { return domain.StepEvent{Type: domain.EventEnqueue} },
			wantEvent: map[string]any{"type": "Enqueue"},
			check: func(t *testing.T, before, after stepColumns, _ uuid.UUID) {
				require.Equal(t, 0, after.Attempts)
				require.False(t, after.InProcess)
				require.False(t, after.Processed)
			},
		},
		{
			name: "enqueued Start → in_progress counts the attempt", setup: []domain.StepState{domain.StepEnqueued},
			want: domain.StepInProgress, extra: map[string]any{"worker_id": "w-1"},
			event:     func(uuid.UUID) domain.StepEvent { return domain.StepEvent{Type: domain.EventStart} },
			wantEvent: map[string]any{"type": "Start"},
			check: func(t *testing.T, before, after stepColumns, _ uuid.UUID) {
				require.Equal(t, before.Attempts+1, after.Attempts)
				require.True(t, after.InProcess)
				require.True(t, after.LastAttemptedAt.Valid)
			},
		},
		{
			name: "in_progress Complete → complete stores the full result", setup: []domain.StepState{domain.StepInProgress},
			want: domain.StepComplete,
			event: func(id uuid.UUID) domain.StepEvent {
				return domain.StepEvent{Type: domain.EventComplete, Result: okResult(id)}
			},
			wantEvent: map[string]any{"type": "Complete"},
			check: func(t *testing.T, before, after stepColumns, id uuid.UUID) {
				require.True(t, after.Processed)
				require.False(t, after.InProcess)
				require.True(t, after.ProcessedAt.Valid)
				require.Equal(t, before.Attempts, after.Attempts)
				var stored domain.StepExecutionResult
				require.NoError(t, json.Unmarshal(after.Results, &stored))
				require.Equal(t, id, stored.StepUUID)
				require.True(t, stored.Success)
				require.JSONEq(t, `{"n":4}`, string(stored.Result))
			},
		},
		{
			name: "in_progress Fail → error stores the failure result, keeps processed and attempts", setup: []domain.StepState{domain.StepInProgress},
			want: domain.StepError,
			event: func(id uuid.UUID) domain.StepEvent {
				return domain.StepEvent{Type: domain.EventFail, Message: "boom", Result: badResult(id)}
			},
			wantEvent: map[string]any{"type": "Fail", "data": "boom"},
			check: func(t *testing.T, before, after stepColumns, _ uuid.UUID) {
				require.False(t, after.Processed)
				require.False(t, after.InProcess)
				require.False(t, after.ProcessedAt.Valid)
				require.Equal(t, before.Attempts, after.Attempts)
				var stored domain.StepExecutionResult
				require.NoError(t, json.Unmarshal(after.Results, &stored))
				require.False(t, stored.Success)
				require.Equal(t, "boom", stored.Error.Message)
			},
		},
		{
			name: "error Retry → pending", setup: []domain.StepState{domain.StepInProgress, domain.StepError},
			want:      domain.StepPending,
			event:     func(uuid.UUID) domain.StepEvent { return domain.StepEvent{Type: domain.EventRetry} },
			wantEvent: map[string]any{"type": "Retry"},
			check: func(t *testing.T, before, after stepColumns, _ uuid.UUID) {
				require.Equal(t, before.Attempts, after.Attempts)
				require.False(t, after.Processed)
			},
		},
		{
			name: "enqueued Cancel → cancelled marks processed", setup: []domain.StepState{domain.StepEnqueued},
			want:      domain.StepCancelled,
			event:     func(uuid.UUID) domain.StepEvent { return domain.StepEvent{Type: domain.EventCancel} },
			wantEvent: map[string]any{"type": "Cancel"},
			check: func(t *testing.T, before, after stepColumns, _ uuid.UUID) {
				require.True(t, after.Processed)
				require.True(t, after.ProcessedAt.Valid)
				require.False(t, after.InProcess)
			},
		},
		{
			name: "complete ResolveManually → resolved_manually", setup: []domain.StepState{domain.StepInProgress, domain.StepComplete},
			want:      domain.StepResolvedManually,
			event:     func(uuid.UUID) domain.StepEvent { return domain.StepEvent{Type: domain.EventResolveManually} },
			wantEvent: map[string]any{"type": "ResolveManually"},
			check: func(t *testing.T, before, after stepColumns, _ uuid.UUID) {
				require.True(t, after.Processed)
				require.False(t, after.InProcess)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
			id := task.Steps["a"]
			for _, s := range tc.setup {
				testdb.SetStepState(t, db, id, s)
			}
			before := readStepColumns(t, db, id)
			rowsBefore := stepTransitionRows(t, db, id)

			from, to, err := fireStep(db, id, tc.event(id), tc.extra)
			require.NoError(t, err)
			require.Equal(t, tc.want, to)
			require.Equal(t, domain.StepState(rowsBefore[len(rowsBefore)-1].ToState), from)

			rows := stepTransitionRows(t, db, id)
			require.Len(t, rows, len(rowsBefore)+1, "exactly one new row")
			requireWellFormedHistory(t, rows)
			last := rows[len(rows)-1]
			flipped := rows[len(rows)-2]
			require.True(t, flipped.UpdatedAt.After(flipped.CreatedAt), "flipped row gets updated_at = NOW()")
			require.Equal(t, string(tc.want), last.ToState)
			require.Equal(t, string(from), last.FromState.String)
			meta := decodeEventMetadata(t, last.Metadata)
			for k, v := range tc.wantEvent {
				require.Equal(t, v, meta.Decoded[k], "event.%s", k)
			}
			if r := tc.event(id).Result; tc.event(id).Type == domain.EventComplete && r != nil {
				data, ok := meta.Decoded["data"].(map[string]any)
				require.True(t, ok, "Complete event carries the result object")
				require.Equal(t, id.String(), data["step_uuid"])
			}
			for k, v := range tc.extra {
				require.Equal(t, v, meta.Raw[k], "extra metadata key %s", k)
			}
			after := readStepColumns(t, db, id)
			require.True(t, after.UpdatedAt.After(before.UpdatedAt), "updated_at advances")
			tc.check(t, before, after, id)
		})
	}
}

func TestTransitionStepTxRejectsAndWritesNothing(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	cases := []struct {
		name  string
		setup []domain.StepState
		event domain.StepEvent
		// parentState, when set, gives the step a parent in that state.
		parentState domain.StepState
	}{
		{name: "pending Complete", event: domain.StepEvent{Type: domain.EventComplete}},
		{name: "complete Fail", setup: []domain.StepState{domain.StepComplete}, event: domain.StepEvent{Type: domain.EventFail, Message: "x"}},
		{name: "cancelled Cancel", setup: []domain.StepState{domain.StepCancelled}, event: domain.StepEvent{Type: domain.EventCancel}},
		{name: "enqueued Enqueue", setup: []domain.StepState{domain.StepEnqueued}, event: domain.StepEvent{Type: domain.EventEnqueue}},
		{name: "Enqueue with parent pending", parentState: domain.StepPending, event: domain.StepEvent{Type: domain.EventEnqueue}},
		{name: "Start with parent in error", parentState: domain.StepError, event: domain.StepEvent{Type: domain.EventStart}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "p"}, {Name: "a", Deps: []string{"p"}}}})
			if tc.parentState != "" {
				testdb.SetStepState(t, db, task.Steps["p"], tc.parentState)
			} else {
				testdb.SetStepState(t, db, task.Steps["p"], domain.StepComplete)
			}
			id := task.Steps["a"]
			for _, s := range tc.setup {
				testdb.SetStepState(t, db, id, s)
			}
			before := readStepColumns(t, db, id)
			rowsBefore := stepTransitionRows(t, db, id)

			_, _, err := fireStep(db, id, tc.event, nil)
			var invalid *domain.InvalidTransitionError
			require.ErrorAs(t, err, &invalid)
			require.Equal(t, "step", invalid.Entity)
			require.Equal(t, rowsBefore, stepTransitionRows(t, db, id), "no transition written")
			require.Equal(t, before, readStepColumns(t, db, id), "step row unchanged")
		})
	}
}

func TestTransitionStepTxGuardSatisfiedByResolvedParents(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{
		{Name: "p1"}, {Name: "p2"}, {Name: "a", Deps: []string{"p1", "p2"}},
	}})
	testdb.SetStepState(t, db, task.Steps["p1"], domain.StepComplete)
	_, _, err := fireStep(db, task.Steps["a"], domain.StepEvent{Type: domain.EventEnqueue}, nil)
	require.ErrorAs(t, err, new(*domain.InvalidTransitionError), "one parent still pending")

	testdb.SetStepState(t, db, task.Steps["p2"], domain.StepResolvedManually)
	_, to, err := fireStep(db, task.Steps["a"], domain.StepEvent{Type: domain.EventEnqueue}, nil)
	require.NoError(t, err)
	require.Equal(t, domain.StepEnqueued, to)
}

func TestTransitionStepTxWithoutAnyRow(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
	id := task.Steps["a"]
	_, err := db.Exec(`DELETE FROM tasker_workflow_step_transitions WHERE workflow_step_uuid = $1`, id)
	require.NoError(t, err)
	state, err := postgres.CurrentStepState(context.Background(), db, id)
	require.NoError(t, err)
	require.Equal(t, domain.StepPending, state, "no row reads as pending")

	from, to, err := fireStep(db, id, domain.StepEvent{Type: domain.EventEnqueue}, nil)
	require.NoError(t, err)
	require.Equal(t, domain.StepPending, from)
	require.Equal(t, domain.StepEnqueued, to)
	rows := stepTransitionRows(t, db, id)
	require.Len(t, rows, 1)
	require.Equal(t, 1, rows[0].SortKey)
	require.True(t, rows[0].MostRecent)
	require.Equal(t, "pending", rows[0].FromState.String, "literal 'pending' when no row existed")
}

func TestTransitionNotFound(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	_, _, err := fireStep(db, uuid.Must(uuid.NewV7()), domain.StepEvent{Type: domain.EventEnqueue}, nil)
	require.ErrorIs(t, err, ports.ErrNotFound)
	_, _, err = fireTask(db, uuid.Must(uuid.NewV7()), domain.TaskEvent{Type: domain.EventStart})
	require.ErrorIs(t, err, ports.ErrNotFound)
}

func TestTransitionTaskTx(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})

	from, to, err := fireTask(db, task.TaskUUID, domain.TaskEvent{Type: domain.EventStart})
	require.NoError(t, err)
	require.Equal(t, domain.TaskPending, from)
	require.Equal(t, domain.TaskInProgress, to)

	// Complete is refused while a step is incomplete, and writes nothing.
	testdb.SetStepState(t, db, task.Steps["a"], domain.StepComplete)
	before := taskTransitionRows(t, db, task.TaskUUID)
	_, _, err = fireTask(db, task.TaskUUID, domain.TaskEvent{Type: domain.EventComplete})
	var invalid *domain.InvalidTransitionError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, "task", invalid.Entity)
	require.Equal(t, before, taskTransitionRows(t, db, task.TaskUUID))

	testdb.SetStepState(t, db, task.Steps["b"], domain.StepResolvedManually)
	_, to, err = fireTask(db, task.TaskUUID, domain.TaskEvent{Type: domain.EventComplete})
	require.NoError(t, err)
	require.Equal(t, domain.TaskComplete, to)

	rows := taskTransitionRows(t, db, task.TaskUUID)
	require.Len(t, rows, 3)
	requireWellFormedHistory(t, rows)
	require.Equal(t, map[string]any{"type": "Complete"}, decodeEventMetadata(t, rows[2].Metadata).Decoded)
	var complete, completedSet bool
	require.NoError(t, db.QueryRow(`SELECT complete, completed_at IS NOT NULL FROM tasker_tasks WHERE task_uuid = $1`,
		task.TaskUUID).Scan(&complete, &completedSet))
	require.True(t, complete, "complete flag set")
	require.True(t, completedSet, "completed_at set")
	state, err := postgres.CurrentTaskState(context.Background(), db, task.TaskUUID)
	require.NoError(t, err)
	require.Equal(t, domain.TaskComplete, state)
}

func TestTransitionTaskTxFailAndReset(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
	_, to, err := fireTask(db, task.TaskUUID, domain.TaskEvent{Type: domain.EventFail, Message: "Steps in error state"})
	require.NoError(t, err)
	require.Equal(t, domain.TaskError, to)
	_, to, err = fireTask(db, task.TaskUUID, domain.TaskEvent{Type: domain.EventReset})
	require.NoError(t, err)
	require.Equal(t, domain.TaskPending, to)

	rows := taskTransitionRows(t, db, task.TaskUUID)
	requireWellFormedHistory(t, rows)
	require.Equal(t, map[string]any{"type": "Fail", "data": "Steps in error state"}, decodeEventMetadata(t, rows[1].Metadata).Decoded)
	var complete bool
	require.NoError(t, db.Get(&complete, `SELECT complete FROM tasker_tasks WHERE task_uuid = $1`, task.TaskUUID))
	require.False(t, complete)
}

func TestWithTxRollsBackOnErrorAndPanic(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: []testdb.StepSpec{{Name: "a"}}})
	id := task.Steps["a"]
	enqueue := func(tx *sqlx.Tx) {
		_, _, err := postgres.TransitionStepTx(context.Background(), tx, id, domain.StepEvent{Type: domain.EventEnqueue}, nil)
		require.NoError(t, err)
	}
	sentinel := errors.New("stop")
	err := postgres.WithTx(context.Background(), db, func(tx *sqlx.Tx) error { enqueue(tx); return sentinel })
	require.ErrorIs(t, err, sentinel)
	require.Len(t, stepTransitionRows(t, db, id), 1)

	require.PanicsWithValue(t, "boom", func() {
		_ = postgres.WithTx(context.Background(), db, func(tx *sqlx.Tx) error { enqueue(tx); panic("boom") })
	})
	require.Len(t, stepTransitionRows(t, db, id), 1)
	state, err := postgres.CurrentStepState(context.Background(), db, id)
	require.NoError(t, err)
	require.Equal(t, domain.StepPending, state)
}
