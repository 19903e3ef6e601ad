package e2e

import (
	"context"
	"encoding/json"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/examples"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/app/worker/registry"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// workerDB is a fresh migrated database for worker tests, with its URL.
func workerDB(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	url := testdb.URL(t)
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db, url
}

// testWorker is one in-process worker with its own pool.
type testWorker struct {
	w      *engine.Worker
	db     *sqlx.DB
	cancel context.CancelFunc
	done   chan error
}

// workerOpts adjust a test engine.
type workerOpts struct {
	namespaces []string
	handlers   *handler.Registry
	notifier   func(t testing.TB) ports.MessageNotifier
	tune       func(*engine.Config)
	poolSize   int
	// log receives the worker's logs (nil discards them).
	log *zap.Logger
	// wrap, when set, decorates the worker's step store and event bus
	// (metrics instrumentation).
	wrap func(ports.StepStore, ports.EventBus) (ports.StepStore, ports.EventBus)
}

// startWorker loads the example templates through the registry (as the
// binary does), creates the queues and runs a worker until cleanup.
func startWorker(t testing.TB, url string, o workerOpts) *testWorker {
	t.Helper()
	if len(o.namespaces) == 0 {
		o.namespaces = []string{"examples"}
	}
	if o.handlers == nil {
		o.handlers = handler.NewRegistry()
		require.NoError(t, examples.Register(o.handlers))
	}
	if o.poolSize == 0 {
		o.poolSize = 12
	}
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: o.poolSize})
	require.NoError(t, err)
	q := pgmq.New(db)
	reg, err := registry.New(registry.Config{TemplateDir: filepath.Join("..", "..", "configs", "tasks"), Namespaces: o.namespaces},
		postgres.NewTemplateStore(db), q, zap.NewNop())
	require.NoError(t, err)
	_, err = reg.Load(context.Background())
	require.NoError(t, err)
	require.NoError(t, reg.EnsureQueues(context.Background()))

	cfg := engine.Config{
		WorkerID:                 "worker-" + uuid.Must(uuid.NewV7()).String(),
		Environment:              "test",
		Queues:                   reg.Queues(),
		PollInterval:             20 * time.Millisecond,
		VisibilityTimeoutSeconds: 30,
		MaxConcurrentSteps:       10,
		ShutdownTimeout:          5 * time.Second,
	}
	if o.tune != nil {
		o.tune(&cfg)
	}
	deps := engine.Deps{Steps: postgres.NewStepStore(db), Queue: q, Bus: eventbus.New(eventbus.Config{}), Handlers: o.handlers, Logger: o.log}
	if o.wrap != nil {
		deps.Steps, deps.Bus = o.wrap(deps.Steps, deps.Bus)
	}
	if o.notifier != nil {
		deps.Notifier = o.notifier(t)
	}
	w, err := engine.New(cfg, deps)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	tw := &testWorker{w: w, db: db, cancel: cancel, done: make(chan error, 1)}
	go func() { tw.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		tw.stop(t)
		if deps.Notifier != nil {
			_ = deps.Notifier.Close()
		}
		_ = db.Close()
	})
	return tw
}

// stop shuts the worker down (idempotent).
func (tw *testWorker) stop(t testing.TB) {
	tw.cancel()
	if tw.done == nil {
		return
	}
	select {
	case err := <-tw.done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
	tw.done = nil
}

// stepState is the current state of a step (§2.11).
func stepState(t testing.TB, db *sqlx.DB, step uuid.UUID) domain.StepState {
	t.Helper()
	var s string
	err := db.Get(&s, `SELECT to_state FROM tasker_workflow_step_transitions WHERE workflow_step_uuid = $1 AND most_recent`, step)
	if err != nil {
		return domain.StepPending
	}
	return domain.StepState(s)
}

// stepResults reads tasker_workflow_steps.results as a StepExecutionResult.
func stepResults(t testing.TB, db *sqlx.DB, step uuid.UUID) domain.StepExecutionResult {
	t.Helper()
	var raw []byte
	require.NoError(t, db.Get(&raw, `SELECT results FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, step))
	res, ok := domain.ParseStepExecutionResult(raw)
	require.True(t, ok, "results of %s are a StepExecutionResult: %s", step, raw)
	return res
}

// enqueue plays the orchestration for one step (§10.2): mark enqueued, send.
func enqueue(t testing.TB, db *sqlx.DB, queue string, task, step uuid.UUID) int64 {
	t.Helper()
	testdb.SetStepState(t, db, step, domain.StepEnqueued)
	return testdb.SendStepMessage(t, db, queue, task, step)
}

// exampleSpec builds the TaskSpec of an example template from its file, so
// the task's steps and edges match the registered configuration.
func exampleSpec(t testing.TB, name string, evenNumber int) testdb.TaskSpec {
	t.Helper()
	tm, err := registry.LoadFile(filepath.Join("..", "..", "configs", "tasks", "examples", name+".yaml"))
	require.NoError(t, err)
	spec := testdb.TaskSpec{Namespace: "examples", Name: name, Version: tm.Version, Context: map[string]any{"even_number": evenNumber}}
	for _, s := range tm.Steps {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: s.Name, Deps: s.Dependencies})
	}
	return spec
}

// runTaskAsOrchestration enqueues each step once all its parents are
// complete, in dependency order, until every step is complete or timeout.
func runTaskAsOrchestration(t testing.TB, db *sqlx.DB, spec testdb.TaskSpec, task testdb.CreatedTask, timeout time.Duration) {
	t.Helper()
	enqueued := map[string]bool{}
	deadline := time.Now().Add(timeout)
	for {
		allDone := true
		for _, s := range spec.Steps {
			st := stepState(t, db, task.Steps[s.Name])
			if st != domain.StepComplete {
				allDone = false
			}
			if enqueued[s.Name] {
				continue
			}
			ready := true
			for _, d := range s.Deps {
				if stepState(t, db, task.Steps[d]) != domain.StepComplete {
					ready = false
				}
			}
			if ready {
				enqueue(t, db, domain.QueueName(spec.Namespace), task.TaskUUID, task.Steps[s.Name])
				enqueued[s.Name] = true
			}
		}
		if allDone {
			return
		}
		require.True(t, time.Now().Before(deadline), "task %s did not complete in %s", task.TaskUUID, timeout)
		time.Sleep(5 * time.Millisecond) // polling the database like the orchestration's cycle
	}
}

// messagesFor returns the messages on queue that belong to task.
func messagesFor(t testing.TB, db *sqlx.DB, queue string, task uuid.UUID) []domain.SimpleStepMessage {
	t.Helper()
	var out []domain.SimpleStepMessage
	for _, m := range testdb.QueueMessages(t, db, queue) {
		var sm domain.SimpleStepMessage
		require.NoError(t, json.Unmarshal(m.Message, &sm))
		if sm.TaskUUID == task {
			out = append(out, sm)
		}
	}
	return out
}

// pow is n^e as a decimal string.
func pow(n, e int64) string { return new(big.Int).Exp(big.NewInt(n), big.NewInt(e), nil).String() }

// countingHandlers counts invocations per step uuid.
type countingHandlers struct {
	mu    sync.Mutex
	calls map[uuid.UUID]int
}

func (c *countingHandlers) handler(inner handler.HandlerFunc) handler.HandlerFunc {
	return func(ctx context.Context, sc *handler.StepContext) (handler.Success, error) {
		c.mu.Lock()
		if c.calls == nil {
			c.calls = map[uuid.UUID]int{}
		}
		c.calls[sc.StepUUID()]++
		c.mu.Unlock()
		return inner(ctx, sc)
	}
}

func (c *countingHandlers) snapshot() map[uuid.UUID]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uuid.UUID]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}
