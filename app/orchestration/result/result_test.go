package result_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// batches is an in-memory result.Batches. Like the store it looks up each
// result's step in views (unknown steps are reported, their messages kept),
// asks the batch's Bookkeeping about it, and on success deletes the consumed
// messages from q (when set) as part of its work.
type batches struct {
	mu      sync.Mutex
	views   map[uuid.UUID]ports.StepResultView
	calls   []ports.TaskBatch
	bk      map[uuid.UUID]ports.ResultBookkeeping
	rep     ports.TaskBatchReport
	err     error
	q       *memQueue
	created []uuid.UUID
}

func newBatches(views ...ports.StepResultView) *batches {
	b := &batches{views: map[uuid.UUID]ports.StepResultView{}, bk: map[uuid.UUID]ports.ResultBookkeeping{}}
	for _, v := range views {
		b.views[v.StepUUID] = v
	}
	return b
}

func (f *batches) ProcessBatch(_ context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, b)
	if f.err != nil {
		return ports.TaskBatchReport{}, f.err
	}
	rep := f.rep
	var consumed []int64
	for i, r := range b.Results {
		v, ok := f.views[r.StepUUID]
		if !ok {
			rep.UnknownResults = append(rep.UnknownResults, i)
			continue
		}
		if b.Bookkeeping != nil {
			f.bk[r.StepUUID] = b.Bookkeeping(v)
		}
		consumed = append(consumed, r.MsgID)
	}
	for i, t := range b.Tasks {
		if t.TaskUUID == unknownTask {
			rep.UnknownTasks = append(rep.UnknownTasks, i)
			continue
		}
		if t.MsgID == 0 {
			f.created = append(f.created, t.TaskUUID)
		}
		consumed = append(consumed, t.MsgID)
	}
	if f.q != nil {
		f.q.consume(b.Queue, consumed...)
	}
	return rep, nil
}

// unknownTask is the task the batches fake does not know.
var unknownTask = uuid.MustParse("00000000-0000-0000-0000-00000000dead")

// creator is a TaskCreator returning a fixed outcome.
type creator struct {
	resp domain.TaskCreationResponse
	err  error
}

func (c creator) CreateTask(context.Context, domain.TaskRequest) (domain.TaskCreationResponse, error) {
	return c.resp, c.err
}

type clock struct{ now time.Time }

func (c clock) Now() time.Time                       { return c.now }
func (c clock) After(time.Duration) <-chan time.Time { return nil }

type fixture struct {
	q       *memQueue
	batches *batches
	p       *result.Processor
}

func setup(t *testing.T, cfg result.Config, c creator, views ...ports.StepResultView) fixture {
	f := fixture{q: newMemQueue(t), batches: newBatches(views...)}
	f.batches.q = f.q
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Millisecond
	}
	f.p = result.New(cfg, result.Deps{Queue: f.q, Batches: f.batches, Creator: c,
		Clock: clock{now: time.Date(2025, 8, 27, 12, 0, 0, 0, time.UTC)}})
	return f
}

// process runs the processor until the messages ids are settled.
func (f fixture) process(t *testing.T, ids ...msgRef) {
	stop := runProcessor(t, f.p, nil)
	require.Eventually(t, func() bool { return f.q.settled(ids...) }, 5*time.Second, time.Millisecond)
	stop()
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

func intp(i int) *int { return &i }

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
			f := setup(t, tc.cfg, creator{}, ports.StepResultView{TaskUUID: task, StepUUID: step,
				State: domain.StepError, Retryable: true, Attempts: tc.attempts, RetryLimit: 100, Results: tc.results})
			id := f.q.add(domain.QueueStepResults, string(message(task, step)))
			f.process(t, id)
			require.Equal(t, ports.ResultBookkeeping{BackoffSeconds: intp(tc.want)}, f.batches.bk[step])
			require.True(t, f.q.consumed[id])
		})
	}
}

func TestStepResultJitterStaysWithinTenPercent(t *testing.T) {
	step := uuid.New()
	f := setup(t, result.Config{Jitter: true}, creator{}, ports.StepResultView{StepUUID: step,
		State: domain.StepError, Retryable: true, Attempts: 8, RetryLimit: 100})
	var got []int
	for i := 0; i < 50; i++ {
		id := f.q.add(domain.QueueStepResults, string(message(uuid.New(), step)))
		f.process(t, id)
		got = append(got, *f.batches.bk[step].BackoffSeconds)
	}
	distinct := map[int]bool{}
	for _, s := range got {
		require.InDelta(t, 256, s, 25.6+1)
		distinct[s] = true
	}
	require.Greater(t, len(distinct), 1, "jitter varies the backoff")
}

func TestStepResultBookkeepingAndDispositions(t *testing.T) {
	task, step := uuid.New(), uuid.New()
	cases := []struct {
		name     string
		body     []byte
		view     *ports.StepResultView
		archived bool
		bk       ports.ResultBookkeeping
	}{
		// pgmq holds only JSON documents: unparseable is one that is no message.
		{"unparseable", []byte(`"not json"`), nil, true, ports.ResultBookkeeping{}},
		{"missing step uuid", []byte(`{"task_uuid":"` + task.String() + `"}`), nil, true, ports.ResultBookkeeping{}},
		{"unknown step", message(task, step), nil, true, ports.ResultBookkeeping{}},
		{"completed step only finalizes", message(task, step), &ports.StepResultView{TaskUUID: task, StepUUID: step,
			State: domain.StepComplete}, false, ports.ResultBookkeeping{}},
		{"out of attempts gets no backoff", message(task, step), &ports.StepResultView{TaskUUID: task, StepUUID: step,
			State: domain.StepError, Retryable: true, Attempts: 3, RetryLimit: 3}, false, ports.ResultBookkeeping{}},
		{"non-retryable failure marks the step", message(task, step), &ports.StepResultView{TaskUUID: task, StepUUID: step,
			State: domain.StepError, Retryable: true, Attempts: 1, RetryLimit: 3, Results: failure(step, false, nil)},
			false, ports.ResultBookkeeping{NotRetryable: true}},
		{"retryable failure gets a backoff", message(task, step), &ports.StepResultView{TaskUUID: task, StepUUID: step,
			State: domain.StepError, Retryable: true, Attempts: 1, RetryLimit: 3, Results: failure(step, true, nil)},
			false, ports.ResultBookkeeping{BackoffSeconds: intp(2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var views []ports.StepResultView
			if tc.view != nil {
				views = append(views, *tc.view)
			}
			f := setup(t, result.Config{}, creator{}, views...)
			id := f.q.add(domain.QueueStepResults, string(tc.body))
			f.process(t, id)
			require.Equal(t, tc.archived, f.q.archived[id])
			require.Equal(t, !tc.archived, f.q.consumed[id], "deleted by the batch transaction")
			require.False(t, f.q.deleted[id], "never deleted outside the batch")
			require.Equal(t, tc.bk, f.batches.bk[step])
		})
	}
}

func TestStepResultBatchFailureLeavesTheMessages(t *testing.T) {
	task, step := uuid.New(), uuid.New()
	f := setup(t, result.Config{PollInterval: time.Hour}, creator{}, ports.StepResultView{TaskUUID: task, StepUUID: step, State: domain.StepComplete})
	f.batches.err = errors.New("deadlock")
	id := f.q.add(domain.QueueStepResults, string(message(task, step)))
	stop := runProcessor(t, f.p, nil)
	require.Eventually(t, func() bool {
		f.batches.mu.Lock()
		defer f.batches.mu.Unlock()
		return len(f.batches.calls) == 1
	}, 5*time.Second, time.Millisecond)
	stop()
	require.False(t, f.q.settled(id), "left for redelivery after the visibility timeout")
}
