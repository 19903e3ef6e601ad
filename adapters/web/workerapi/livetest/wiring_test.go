// Package livetest runs the worker API over the real worker service
// (app/worker: intake, command processor, pipeline, dispatcher) on real
// PostgreSQL: readiness through a database outage and shutdown, and
// Prometheus counters moving as steps are processed. It lives apart from
// the server's unit tests because it depends on the worker's application
// packages.
package livetest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/web/workerapi"
	appworker "github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/ports"
)

// handlers are the two callables of the live test: "square" succeeds,
// "fails" fails permanently with error_type validation.
func handlers(t *testing.T) *handler.Registry {
	t.Helper()
	r := handler.NewRegistry()
	require.NoError(t, r.Register("square", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Succeed(map[string]int{"ok": 1}), nil
	})))
	require.NoError(t, r.Register("fails", handler.HandlerFunc(func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Success{}, handler.Permanent("validation", "odd input")
	})))
	return r
}

// runningWorker is the worker service running until stop.
type runningWorker struct {
	w      *appworker.Worker
	cancel context.CancelFunc
	done   chan error
}

func startWorker(t *testing.T, steps ports.StepStore, q ports.Queue, bus ports.EventBus, reg *handler.Registry, queues []string, id string) *runningWorker {
	t.Helper()
	w, err := appworker.New(appworker.Config{WorkerID: id, Environment: "test", Queues: queues, PollInterval: 50 * time.Millisecond,
		ShutdownTimeout: 2 * time.Second}, appworker.Deps{Steps: steps, Queue: q, Bus: bus, Handlers: reg, Logger: zap.NewNop()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- w.Run(ctx) }()
	return rw
}

// stop signals shutdown and waits for Run to return.
func (rw *runningWorker) stop(t *testing.T) {
	t.Helper()
	rw.cancel()
	select {
	case err := <-rw.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop")
	}
}

func startServer(t *testing.T, cfg workerapi.Config, deps workerapi.Deps) string {
	t.Helper()
	srv, err := workerapi.New(cfg, deps)
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
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 12, MaxIdleConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
