package pipeline

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

// fakeProbe answers OtherHolder with a fixed value and counts calls.
type fakeProbe struct {
	mu    sync.Mutex
	other bool
	calls int
}

func (p *fakeProbe) OtherHolder(context.Context, string, int64, string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.other, nil
}

func heartbeatSetup(t *testing.T, probe *fakeProbe) fixture {
	t.Helper()
	f := fixture{steps: mocks.NewStepStore(t), queue: mocks.NewQueue(t), bus: mocks.NewEventBus(t), clock: newFakeClock(t0)}
	p, err := New(Config{WorkerID: "worker-test", Environment: "test", VisibilityTimeoutSeconds: 30,
		StepClaimTimeout: 300 * time.Second, CorrelationTimeout: time.Minute, PersistRetryFor: time.Minute},
		Deps{Steps: f.steps, Queue: f.queue, Bus: f.bus, Clock: f.clock, Heartbeat: probe})
	require.NoError(t, err)
	f.p = p
	return f
}

// A redelivered message of an in_progress step claimed 10 s ago (well within
// the 300 s claim timeout) rescues the step at once when no other message
// for it is invisible: its holder stopped extending the visibility.
func TestHeartbeatExpiryRescuesBeforeClaimTimeout(t *testing.T) {
	taskID, stepID := uuid.New(), uuid.New()
	tests := []struct {
		name      string
		readCt    int
		other     bool
		want      Decision
		probeCall int
	}{
		{name: "redelivered, no live holder: rescued", readCt: 2, want: DecisionFailedWorkerLost, probeCall: 1},
		{name: "redelivered, a duplicate is held by a live worker: wait for the claim timeout", readCt: 2, other: true,
			want: DecisionExtendedClaimed, probeCall: 1},
		{name: "first delivery (a duplicate message): wait for the claim timeout", readCt: 1, want: DecisionExtendedClaimed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			probe := &fakeProbe{other: tt.other}
			f := heartbeatSetup(t, probe)
			at := t0.Add(-10 * time.Second)
			f.loadAndClaim(stepID).Return(snapshot(t, taskID, stepID, "a", domain.StepInProgress,
				func(s *ports.StepSnapshot) { s.LastAttemptedAt = &at }), false, nil).Once()
			switch tt.want {
			case DecisionFailedWorkerLost:
				f.steps.EXPECT().PersistOutcome(anyCtx, mock.MatchedBy(func(o ports.StepOutcome) bool {
					return o.StepUUID == stepID && o.Result.Error.Retryable && *o.Result.Error.ErrorType == domain.ErrorTypeWorkerLost &&
						strings.Contains(o.Result.Error.Message, "stopped extending")
				})).Return(true, nil).Once()
			default:
				f.queue.EXPECT().SetVT(anyCtx, testQueue, int64(42), 290).Return(true, nil).Once()
			}
			msg := message(taskID, stepID)
			msg.ReadCt = tt.readCt
			d, err := f.p.Process(context.Background(), testQueue, msg, func() {})
			require.NoError(t, err)
			require.Equal(t, tt.want, d)
			require.Equal(t, tt.probeCall, probe.calls)
		})
	}
}
