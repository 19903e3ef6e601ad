// Package e2e holds end-to-end tests: the orchestration service (in process
// or as a binary) with workers on a real PostgreSQL database.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

const (
	examplesQueue = "examples_queue"
	environment   = "test"
)

// OrchDB opens a fresh migrated database with the example templates registered.
func OrchDB(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	url := testdb.URL(t)
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 40, MaxIdleConns: 40})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	registerExamples(t, db)
	return db, url
}

func registerExamples(t testing.TB, db *sqlx.DB) {
	t.Helper()
	store := postgres.NewTemplateStore(db)
	tmpls := testdb.RegisterExampleTemplates(t, "../../configs/tasks/examples", func(tmpl domain.TaskTemplate, cfg json.RawMessage) error {
		_, err := store.RegisterTemplate(context.Background(), tmpl, cfg)
		return err
	})
	require.Len(t, tmpls, 4)
}

// Orchestrator is one in-process orchestration instance with its API.
type Orchestrator struct {
	svc  *service.Service
	srv  *httptest.Server
	stop func()
}

// StartOrchestrator runs the service loops and the API until the test ends.
func StartOrchestrator(t testing.TB, db *sqlx.DB, url string) *Orchestrator {
	t.Helper()
	orch := postgres.NewOrchestrationStore(db)
	query := postgres.NewTaskQuery(db)
	listener, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: url,
		Channels: []string{pgmq.GlobalReadyChannel}}, nil)
	require.NoError(t, err)
	svc := service.New(service.Config{Environment: environment}, service.Deps{
		Templates: postgres.NewTemplateStore(db), Creator: postgres.NewTaskStore(db), Enqueuer: orch,
		Batches: orch, Canceller: orch, Queue: pgmq.New(db),
		Notifier: listener,
	})
	api := web.New(web.Config{}, web.Deps{Tasks: svc, Query: query, Templates: postgres.NewTemplateStore(db), DB: query})
	srv := httptest.NewServer(api.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	require.Eventually(t, svc.Running, 5*time.Second, 5*time.Millisecond)
	o := &Orchestrator{svc: svc, srv: srv}
	var once sync.Once
	o.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			srv.Close()
			require.NoError(t, listener.Close())
		})
	}
	t.Cleanup(o.stop)
	return o
}

// URL is the API base URL.
func (o *Orchestrator) URL() string { return o.srv.URL }

// Service is the running orchestration core.
func (o *Orchestrator) Service() *service.Service { return o.svc }

// CreateTask posts a task for an example workflow with context {"even_number": n}.
func (o *Orchestrator) CreateTask(t testing.TB, name string, evenNumber int) domain.TaskCreationResponse {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"namespace":"examples","version":"1.0.0","context":{"even_number":%d}}`, name, evenNumber)
	resp, err := http.Post(o.srv.URL+"/v1/tasks", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var out domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// GetJSON decodes a GET response into v and returns the status code.
func (o *Orchestrator) GetJSON(t testing.TB, path string, v any) int {
	t.Helper()
	resp, err := http.Get(o.srv.URL + path)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	return resp.StatusCode
}

// TaskStatus reads the state-machine status through the API.
func (o *Orchestrator) TaskStatus(t testing.TB, id uuid.UUID) string {
	var task struct {
		Status string `json:"status"`
	}
	require.Equal(t, 200, o.GetJSON(t, "/v1/tasks/"+id.String(), &task))
	return task.Status
}

// WaitStatus waits until the task reaches one of the final states and
// returns it.
func (o *Orchestrator) WaitStatus(t testing.TB, id uuid.UUID, timeout time.Duration) string {
	t.Helper()
	var st string
	require.Eventually(t, func() bool {
		st = o.TaskStatus(t, id)
		return st == "complete" || st == "error" || st == "cancelled"
	}, timeout, 10*time.Millisecond, "task %s did not finish", id)
	return st
}

// HandlerRun records one handler invocation of the fake worker.
type HandlerRun struct {
	Step     string
	StepUUID uuid.UUID
	Attempt  int
	At       time.Time
}

// FakeWorker is a scripted stand-in for the worker binary: it reads
// examples_queue, claims with the worker's StepStore (§9.3), computes
// examples.square / examples.multiply and persists the outcome with the
// completion message in one transaction, exactly like the real pipeline.
type FakeWorker struct {
	id    string
	store *postgres.StepStore
	queue *pgmq.Client
	// Fail decides a failure for (step name, attempt); nil result = run normally.
	Fail func(step string, attempt int) *domain.StepFailure
	// Hold, if set, is awaited before the outcome of the named step is persisted.
	Hold map[string]chan struct{}
	// started is signalled (non-blocking) with each step name a handler starts.
	started chan string

	mu   sync.Mutex
	runs []HandlerRun
}

// NewFakeWorker returns a worker with id; call Start.
func NewFakeWorker(db *sqlx.DB, id string) *FakeWorker {
	return &FakeWorker{id: id, store: postgres.NewStepStore(db), queue: pgmq.New(db), started: make(chan string, 64)}
}

// Runs lists the handler invocations so far.
func (w *FakeWorker) Runs() []HandlerRun {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]HandlerRun(nil), w.runs...)
}

// Start runs the worker with n concurrent message handlers until the test ends.
func (w *FakeWorker) Start(t testing.TB, n int) {
	t.Helper()
	require.NoError(t, w.queue.CreateQueue(context.Background(), examplesQueue))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				msgs, err := w.queue.Read(ctx, examplesQueue, 30, 1)
				if err != nil || len(msgs) == 0 {
					select {
					case <-ctx.Done():
					case <-time.After(3 * time.Millisecond):
					}
					continue
				}
				for _, m := range msgs {
					if err := w.handle(ctx, m); err != nil && ctx.Err() == nil {
						t.Errorf("fake worker %s: %v", w.id, err)
					}
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for _, ch := range w.Hold {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		wg.Wait()
	})
}

func (w *FakeWorker) handle(ctx context.Context, m ports.QueueMessage) error {
	var msg domain.SimpleStepMessage
	if err := json.Unmarshal(m.Message, &msg); err != nil {
		_, err = w.queue.Archive(ctx, examplesQueue, m.MsgID)
		return err
	}
	snap, err := w.store.ClaimStep(ctx, msg.StepUUID, w.id)
	var nc *domain.NotClaimableError
	if errors.As(err, &nc) {
		_, err = w.queue.Delete(ctx, examplesQueue, m.MsgID) // stale or duplicate (§9.3)
		return err
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", msg.StepUUID, err)
	}
	started := time.Now()
	name := snap.Step.Name
	w.mu.Lock()
	w.runs = append(w.runs, HandlerRun{Step: name, StepUUID: msg.StepUUID, Attempt: snap.Step.Attempts, At: started})
	w.mu.Unlock()
	select {
	case w.started <- name:
	default:
	}
	value, failure := w.compute(ctx, snap)
	if failure == nil && w.Fail != nil {
		failure = w.Fail(name, snap.Step.Attempts)
	}
	if ch, ok := w.Hold[name]; ok {
		<-ch
	}
	var res domain.StepExecutionResult
	if failure != nil {
		res = domain.NewFailureResult(msg.StepUUID, *failure, started, time.Now(), w.id)
	} else {
		res = domain.NewSuccessResult(msg.StepUUID, json.RawMessage(value.String()), nil, started, time.Now(), w.id)
	}
	_, err = w.store.PersistOutcome(ctx, ports.StepOutcome{TaskUUID: msg.TaskUUID, StepUUID: msg.StepUUID,
		Result: res, Queue: examplesQueue, MsgID: m.MsgID, WorkerID: w.id})
	return err
}

// compute runs examples.square / examples.multiply over the step's parents
// (or context.even_number for a root, which must be even).
func (w *FakeWorker) compute(ctx context.Context, snap ports.StepSnapshot) (*big.Int, *domain.StepFailure) {
	tmpl, err := domain.ParseTemplateJSON(snap.Configuration)
	if err != nil {
		return nil, &domain.StepFailure{Message: err.Error(), Retryable: true, ErrorType: "configuration_error"}
	}
	tmpl = tmpl.ResolveForEnvironment(environment)
	def, ok := tmpl.StepByName(snap.Step.Name)
	if !ok {
		return nil, &domain.StepFailure{Message: "no step definition", Retryable: true, ErrorType: "configuration_error"}
	}
	var inputs []*big.Int
	if len(def.Dependencies) == 0 {
		var c struct {
			EvenNumber json.Number `json:"even_number"`
		}
		_ = json.Unmarshal(snap.Task.Context, &c)
		n, ok := new(big.Int).SetString(c.EvenNumber.String(), 10)
		if !ok || n.Bit(0) == 1 {
			return nil, &domain.StepFailure{Message: fmt.Sprintf("validation error: even_number must be an even integer, got %q", c.EvenNumber),
				Retryable: false, ErrorType: "validation_error"}
		}
		inputs = append(inputs, n)
	} else {
		deps, err := w.store.DependencyResults(ctx, snap.Step.WorkflowStepUUID)
		if err != nil {
			return nil, &domain.StepFailure{Message: err.Error(), Retryable: true, ErrorType: "dependency_error"}
		}
		for _, d := range def.Dependencies {
			n, ok := new(big.Int).SetString(strings.TrimSpace(string(deps[d])), 10)
			if !ok {
				return nil, &domain.StepFailure{Message: "missing result of " + d, Retryable: true, ErrorType: "dependency_error"}
			}
			inputs = append(inputs, n)
		}
	}
	out := big.NewInt(1)
	switch def.Handler.Callable {
	case "examples.square":
		out.Mul(inputs[0], inputs[0])
	case "examples.multiply":
		for _, n := range inputs {
			out.Mul(out, n)
		}
	default:
		return nil, &domain.StepFailure{Message: "no handler " + def.Handler.Callable, Retryable: true, ErrorType: "handler_not_found"}
	}
	return out, nil
}

// httpRequest sends a body-less request and drains the response.
func httpRequest(method, url string) (*http.Response, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp, resp.Body.Close()
}
