package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

var anyCtx = mock.Anything

// TestDecisionTable covers every row of the contract §9.3 step 2 table
// that does not claim: each case sets up the store's answer and the one
// queue operation the row prescribes; the mocks fail the test on any other
// call (e.g. a claim or a delete where an archive is due).
func TestDecisionTable(t *testing.T) {
	t.Parallel()
	taskID, stepID := uuid.New(), uuid.New()
	lastAttempt := func(ago time.Duration) snapOpt {
		return func(s *ports.StepSnapshot) { at := t0.Add(-ago); s.LastAttemptedAt = &at }
	}
	tests := []struct {
		name   string
		msg    ports.QueueMessage
		load   func(f fixture)
		expect func(f fixture)
		want   Decision
	}{
		{
			name:   "not JSON is poison",
			msg:    ports.QueueMessage{MsgID: 42, Message: json.RawMessage(`not json`)},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedPoison,
		},
		{
			// Issue 13 risk 7: a 20 MB message was decoded and held; now
			// anything over worker.limits.max_message_bytes is poison.
			name: "oversized message is poison",
			msg: ports.QueueMessage{MsgID: 42, Message: json.RawMessage(`{"task_uuid":"` + taskID.String() + `","step_uuid":"` +
				stepID.String() + `","pad":"` + strings.Repeat("x", DefaultMaxMessageBytes) + `"}`)},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedPoison,
		},
		{
			name:   "missing step_uuid is poison",
			msg:    ports.QueueMessage{MsgID: 42, Message: json.RawMessage(`{"task_uuid":"` + taskID.String() + `"}`)},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedPoison,
		},
		{
			name:   "non-UUID task_uuid is poison",
			msg:    ports.QueueMessage{MsgID: 42, Message: json.RawMessage(`{"task_uuid":"x","step_uuid":"` + stepID.String() + `"}`)},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedPoison,
		},
		{
			name: "step or task not found is archived",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(ports.StepSnapshot{}, false, ports.ErrNotFound).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedMismatch,
		},
		{
			name: "step of another task is archived",
			msg:  message(uuid.New(), stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepEnqueued), false, nil).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedMismatch,
		},
		{
			name: "task of another namespace is archived",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepEnqueued,
					func(s *ports.StepSnapshot) { s.Task.NamespaceName = "billing" }), false, nil).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedMismatch,
		},
		{
			name: "pending with dependencies unsatisfied is deleted",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "b", domain.StepPending,
					func(s *ports.StepSnapshot) { s.DependenciesSatisfied = false }), false, nil).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().Delete(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionDeletedUnsatisfied,
		},
		{
			name: "in_progress within the claim timeout extends vt to the remaining claim time",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepInProgress, lastAttempt(100*time.Second)), false, nil).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().SetVT(anyCtx, testQueue, int64(42), 200).Return(true, nil).Once() },
			want:   DecisionExtendedClaimed,
		},
		{
			name: "in_progress claim timeout honours timeout_seconds+60 of the environment-resolved step",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				// b has timeout 900 in env "test" → claim timeout 960 s > 300 s.
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "b", domain.StepInProgress, lastAttempt(400*time.Second)), false, nil).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().SetVT(anyCtx, testQueue, int64(42), 560).Return(true, nil).Once() },
			want:   DecisionExtendedClaimed,
		},
		{
			name: "in_progress past the claim timeout is failed as worker_lost in the outcome transaction",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepInProgress, lastAttempt(301*time.Second)), false, nil).Once()
			},
			expect: func(f fixture) {
				f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
					return o.StepUUID == stepID && o.TaskUUID == taskID && o.Queue == testQueue && o.MsgID == 42 &&
						!o.Result.Success && o.Result.Error.Retryable && o.Result.Metadata.Retryable &&
						*o.Result.Error.ErrorType == domain.ErrorTypeWorkerLost
				})).Return(true, nil).Once()
			},
			want: DecisionFailedWorkerLost,
		},
		{
			name: "in_progress without last_attempted_at is treated as abandoned",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepInProgress), false, nil).Once()
			},
			expect: func(f fixture) { f.steps.EXPECT().PersistOutcome(anyCtx, mock.Anything).Return(true, nil).Once() },
			want:   DecisionFailedWorkerLost,
		},
	}
	for _, st := range []domain.StepState{domain.StepError, domain.StepComplete, domain.StepCancelled, domain.StepResolvedManually} {
		tests = append(tests, struct {
			name   string
			msg    ports.QueueMessage
			load   func(f fixture)
			expect func(f fixture)
			want   Decision
		}{
			name: string(st) + " is stale and deleted",
			msg:  message(taskID, stepID),
			load: func(f fixture) {
				f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", st), false, nil).Once()
			},
			expect: func(f fixture) { f.queue.EXPECT().Delete(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionDeletedStale,
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			if tt.load != nil {
				tt.load(f)
			}
			tt.expect(f)
			var rel releaseCounter
			d, err := f.p.Process(context.Background(), testQueue, tt.msg, rel.fn())
			require.NoError(t, err)
			require.Equal(t, tt.want, d)
			require.Equal(t, 1, rel.count(), "the slot is released once")
			require.Zero(t, f.p.InFlight())
			require.Equal(t, uint64(1), f.p.Status().Decisions[string(tt.want)])
			if tt.want == DecisionArchivedPoison {
				require.Equal(t, uint64(1), f.p.Status().PoisonArchived, "the poison count is the archived-poison decisions")
			} else {
				require.Zero(t, f.p.Status().PoisonArchived)
			}
		})
	}
}

func TestMessageReadTooOftenIsArchived(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.p.cfg.MaxReceiveCount = 5
	f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once()
	m := message(uuid.New(), uuid.New())
	m.ReadCt = 6
	d, err := f.p.Process(context.Background(), testQueue, m, nil)
	require.NoError(t, err)
	require.Equal(t, DecisionArchivedRedelivery, d, "archived before the store is even asked")

	f2 := setup(t)
	f2.p.cfg.MaxReceiveCount = 5
	m.ReadCt = 5
	f2.loadAndClaim(mock.Anything).Return(ports.StepSnapshot{}, false, ports.ErrNotFound).Once()
	f2.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once()
	d, err = f2.p.Process(context.Background(), testQueue, m, nil)
	require.NoError(t, err)
	require.Equal(t, DecisionArchivedMismatch, d, "at the limit the message is still processed")
}

func TestInfrastructureErrorsLeaveTheMessage(t *testing.T) {
	t.Parallel()
	taskID, stepID := uuid.New(), uuid.New()
	boom := errors.New("db down")
	tests := []struct {
		name  string
		setup func(f fixture)
	}{
		{"load fails", func(f fixture) {
			f.loadAndClaim(stepID).Return(ports.StepSnapshot{}, false, boom).Once()
		}},
		{"claim fails", func(f fixture) {
			f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepEnqueued), false, nil).Once()
			f.steps.EXPECT().ClaimStep(anyCtx, stepID, "worker-test").Return(ports.StepSnapshot{}, boom).Once()
		}},
		{"delete fails", func(f fixture) {
			f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepComplete), false, nil).Once()
			f.queue.EXPECT().Delete(anyCtx, testQueue, int64(42)).Return(false, boom).Once()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			tt.setup(f)
			var rel releaseCounter
			_, err := f.p.Process(context.Background(), testQueue, message(taskID, stepID), rel.fn())
			require.ErrorIs(t, err, boom)
			require.Equal(t, 1, rel.count())
			require.Zero(t, f.p.InFlight())
		})
	}
}
