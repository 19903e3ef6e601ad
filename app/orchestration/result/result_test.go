package result_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// finalizer records FinalizeAndEnqueue calls. Like the store, a successful
// call deletes the consumed messages from q (when set) as part of its work.
type finalizer struct {
	mu       sync.Mutex
	calls    []uuid.UUID
	consumed []ports.ConsumedMessages
	rep      ports.FinalizationReport
	err      error
	q        *memQueue
}

func (f *finalizer) FinalizeAndEnqueue(_ context.Context, id uuid.UUID, consumed ports.ConsumedMessages) (ports.FinalizationReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, id)
	f.consumed = append(f.consumed, consumed)
	if f.err == nil && f.q != nil {
		f.q.consume(consumed.MsgIDs...)
	}
	return f.rep, f.err
}

// creator is a TaskCreator returning a fixed outcome.
type creator struct {
	resp domain.TaskCreationResponse
	err  error
}

func (c creator) CreateTask(context.Context, domain.TaskRequest) (domain.TaskCreationResponse, error) {
	return c.resp, c.err
}

// enqueuer records EnqueueTask calls.
type enqueuer struct{ calls []uuid.UUID }

func (e *enqueuer) EnqueueTask(_ context.Context, id uuid.UUID) (int, error) {
	e.calls = append(e.calls, id)
	return 1, errors.New("logged only")
}

type clock struct{ now time.Time }

func (c clock) Now() time.Time                       { return c.now }
func (c clock) After(time.Duration) <-chan time.Time { return nil }

type fixture struct {
	steps *mocks.StepResultStore
	fin   *finalizer
	enq   *enqueuer
	p     *result.Processor
}

func setup(t *testing.T, cfg result.Config, c creator) fixture {
	f := fixture{steps: mocks.NewStepResultStore(t), fin: &finalizer{}, enq: &enqueuer{}}
	f.p = result.New(cfg, result.Deps{Steps: f.steps, Finalizer: f.fin, Enqueuer: f.enq, Creator: c,
		Clock: clock{now: time.Date(2025, 8, 27, 12, 0, 0, 0, time.UTC)}})
	return f
}

func message(task, step uuid.UUID) []byte {
	b, _ := json.Marshal(domain.SimpleStepMessage{TaskUUID: task, StepUUID: step})
	return b
}

func failure(step uuid.UUID, retryable bool, om *domain.OrchestrationMetadata) json.RawMessage {
	r := domain.NewFailureResult(step, domain.StepFailure{Message: "boom", Retryable: retryable}, time.Now(), time.Now(), "w")
	r.OrchestrationMetadata = om
	b, _ := json.Marshal(r)
	return b
}

func TestStepResultBackoff(t *testing.T) {
	task, step := uuid.New(), uuid.New()
	cases := []struct {
		name     string
		attempts int
		results  json.RawMessage
		cfg      result.Config
		want     int
	}{
		{"exponential 2^attempts", 2, failure(step, true, nil), result.Config{}, 4},
		{"exponential capped", 12, failure(step, true, nil), result.Config{MaxBackoffSeconds: 300}, 300},
		{"huge attempts capped", 64, failure(step, true, nil), result.Config{MaxBackoffSeconds: 10}, 10},
		{"retry-after seconds, any case", 1, failure(step, true, &domain.OrchestrationMetadata{
			Headers: map[string]string{"Retry-After": "17"}}), result.Config{}, 17},
		{"retry-after HTTP date", 1, failure(step, true, &domain.OrchestrationMetadata{
			Headers: map[string]string{"retry-after": "Wed, 27 Aug 2025 12:01:00 GMT"}}), result.Config{}, 60},
		{"backoff hint", 1, failure(step, true, &domain.OrchestrationMetadata{
			BackoffHint: &domain.BackoffHint{BackoffType: domain.BackoffRateLimit, DelaySeconds: 42}}), result.Config{}, 42},
		{"hint capped", 1, failure(step, true, &domain.OrchestrationMetadata{
			BackoffHint: &domain.BackoffHint{BackoffType: domain.BackoffCustom, DelaySeconds: 9000}}), result.Config{}, 300},
		{"legacy raw results", 3, json.RawMessage(`{"value":1}`), result.Config{}, 8},
		{"null results", 1, nil, result.Config{}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, tc.cfg, creator{})
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepError, Retryable: true, Attempts: tc.attempts, RetryLimit: 100, Results: tc.results}, nil)
			f.steps.EXPECT().SetBackoff(mock.Anything, step, tc.want).Return(true, nil)
			require.True(t, f.p.ProcessStepResult(context.Background(), message(task, step)))
			require.Equal(t, []uuid.UUID{task}, f.fin.calls)
		})
	}
}

func TestStepResultJitterStaysWithinTenPercent(t *testing.T) {
	step := uuid.New()
	f := setup(t, result.Config{Jitter: true}, creator{})
	var got []int
	f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{StepUUID: step,
		State: domain.StepError, Retryable: true, Attempts: 8, RetryLimit: 100}, nil)
	f.steps.EXPECT().SetBackoff(mock.Anything, step, mock.Anything).RunAndReturn(func(_ context.Context, _ uuid.UUID, s int) (bool, error) {
		got = append(got, s)
		return true, nil
	})
	for i := 0; i < 50; i++ {
		f.p.ProcessStepResult(context.Background(), message(uuid.New(), step))
	}
	for _, s := range got {
		require.InDelta(t, 256, s, 25.6+1)
	}
}

func TestStepResultDispositions(t *testing.T) {
	task, step := uuid.New(), uuid.New()
	loadErr := errors.New("db down")
	cases := []struct {
		name     string
		body     []byte
		arrange  func(f fixture)
		consumed bool
		finalize bool
	}{
		{"unparseable", []byte(`not json`), func(fixture) {}, true, false},
		{"missing step uuid", []byte(`{"task_uuid":"` + task.String() + `"}`), func(fixture) {}, true, false},
		{"unknown step", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{}, &ports.NotFoundError{What: "x"})
		}, true, false},
		{"load failure is left for redelivery", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{}, loadErr)
		}, false, false},
		{"completed step only finalizes", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepComplete}, nil)
		}, true, true},
		{"out of attempts gets no backoff", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepError, Retryable: true, Attempts: 3, RetryLimit: 3}, nil)
		}, true, true},
		{"non-retryable failure marks the step", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepError, Retryable: true, Attempts: 1, RetryLimit: 3, Results: failure(step, false, nil)}, nil)
			f.steps.EXPECT().MarkNotRetryable(mock.Anything, step).Return(true, nil)
		}, true, true},
		{"mark failure is left", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepError, Retryable: true, Attempts: 1, RetryLimit: 3, Results: failure(step, false, nil)}, nil)
			f.steps.EXPECT().MarkNotRetryable(mock.Anything, step).Return(false, loadErr)
		}, false, false},
		{"backoff failure is left", message(task, step), func(f fixture) {
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepError, Retryable: true, Attempts: 1, RetryLimit: 3}, nil)
			f.steps.EXPECT().SetBackoff(mock.Anything, step, 2).Return(false, loadErr)
		}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, result.Config{}, creator{})
			tc.arrange(f)
			require.Equal(t, tc.consumed, f.p.ProcessStepResult(context.Background(), tc.body))
			require.Equal(t, tc.finalize, len(f.fin.calls) == 1)
		})
	}
}

func TestStepResultFinalizeOutcomes(t *testing.T) {
	task, step := uuid.New(), uuid.New()
	for _, tc := range []struct {
		name     string
		rep      ports.FinalizationReport
		err      error
		consumed bool
	}{
		{"task completed", ports.FinalizationReport{From: domain.TaskInProgress, To: domain.TaskComplete}, nil, true},
		{"task vanished", ports.FinalizationReport{}, &ports.NotFoundError{What: "gone"}, true},
		{"transient", ports.FinalizationReport{}, errors.New("deadlock"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, result.Config{}, creator{})
			metrics := mocks.NewOrchestrationMetrics(t)
			if tc.rep.To != tc.rep.From {
				metrics.EXPECT().TaskFinalized(tc.rep.To).Once()
			}
			f.fin.rep, f.fin.err = tc.rep, tc.err
			p := result.New(result.Config{}, result.Deps{Steps: f.steps, Finalizer: f.fin, Metrics: metrics})
			f.steps.EXPECT().LoadStepResult(mock.Anything, step).Return(ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepComplete}, nil)
			require.Equal(t, tc.consumed, p.ProcessStepResult(context.Background(), message(task, step)))
		})
	}
}
