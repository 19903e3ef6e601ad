// Package livetest runs the worker API against a live worker pipeline on
// real PostgreSQL: readiness through a database outage and shutdown, and
// Prometheus counters moving as steps are processed. It lives apart from
// the server's unit tests because it depends on the worker's application
// packages.
package livetest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/web/worker"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// liveWorker is a minimal worker: intake → pipeline → a dispatcher that
// runs a trivial handler → outcome persistence. The real command processor
// and dispatcher replace the two small loops here in cmd/tasker-worker.
type liveWorker struct {
	p            *pipeline.Pipeline
	intake       *pipeline.Intake
	maxSteps     int
	started      atomic.Bool
	shuttingDown atomic.Bool
	pipelineUp   atomic.Bool
	dispatchUp   atomic.Bool
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// submitFunc adapts a function to pipeline.Submitter.
type submitFunc func(ctx context.Context, queue string, msg ports.QueueMessage, release func()) error

func (f submitFunc) SubmitStep(ctx context.Context, queue string, msg ports.QueueMessage, release func()) error {
	return f(ctx, queue, msg, release)
}

// snapshot converts the pipeline's status into the API's Snapshot. This
// is the thin adapter cmd/tasker-worker needs (see the package doc).
func (w *liveWorker) snapshot() worker.Snapshot {
	return SnapshotFromPipeline(w.p.Status(), w.intake.Held() >= w.maxSteps, Flags{
		Started: w.started.Load(), PipelineRunning: w.pipelineUp.Load(),
		DispatcherRunning: w.dispatchUp.Load(), ShuttingDown: w.shuttingDown.Load(),
	})
}

func startLiveWorker(t *testing.T, db ports.StepStore, q ports.Queue, bus ports.EventBus, queues []string, workerID string) *liveWorker {
	t.Helper()
	p, err := pipeline.New(pipeline.Config{WorkerID: workerID, Environment: "test", VisibilityTimeoutSeconds: 30},
		pipeline.Deps{Steps: db, Queue: q, Bus: bus, Logger: zap.NewNop()})
	require.NoError(t, err)
	w := &liveWorker{p: p, maxSteps: 10}
	sub := submitFunc(func(ctx context.Context, queue string, msg ports.QueueMessage, release func()) error {
		_, err := p.Process(ctx, queue, msg, release)
		return err
	})
	w.intake, err = pipeline.NewIntake(pipeline.IntakeConfig{Queues: queues, PollInterval: 50 * time.Millisecond, MaxConcurrentSteps: w.maxSteps},
		q, sub, nil, nil, zap.NewNop(), p.Tick)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(3)
	go func() { defer w.wg.Done(); w.pipelineUp.Store(true); w.intake.Run(ctx); w.pipelineUp.Store(false) }()
	go func() { // dispatcher: run the handler, publish the completion
		defer w.wg.Done()
		w.dispatchUp.Store(true)
		defer w.dispatchUp.Store(false)
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-bus.Executions():
				p.Tick("dispatcher")
				start := time.Now()
				res := p.Results().Success(ev.Claim.StepUUID, start, time.Now(), handler.Succeed(map[string]int{"ok": 1}))
				if ev.Claim.StepName == "fails" {
					res = p.Results().WorkerFailure(ev.Claim.StepUUID, start, time.Now(), "validation", "odd input")
				}
				_ = bus.PublishCompletion(ctx, domain.StepCompletionEvent{EventID: ev.EventID, Claim: ev.Claim, Result: res})
			}
		}
	}()
	go func() { // outcome persister
		defer w.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-bus.Completions():
				_ = p.Complete(ctx, ev)
			}
		}
	}()
	w.started.Store(true)
	return w
}

// stop begins shutdown: the worker reports stopping, intake and dispatcher end.
func (w *liveWorker) stop() {
	w.shuttingDown.Store(true)
	w.cancel()
	w.wg.Wait()
	w.p.WaitHeartbeats()
}

func startServer(t *testing.T, cfg worker.Config, deps worker.Deps) string {
	t.Helper()
	srv, err := worker.New(cfg, deps)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		http.DefaultClient.CloseIdleConnections()
	})
	return "http://" + ln.Addr().String()
}

// openPool opens the service-style pool on url (TimeZone=UTC, small pool).
func openPool(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 8, MaxIdleConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
