package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// outcomeFixture is a claimed step with its step message in the namespace queue.
type outcomeFixture struct {
	db    *sqlx.DB
	task  testdb.CreatedTask
	step  uuid.UUID
	queue string
	msgID int64
}

func newOutcomeFixture(t *testing.T, db *sqlx.DB, store *postgres.StepStore, ns string) outcomeFixture {
	t.Helper()
	testdb.CreateQueue(t, db, domain.QueueStepResults)
	task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: ns, Steps: []testdb.StepSpec{{Name: "a"}}})
	f := outcomeFixture{db: db, task: task, step: task.Steps["a"], queue: domain.QueueName(ns)}
	f.msgID = testdb.SendStepMessage(t, db, f.queue, task.TaskUUID, f.step)
	_, err := store.ClaimStep(context.Background(), f.step, "w1")
	require.NoError(t, err)
	return f
}

// completionMessagesFor returns the completion messages for one step.
func completionMessagesFor(t *testing.T, f outcomeFixture) []domain.SimpleStepMessage {
	t.Helper()
	var out []domain.SimpleStepMessage
	for _, m := range testdb.QueueMessages(t, f.db, domain.QueueStepResults) {
		var msg domain.SimpleStepMessage
		require.NoError(t, json.Unmarshal(m.Message, &msg))
		if msg.StepUUID == f.step {
			var keys map[string]any
			require.NoError(t, json.Unmarshal(m.Message, &keys))
			require.Len(t, keys, 2, "completion message has exactly task_uuid and step_uuid")
			out = append(out, msg)
		}
	}
	return out
}

func stepMessageExists(t *testing.T, f outcomeFixture) bool {
	t.Helper()
	for _, m := range testdb.QueueMessages(t, f.db, f.queue) {
		if m.MsgID == f.msgID {
			return true
		}
	}
	return false
}

func TestPersistOutcome(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)

	cases := []struct {
		name      string
		result    func(id uuid.UUID) domain.StepExecutionResult
		want      domain.StepState
		wantEvent map[string]any
	}{
		{"success", func(id uuid.UUID) domain.StepExecutionResult { return successResult(id, `{"answer":42}`) },
			domain.StepComplete, map[string]any{"type": "Complete"}},
		{"handler failure", func(id uuid.UUID) domain.StepExecutionResult { return failureResult(id, "upstream 503", "http") },
			domain.StepError, map[string]any{"type": "Fail", "data": "upstream 503"}},
		{"worker_lost", func(id uuid.UUID) domain.StepExecutionResult {
			return failureResult(id, "worker lost", domain.ErrorTypeWorkerLost)
		}, domain.StepError, map[string]any{"type": "Fail", "data": "worker lost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newOutcomeFixture(t, db, store, "outcome_ns")
			res := tc.result(f.step)
			ok, err := store.PersistOutcome(context.Background(), ports.StepOutcome{
				TaskUUID: f.task.TaskUUID, StepUUID: f.step, Result: res, Queue: f.queue, MsgID: f.msgID, WorkerID: "w1",
			})
			require.NoError(t, err)
			require.True(t, ok)

			rows := stepTransitionRows(t, db, f.step)
			requireWellFormedHistory(t, rows)
			last := rows[len(rows)-1]
			require.Equal(t, string(tc.want), last.ToState)
			require.Equal(t, "in_progress", last.FromState.String)
			meta := decodeEventMetadata(t, last.Metadata)
			for k, v := range tc.wantEvent {
				require.Equal(t, v, meta.Decoded[k])
			}
			require.Equal(t, "w1", meta.WorkerID)

			var stored domain.StepExecutionResult
			require.NoError(t, json.Unmarshal(readStepColumns(t, db, f.step).Results, &stored))
			require.Equal(t, res.Success, stored.Success)
			require.Equal(t, f.step, stored.StepUUID)

			require.Equal(t, []domain.SimpleStepMessage{{TaskUUID: f.task.TaskUUID, StepUUID: f.step}}, completionMessagesFor(t, f),
				"completion message sent exactly once")
			require.False(t, stepMessageExists(t, f), "step message deleted")
		})
	}
}

func TestPersistOutcomeCASLost(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	f := newOutcomeFixture(t, db, store, "cas_ns")
	testdb.SetStepState(t, db, f.step, domain.StepCancelled) // cancelled while the handler ran
	rowsBefore := stepTransitionRows(t, db, f.step)
	colsBefore := readStepColumns(t, db, f.step)

	ok, err := store.PersistOutcome(context.Background(), ports.StepOutcome{
		TaskUUID: f.task.TaskUUID, StepUUID: f.step, Result: successResult(f.step, `1`), Queue: f.queue, MsgID: f.msgID,
	})
	require.NoError(t, err)
	require.False(t, ok, "outcome discarded")
	require.Equal(t, rowsBefore, stepTransitionRows(t, db, f.step))
	require.Equal(t, colsBefore, readStepColumns(t, db, f.step))
	require.Empty(t, completionMessagesFor(t, f), "nothing sent")
	require.False(t, stepMessageExists(t, f), "step message still deleted")

	// A redelivered duplicate of an already persisted outcome is also discarded.
	ok, err = store.PersistOutcome(context.Background(), ports.StepOutcome{
		TaskUUID: f.task.TaskUUID, StepUUID: f.step, Result: successResult(f.step, `1`), Queue: f.queue, MsgID: f.msgID,
	})
	require.NoError(t, err)
	require.False(t, ok)
}

func TestPersistOutcomeRejectsBadInput(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	f := newOutcomeFixture(t, db, store, "bad_ns")
	other := uuid.Must(uuid.NewV7())
	cases := []struct {
		name    string
		outcome ports.StepOutcome
		is      error
	}{
		{"missing step", ports.StepOutcome{Result: successResult(f.step, `1`)}, nil},
		{"result for another step", ports.StepOutcome{StepUUID: f.step, Result: successResult(other, `1`), Queue: f.queue, MsgID: f.msgID}, nil},
		{"wrong task", ports.StepOutcome{TaskUUID: other, StepUUID: f.step, Result: successResult(f.step, `1`), Queue: f.queue, MsgID: f.msgID}, nil},
		{"unknown step", ports.StepOutcome{StepUUID: other, Result: successResult(other, `1`), Queue: f.queue, MsgID: f.msgID}, ports.ErrNotFound},
	}
	rowsBefore := stepTransitionRows(t, db, f.step)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := store.PersistOutcome(context.Background(), tc.outcome)
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.False(t, ok)
			require.Equal(t, rowsBefore, stepTransitionRows(t, db, f.step), "nothing written")
			require.True(t, stepMessageExists(t, f), "message kept")
			require.Empty(t, completionMessagesFor(t, f))
		})
	}
}
