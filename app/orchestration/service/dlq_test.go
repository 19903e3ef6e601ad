package service_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

// Without a DLQ store every DLQ call is ErrDLQUnavailable (503).
func TestDLQUnavailableWithoutStore(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.svc.ListDLQ(ctx, ports.DLQFilter{})
	require.ErrorIs(t, err, ports.ErrDLQUnavailable)
	_, err = f.svc.GetDLQ(ctx, uuid.New())
	require.ErrorIs(t, err, ports.ErrDLQUnavailable)
	_, err = f.svc.RequeueDLQ(ctx, uuid.New())
	require.ErrorIs(t, err, ports.ErrDLQUnavailable)
	_, err = f.svc.ResolveDLQ(ctx, uuid.New(), "n")
	require.ErrorIs(t, err, ports.ErrDLQUnavailable)
}

// keyPurger counts purges and records the retention it was asked for.
type keyPurger struct {
	calls     atomic.Int32
	retention atomic.Int64
}

func (k *keyPurger) PurgeIdempotencyKeys(_ context.Context, r time.Duration) (int64, error) {
	k.calls.Add(1)
	k.retention.Store(int64(r))
	return 2, nil
}

// The DLQ calls go to the store; a requeue of task work triggers the
// task's enqueue; Run purges expired keys at start and every interval and
// runs the background loops until it stops.
func TestDLQDelegatesAndRunPurgesKeysAndRunsBackground(t *testing.T) {
	t.Parallel()
	tmpl, err := domain.ParseTemplateYAML([]byte("name: t\nnamespace_name: ns\nversion: \"1.0.0\"\nsteps:\n  - name: a\n    handler: {callable: x}\n"))
	require.NoError(t, err)
	cfg, err := tmpl.ConfigurationJSON()
	require.NoError(t, err)
	store := mocks.NewDLQStore(t)
	queue := mocks.NewQueue(t)
	batches := mocks.NewTaskBatchProcessor(t)
	keys := &keyPurger{}
	var bgRan atomic.Bool
	svc := service.New(service.Config{Enqueue: enqueue.Config{CycleInterval: time.Hour}, Results: result.Config{PollInterval: time.Hour},
		ShutdownGrace: time.Second, IdempotencyRetention: 24 * time.Hour, PurgeInterval: 5 * time.Millisecond},
		service.Deps{Templates: finder{cfg: json.RawMessage(cfg)}, Creator: mocks.NewTaskCreator(t), Enqueuer: mocks.NewStepEnqueuer(t),
			Batches: batches, Canceller: mocks.NewTaskCanceller(t), Queue: queue, DLQ: store, Keys: keys,
			Background: []func(context.Context) error{func(ctx context.Context) error { bgRan.Store(true); <-ctx.Done(); return nil }}})
	ctx := context.Background()
	task, id := uuid.New(), uuid.New()
	store.EXPECT().ListDLQ(mock.Anything, ports.DLQFilter{Page: 1}).Return(ports.DLQPage{TotalCount: 3}, nil).Once()
	store.EXPECT().GetDLQ(mock.Anything, id).Return(domain.DLQEntry{EntryUUID: id}, nil).Once()
	store.EXPECT().ResolveDLQ(mock.Anything, id, "note").Return(domain.DLQEntry{Status: domain.DLQResolved}, nil).Once()
	store.EXPECT().RequeueDLQ(mock.Anything, id).Return(domain.DLQEntry{EntryUUID: id, TaskUUID: task}, nil).Once()
	page, err := svc.ListDLQ(ctx, ports.DLQFilter{Page: 1})
	require.NoError(t, err)
	require.EqualValues(t, 3, page.TotalCount)
	e, err := svc.GetDLQ(ctx, id)
	require.NoError(t, err)
	require.Equal(t, id, e.EntryUUID)
	e, err = svc.ResolveDLQ(ctx, id, "note")
	require.NoError(t, err)
	require.Equal(t, domain.DLQResolved, e.Status)

	for _, q := range service.OwnedQueues {
		queue.EXPECT().CreateQueue(mock.Anything, q).Return(nil).Once()
	}
	queue.EXPECT().Read(mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(nil, nil).Maybe()
	enqueued := make(chan ports.TaskBatch, 1)
	batches.EXPECT().ProcessTasks(mock.Anything, mock.Anything).RunAndReturn(func(_ context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error) {
		select {
		case enqueued <- b:
		default:
		}
		return ports.TaskBatchReport{}, nil
	}).Maybe()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- svc.Run(runCtx) }()
	require.Eventually(t, func() bool { return keys.calls.Load() >= 2 && bgRan.Load() }, 5*time.Second, time.Millisecond)
	require.Equal(t, int64(24*time.Hour), keys.retention.Load())
	_, err = svc.RequeueDLQ(ctx, id)
	require.NoError(t, err)
	select {
	case b := <-enqueued:
		require.Equal(t, task, b.Tasks[0].TaskUUID, "the requeued task is enqueued at once")
	case <-time.After(5 * time.Second):
		t.Fatal("requeue did not trigger the enqueue")
	}
	cancel()
	require.NoError(t, <-done)
}

// A keyed creation that replays creates nothing, so it is neither counted
// nor enqueued.
func TestCreateTaskIdempotentReplayIsNotCounted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.creator.EXPECT().CreateTask(mock.Anything, mock.MatchedBy(func(n ports.NewTask) bool {
		return n.IdempotencyKey == "k" && len(n.RequestHash) == 64
	})).Return(domain.TaskCreationResponse{TaskUUID: uuid.New(), Replayed: true}, nil).Once()
	resp, err := f.svc.CreateTaskIdempotent(context.Background(), domain.TaskRequest{Name: "t", Namespace: "ns", Version: "1.0.0"}, "k")
	require.NoError(t, err)
	require.True(t, resp.Replayed)
}
