package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

// fakeTasks is a TaskService answering with fixed errors and recording calls,
// for failures a real database cannot be made to produce on demand.
type fakeTasks struct {
	mu                               sync.Mutex
	createErr, cancelErr, resolveErr error
	running                          bool
	calls                            []string
	resolved                         ports.ManualResolution
}

func (f *fakeTasks) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeTasks) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeTasks) CreateTaskIdempotent(_ context.Context, req domain.TaskRequest, _ string) (domain.TaskCreationResponse, error) {
	f.record("create")
	if f.createErr != nil {
		return domain.TaskCreationResponse{}, f.createErr
	}
	return domain.TaskCreationResponse{TaskUUID: uuid.New(), Status: "created", HandlerConfigName: req.Name, StepMapping: map[string]uuid.UUID{}}, nil
}

func (f *fakeTasks) CancelTask(context.Context, uuid.UUID) error {
	f.record("cancel")
	return f.cancelErr
}

func (f *fakeTasks) ResolveStep(_ context.Context, _, _ uuid.UUID, r ports.ManualResolution) error {
	f.record("resolve")
	f.mu.Lock()
	f.resolved = r
	f.mu.Unlock()
	return f.resolveErr
}

func (f *fakeTasks) Running() bool { return f.running }

// fakeTemplates is a TemplateReader with fixed answers.
type fakeTemplates struct {
	list    []ports.RegisteredTemplate
	listErr error
	getErr  error
}

func (f fakeTemplates) GetTemplate(context.Context, string, string, string) (ports.RegisteredTemplate, error) {
	return ports.RegisteredTemplate{}, f.getErr
}

func (f fakeTemplates) ListTemplates(context.Context, string) ([]ports.RegisteredTemplate, error) {
	return f.list, f.listErr
}

// pingFunc is a Pinger.
type pingFunc func(ctx context.Context) error

func (p pingFunc) Ping(ctx context.Context) error { return p(ctx) }

// unitFixture is a server over fakes and a mockery TaskQuery, with the
// error log observed.
type unitFixture struct {
	tasks *fakeTasks
	query *mocks.TaskQuery
	logs  *observer.ObservedLogs
	h     http.Handler
	// lastHeader holds the response headers of the latest do.
	lastHeader http.Header
}

func unitSetup(t *testing.T, cfg web.Config, tasks *fakeTasks, tmpl fakeTemplates, ping pingFunc) unitFixture {
	t.Helper()
	if tasks == nil {
		tasks = &fakeTasks{}
	}
	if ping == nil {
		ping = func(context.Context) error { return nil }
	}
	core, logs := observer.New(zapcore.WarnLevel)
	q := mocks.NewTaskQuery(t)
	s := web.New(cfg, web.Deps{Tasks: tasks, Query: q, Templates: tmpl, DB: ping, Log: zap.New(core)})
	return unitFixture{tasks: tasks, query: q, logs: logs, h: serve(t, s.Handler()), lastHeader: http.Header{}}
}

// apiError is the §7.1 error body.
type apiError struct {
	Error struct{ Code, Message string } `json:"error"`
}

// do serves one request in-process and returns the status and the body.
func (u unitFixture) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	u.h.ServeHTTP(w, req)
	require.NotEmpty(t, w.Header().Get("x-request-id"))
	for k, v := range w.Header() {
		u.lastHeader[k] = v
	}
	return w.Code, w.Body.Bytes()
}

// doError serves a request expected to fail and decodes the error body.
func (u unitFixture) doError(t *testing.T, method, path, body string) (int, apiError) {
	t.Helper()
	code, b := u.do(t, method, path, body)
	var e apiError
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	return code, e
}
