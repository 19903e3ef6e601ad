package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestLoadAndClaimPath: the pipeline makes one LoadAndClaim call for the
// common case (no LoadStep, no ClaimStep: the mock fails on unexpected calls)
// and applies the decision table to the snapshot it returns when nothing was
// claimed.
func TestLoadAndClaimPath(t *testing.T) {
	t.Parallel()
	taskID, stepID := uuid.New(), uuid.New()
	cases := []struct {
		name   string
		result func(t *testing.T) (ports.StepSnapshot, bool, error)
		expect func(f fixture)
		want   Decision
	}{
		{
			name: "claimed: published without LoadStep or ClaimStep",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return snapshot(t, taskID, stepID, "a", domain.StepInProgress, func(s *ports.StepSnapshot) { s.Step.Attempts = 1 }), true, nil
			},
			expect: func(f fixture) {
				f.bus.EXPECT().PublishExecution(anyCtx, mock.MatchedBy(func(e domain.StepExecutionEvent) bool {
					return e.Claim.StepUUID == stepID && e.Claim.Attempts == 1 && e.StepDefinition.Name == "a"
				})).Return(nil).Once()
			},
			want: DecisionClaimed,
		},
		{
			name: "claimed with its dependency results: no DependencyResults query",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return snapshot(t, taskID, stepID, "b", domain.StepInProgress, func(s *ports.StepSnapshot) {
					s.Step.Attempts = 1
					s.DependencyResults = map[string]json.RawMessage{"a": json.RawMessage(`4`)}
				}), true, nil
			},
			expect: func(f fixture) {
				f.bus.EXPECT().PublishExecution(anyCtx, mock.MatchedBy(func(e domain.StepExecutionEvent) bool {
					return e.StepDefinition.Name == "b" && len(e.DependencyResults) == 1 && string(e.DependencyResults["a"]) == `4`
				})).Return(nil).Once()
			},
			want: DecisionClaimed,
		},
		{
			name: "not claimed, complete: stale message deleted",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return snapshot(t, taskID, stepID, "a", domain.StepComplete), false, nil
			},
			expect: func(f fixture) { f.queue.EXPECT().Delete(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionDeletedStale,
		},
		{
			name: "not claimed, pending with unsatisfied dependencies: deleted",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return snapshot(t, taskID, stepID, "b", domain.StepPending, func(s *ports.StepSnapshot) { s.DependenciesSatisfied = false }), false, nil
			},
			expect: func(f fixture) { f.queue.EXPECT().Delete(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionDeletedUnsatisfied,
		},
		{
			name: "not claimed, step of another task: archived",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return snapshot(t, uuid.New(), stepID, "a", domain.StepEnqueued), false, nil
			},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedMismatch,
		},
		{
			name: "not claimed, task of another namespace: archived",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return snapshot(t, taskID, stepID, "a", domain.StepEnqueued, func(s *ports.StepSnapshot) { s.Task.NamespaceName = "other" }), false, nil
			},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedMismatch,
		},
		{
			name: "step not found: archived",
			result: func(t *testing.T) (ports.StepSnapshot, bool, error) {
				return ports.StepSnapshot{}, false, fmt.Errorf("load and claim: %w", ports.ErrNotFound)
			},
			expect: func(f fixture) { f.queue.EXPECT().Archive(anyCtx, testQueue, int64(42)).Return(true, nil).Once() },
			want:   DecisionArchivedMismatch,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			f.steps.EXPECT().LoadAndClaim(anyCtx, stepID, taskID, "examples", "worker-test").Return(tc.result(t)).Once()
			tc.expect(f)
			var rel releaseCounter
			d, err := f.p.Process(context.Background(), testQueue, message(taskID, stepID), rel.fn())
			require.NoError(t, err)
			require.Equal(t, tc.want, d)
			if d == DecisionClaimed {
				require.Equal(t, 0, rel.count(), "a claimed message is held until its outcome is persisted")
				require.Equal(t, 1, f.p.InFlight())
				f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
					return o.StepUUID == stepID && o.Queue == testQueue && o.MsgID == 42
				})).Return(true, nil).Once()
				require.Equal(t, 1, f.p.FailInFlight(context.Background(), domain.ErrorTypeWorkerShutdown, "test over"))
				f.p.WaitHeartbeats()
				require.Equal(t, 1, rel.count())
				return
			}
			require.Equal(t, 1, rel.count())
		})
	}
}
