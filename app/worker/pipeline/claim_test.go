package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// claimWin sets up a winning claim of step "b" and captures the published event.
func claimWin(t *testing.T, f fixture, taskID, stepID uuid.UUID, state domain.StepState) (*domain.StepExecutionEvent, *releaseCounter) {
	t.Helper()
	f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "b", state), false, nil).Once()
	claimed := snapshot(t, taskID, stepID, "b", domain.StepInProgress, func(s *ports.StepSnapshot) {
		s.Step.Attempts = 1
		s.Step.Inputs = json.RawMessage(`{"k":"base"}`)
	})
	f.steps.EXPECT().ClaimStep(anyCtx, stepID, "worker-test").Return(claimed, nil).Once()
	f.steps.EXPECT().DependencyResults(anyCtx, stepID).Return(map[string]json.RawMessage{
		"a":   json.RawMessage(`{"step_uuid":"` + uuid.NewString() + `","success":true,"result":4,"status":"completed","metadata":{}}`),
		"raw": json.RawMessage(`[1,2]`),
	}, nil).Once()
	var ev domain.StepExecutionEvent
	f.bus.EXPECT().PublishExecution(anyCtx, mock.Anything).Run(func(_ context.Context, e domain.StepExecutionEvent) { ev = e }).Return(nil).Once()
	var rel releaseCounter
	d, err := f.p.Process(context.Background(), testQueue, message(taskID, stepID), rel.fn())
	require.NoError(t, err)
	require.Equal(t, DecisionClaimed, d)
	return &ev, &rel
}

func TestClaimWinPublishesTheHandlerPayload(t *testing.T) {
	t.Parallel()
	for _, state := range []domain.StepState{domain.StepPending, domain.StepEnqueued} {
		t.Run(string(state), func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			taskID, stepID := uuid.New(), uuid.New()
			ev, rel := claimWin(t, f, taskID, stepID, state)

			require.NotEqual(t, uuid.Nil, ev.EventID)
			require.Equal(t, 1, ev.Claim.Attempts, "attempts after the claim (D-s)")
			require.Equal(t, 3, ev.Claim.RetryLimit)
			require.Equal(t, testQueue, ev.Claim.Queue)
			require.Equal(t, int64(42), ev.Claim.MsgID)
			require.Equal(t, "examples", ev.Claim.Namespace)
			require.Equal(t, "b", ev.StepDefinition.Name)
			require.Equal(t, "test", ev.StepDefinition.Handler.Initialization["k"], "definition resolved for the worker environment (D-q)")
			require.Equal(t, uint32(900), *ev.StepDefinition.TimeoutSeconds)
			require.Equal(t, t0.Add(900*time.Second), ev.Deadline)
			require.JSONEq(t, `4`, string(ev.DependencyResults["a"]), "StepExecutionResult unwrapped to its result (D-r)")
			require.JSONEq(t, `[1,2]`, string(ev.DependencyResults["raw"]), "other shapes passed as is")
			require.JSONEq(t, `{"even_number":2}`, string(ev.Task.Context))
			require.JSONEq(t, `{"k":"base"}`, string(ev.Step.Inputs))

			require.Equal(t, 0, rel.count(), "a claimed step keeps its slot until the outcome is persisted")
			require.Equal(t, 1, f.p.InFlight())

			// A duplicate message for the step we run only extends the vt.
			f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "b", domain.StepInProgress, func(s *ports.StepSnapshot) {
				at := t0.Add(-time.Hour)
				s.LastAttemptedAt = &at
			}), false, nil).Once()
			f.queue.EXPECT().SetVT(anyCtx, testQueue, int64(7), 30).Return(true, nil).Once()
			dup := message(taskID, stepID)
			dup.MsgID = 7
			d, err := f.p.Process(context.Background(), testQueue, dup, func() {})
			require.NoError(t, err)
			require.Equal(t, DecisionExtendedOwn, d)

			f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
				return o.StepUUID == stepID && o.MsgID == 42 && o.Result.Success
			})).Return(true, nil).Once()
			require.NoError(t, f.p.Complete(context.Background(), domain.StepCompletionEvent{EventID: ev.EventID, Claim: ev.Claim,
				Result: f.p.Results().Success(stepID, t0, t0, successOf(4))}))
			require.Equal(t, 1, rel.count())
			require.Zero(t, f.p.InFlight())
			f.p.WaitHeartbeats()
			st := f.p.Status()
			require.Equal(t, uint64(1), st.Succeeded)
			require.Equal(t, "examples.square", st.Handlers[0].Callable)
		})
	}
}

func TestClaimLostRedecidesWithTheNewState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		after  domain.StepState
		expect func(f fixture)
		want   Decision
	}{
		{"winner still running → extend vt to the remaining claim time", domain.StepInProgress, func(f fixture) {
			f.queue.EXPECT().SetVT(anyCtx, testQueue, int64(42), 300).Return(true, nil).Once()
		}, DecisionExtendedClaimed},
		{"winner already finished → stale, delete", domain.StepComplete, func(f fixture) {
			f.queue.EXPECT().Delete(anyCtx, testQueue, int64(42)).Return(true, nil).Once()
		}, DecisionDeletedStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			taskID, stepID := uuid.New(), uuid.New()
			f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepEnqueued), false, nil).Once()
			f.steps.EXPECT().ClaimStep(anyCtx, stepID, "worker-test").
				Return(ports.StepSnapshot{}, &domain.NotClaimableError{StepUUID: stepID.String(), Current: tt.after}).Once()
			f.steps.EXPECT().LoadStep(anyCtx, stepID).Return(snapshot(t, taskID, stepID, "a", tt.after, func(s *ports.StepSnapshot) {
				at := t0
				s.LastAttemptedAt = &at
			}), nil).Once()
			tt.expect(f)
			var rel releaseCounter
			d, err := f.p.Process(context.Background(), testQueue, message(taskID, stepID), rel.fn())
			require.NoError(t, err)
			require.Equal(t, tt.want, d)
			require.Equal(t, 1, rel.count())
		})
	}
}

func TestHeartbeatExtendsVTUntilPersisted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	ev, _ := claimWin(t, f, taskID, stepID, domain.StepEnqueued)
	beat := make(chan struct{}, 4)
	f.queue.EXPECT().SetVT(mock.Anything, testQueue, int64(42), 30).Run(func(context.Context, string, int64, int) { beat <- struct{}{} }).Return(true, nil)
	require.Equal(t, 10*time.Second, <-f.clock.afters, "heartbeat every vt/3")
	f.clock.Fire()
	<-beat
	require.Equal(t, 10*time.Second, <-f.clock.afters)
	f.clock.Fire()
	<-beat

	f.steps.EXPECT().PersistOutcome(anyCtx, mock.Anything).Return(true, nil).Once()
	require.NoError(t, f.p.Complete(context.Background(), domain.StepCompletionEvent{EventID: ev.EventID,
		Result: f.p.Results().Success(stepID, t0, t0, successOf(1))}))
	f.p.WaitHeartbeats()
}

func TestPersistRetriesACommitFailure(t *testing.T) {
	t.Parallel()
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	ev, rel := claimWin(t, f, taskID, stepID, domain.StepEnqueued)
	<-f.clock.afters // heartbeat armed
	f.queue.EXPECT().SetVT(mock.Anything, testQueue, int64(42), 30).Return(true, nil).Maybe()
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.Anything).Return(false, errors.New("commit failed")).Twice()
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.Anything).Return(true, nil).Once()
	done := make(chan error, 1)
	go func() {
		done <- f.p.Complete(context.Background(), domain.StepCompletionEvent{EventID: ev.EventID,
			Result: f.p.Results().Success(stepID, t0, t0, successOf(1))})
	}()
	for i := 0; i < 2; i++ {
		for d := <-f.clock.afters; d == 10*time.Second; d = <-f.clock.afters {
			// heartbeat re-arming; wait for the backoff wait
		}
		require.Equal(t, 1, f.p.InFlight(), "still in flight (heartbeat continues) while retrying")
		f.clock.Fire()
	}
	require.NoError(t, <-done)
	require.Equal(t, 1, rel.count())
	require.Zero(t, f.p.InFlight())
	f.p.WaitHeartbeats()
}

func TestLateCompletionIsIgnored(t *testing.T) {
	t.Parallel()
	f := setup(t)
	require.NoError(t, f.p.Complete(context.Background(), domain.StepCompletionEvent{EventID: uuid.New()}))
	require.Equal(t, uint64(1), f.p.Status().LateCompletions)
}

func TestCorrelationTimeoutFailsTheStepOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	ev, rel := claimWin(t, f, taskID, stepID, domain.StepEnqueued)
	require.Zero(t, f.p.SweepCorrelations(context.Background()), "not expired yet")
	f.clock.Advance(time.Minute)
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
		return !o.Result.Success && o.Result.Error.Retryable && *o.Result.Error.ErrorType == domain.ErrorTypeTimeout
	})).Return(true, nil).Once()
	require.Equal(t, 1, f.p.SweepCorrelations(context.Background()))
	require.Equal(t, 1, rel.count())
	// The handler's completion arrives afterwards: ignored, nothing persisted.
	require.NoError(t, f.p.Complete(context.Background(), domain.StepCompletionEvent{EventID: ev.EventID}))
	require.Equal(t, uint64(1), f.p.Status().LateCompletions)
	f.p.WaitHeartbeats()
}

func TestFailInFlightPersistsWorkerShutdown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	_, rel := claimWin(t, f, taskID, stepID, domain.StepEnqueued)
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
		return !o.Result.Success && o.Result.Error.Retryable && *o.Result.Error.ErrorType == domain.ErrorTypeWorkerShutdown
	})).Return(true, nil).Once()
	require.Equal(t, 1, f.p.FailInFlight(context.Background(), domain.ErrorTypeWorkerShutdown, "shutting down"))
	require.Equal(t, 1, rel.count())
	require.Zero(t, f.p.FailInFlight(context.Background(), domain.ErrorTypeWorkerShutdown, "again"))
	st := f.p.Status()
	require.Equal(t, uint64(1), st.Failed)
	require.Equal(t, domain.ErrorTypeWorkerShutdown, st.RecentErrors[0].ErrorType)
	f.p.WaitHeartbeats()
}

func TestPublishFailureAfterClaimIsPersistedAsFailure(t *testing.T) {
	t.Parallel()
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepEnqueued), false, nil).Once()
	f.steps.EXPECT().ClaimStep(anyCtx, stepID, "worker-test").Return(snapshot(t, taskID, stepID, "a", domain.StepInProgress), nil).Once()
	// "a" is a root step: no dependency query.
	f.bus.EXPECT().PublishExecution(anyCtx, mock.Anything).Return(context.Canceled).Once()
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
		return *o.Result.Error.ErrorType == domain.ErrorTypeWorkerShutdown && o.Result.Error.Retryable
	})).Return(true, nil).Once()
	var rel releaseCounter
	_, err := f.p.Process(context.Background(), testQueue, message(taskID, stepID), rel.fn())
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, rel.count())
	require.Zero(t, f.p.InFlight())
	f.p.WaitHeartbeats()
}

func TestDependencyLoadFailureAfterClaimIsPersistedAsFailure(t *testing.T) {
	t.Parallel()
	f := setup(t)
	taskID, stepID := uuid.New(), uuid.New()
	f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "b", domain.StepEnqueued), false, nil).Once()
	f.steps.EXPECT().ClaimStep(anyCtx, stepID, "worker-test").Return(snapshot(t, taskID, stepID, "b", domain.StepInProgress), nil).Once()
	f.steps.EXPECT().DependencyResults(anyCtx, stepID).Return(nil, errors.New("db down")).Once()
	f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
		return !o.Result.Success && o.Result.Error.Retryable
	})).Return(true, nil).Once()
	var rel releaseCounter
	_, err := f.p.Process(context.Background(), testQueue, message(taskID, stepID), rel.fn())
	require.ErrorContains(t, err, "db down")
	require.Equal(t, 1, rel.count())
	require.Zero(t, f.p.InFlight())
	f.p.WaitHeartbeats()
}
