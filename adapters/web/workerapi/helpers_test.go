package workerapi

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// fakeStatus is a StatusProvider whose snapshot tests mutate.
type fakeStatus struct {
	mu   sync.Mutex
	snap domain.WorkerStatus
}

func (f *fakeStatus) Snapshot() domain.WorkerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeStatus) update(fn func(*domain.WorkerStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.snap)
}

// fakeCatalog is an in-memory TemplateCatalog.
type fakeCatalog struct {
	mu    sync.Mutex
	items map[string]ports.RegisteredTemplate
	err   error
	lists int
}

func (f *fakeCatalog) put(t ports.RegisteredTemplate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[templateKey(t.Namespace, t.Name, t.Version)] = t
}

func (f *fakeCatalog) GetTemplate(_ context.Context, ns, name, version string) (ports.RegisteredTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return ports.RegisteredTemplate{}, f.err
	}
	t, ok := f.items[templateKey(ns, name, version)]
	if !ok {
		return ports.RegisteredTemplate{}, ports.ErrNotFound
	}
	return t, nil
}

func (f *fakeCatalog) ListTemplates(_ context.Context, ns string) ([]ports.RegisteredTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.err != nil {
		return nil, f.err
	}
	var out []ports.RegisteredTemplate
	for _, t := range f.items {
		if ns == "" || t.Namespace == ns {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fakeDB answers SELECT 1 unless down.
type fakeDB struct {
	mu   sync.Mutex
	down error
}

func (f *fakeDB) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.down
}

func (f *fakeDB) Stats() sql.DBStats { return sql.DBStats{OpenConnections: 3, MaxOpenConnections: 20} }

func (f *fakeDB) setDown(err error) {
	f.mu.Lock()
	f.down = err
	f.mu.Unlock()
}

// fakeQueues reports fixed depths per queue.
type fakeQueues struct {
	mu     sync.Mutex
	depths map[string]int64
	err    error
}

func (f *fakeQueues) Metrics(_ context.Context, queue string) (ports.QueueMetrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return ports.QueueMetrics{}, f.err
	}
	d := f.depths[queue]
	m := ports.QueueMetrics{QueueName: queue, QueueLength: d}
	if d > 0 {
		age := 42
		m.OldestMsgAgeSec = &age
	}
	return m, nil
}

func (f *fakeQueues) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

type fakeRegistry []string

func (r fakeRegistry) Callables() []string { return r }

// manualClock is a Clock tests move by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env bundles a server with its fakes.
type env struct {
	srv     *Server
	status  *fakeStatus
	catalog *fakeCatalog
	db      *fakeDB
	queues  *fakeQueues
	clock   *manualClock
}

var lastUsed = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func healthySnapshot() domain.WorkerStatus {
	return domain.WorkerStatus{
		Started: true, PipelineRunning: true, DispatcherRunning: true,
		Processed: 3, Succeeded: 2, Failed: 1, AverageDurationMs: 12.5, RatePerSecond: 0.05, LastProcessedAt: &lastUsed,
		RecentErrors: []domain.WorkerErrorRecord{{At: lastUsed, ErrorType: "validation", Message: "odd number", Namespace: "examples", StepName: "step_a"}},
		Handlers:     []domain.WorkerHandlerStats{{Namespace: "examples", Callable: "Examples::Square", Success: 2, Failure: 1, LastUsed: &lastUsed}},
		Namespaces:   map[string]domain.WorkerNamespaceStats{"examples": {Processed: 3, Succeeded: 2, Failed: 1, LastProcessed: &lastUsed, Active: 1}},
		InFlight:     1,
		LoopTicks:    map[string]uint64{"intake:examples_queue": 1, "intake:other_queue": 1},
	}
}

func exampleTemplate(ns, name, version string, callables ...string) ports.RegisteredTemplate {
	tmpl := domain.TaskTemplate{Name: name, NamespaceName: ns, Version: version,
		SystemDependencies: domain.SystemDependencies{Primary: "default"}}
	var prev string
	for i, cb := range callables {
		st := domain.StepDefinition{Name: "step_" + string(rune('a'+i)), Handler: domain.HandlerDefinition{Callable: cb}}
		if prev != "" {
			st.Dependencies = []string{prev}
		}
		prev = st.Name
		tmpl.Steps = append(tmpl.Steps, st)
	}
	raw, err := tmpl.WithDefaults().ConfigurationJSON()
	if err != nil {
		panic(err)
	}
	return ports.RegisteredTemplate{NamedTaskUUID: uuid.New(), Namespace: ns, Name: name, Version: version,
		Configuration: raw, UpdatedAt: lastUsed}
}

// testHealth is the health policy configuration of setup: loops checked at
// 3 × 100 ms, and liveness using the loop thresholds as they are (see
// TestLiveness_WaitsLongerThanReadiness).
func testHealth() health.Config {
	return health.Config{PollInterval: 100 * time.Millisecond, LivenessStallAfter: time.Nanosecond}
}

// setup builds a server over fakes; mutate cfg before New via opts.
func setup(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	return setupHealth(t, testHealth(), opts...)
}

// setupHealth is setup with the health policy configured by hc.
func setupHealth(t testing.TB, hc health.Config, opts ...func(*Config)) *env {
	t.Helper()
	e := &env{
		status:  &fakeStatus{snap: healthySnapshot()},
		catalog: &fakeCatalog{items: map[string]ports.RegisteredTemplate{}},
		db:      &fakeDB{},
		queues:  &fakeQueues{depths: map[string]int64{"examples_queue": 5}},
		clock:   &manualClock{now: time.Date(2026, 11, 27, 13, 0, 0, 0, time.UTC)},
	}
	e.catalog.put(exampleTemplate("examples", "square_chain", "1.0.0", "Examples::Square", "Examples::Multiply", "Unregistered::Handler"))
	e.catalog.put(exampleTemplate("other", "other_task", "2.0.0", "Examples::Square"))
	e.catalog.put(exampleTemplate("unserved", "ignored", "1.0.0", "Examples::Square"))
	cfg := Config{WorkerID: "worker-test", Version: "0.1.0", Environment: "test", Namespaces: []string{"other", "examples"},
		MetricsEnabled: true, CORSEnabled: true, HealthCheckInterval: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	metrics, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: cfg.Version, WorkerID: cfg.WorkerID, WorkerType: WorkerType},
		telemetry.WorkerSources{DBStats: e.db.Stats, QueueMetrics: telemetry.ServedQueueMetrics(e.queues, cfg.Namespaces), Runtime: e.status.Snapshot})
	require.NoError(t, err)
	e.srv, err = New(cfg, Deps{Status: e.status, Health: health.New(hc), Templates: e.catalog, Handlers: fakeRegistry{"Examples::Multiply", "Examples::Square"},
		DB: e.db, Queues: e.queues, Metrics: metrics.Handler(), Clock: e.clock})
	require.NoError(t, err)
	return e
}

// response is one recorded exchange.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (r response) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &l), string(r.body))
	return l
}

// do sends a request through the engine and validates the response
// against the OpenAPI document, so every test keeps the document true.
func (e *env) do(t *testing.T, method, target string, header ...string) response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	res := response{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	validateAgainstOpenAPI(t, req, res)
	recordHit(e.srv.Engine(), method, req.URL.Path)
	return res
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func openAPIRouter(t *testing.T) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		var doc *openapi3.T
		doc, specErr = loader.LoadFromData(OpenAPIDocument)
		if specErr != nil {
			return
		}
		if specErr = doc.Validate(context.Background()); specErr != nil {
			return
		}
		doc.Servers = nil
		specRouter, specErr = legacy.NewRouter(doc)
	})
	require.NoError(t, specErr)
	return specRouter
}

// validateAgainstOpenAPI checks status, content type and body of a real
// response against the documented operation. Undocumented statuses fail.
func validateAgainstOpenAPI(t *testing.T, req *http.Request, res response) {
	t.Helper()
	if res.code == http.StatusNotFound || res.code == http.StatusMethodNotAllowed {
		var body ErrorResponse
		if json.Unmarshal(res.body, &body) == nil && (body.Error == CodeNotFound || body.Error == CodeMethodNotAllowed) {
			return // unrouted requests have no operation to check against
		}
	}
	route, params, err := openAPIRouter(t).FindRoute(req)
	if err != nil && apidocs.IsNonAPIRoute(req.URL.Path) {
		return // the docs page and its assets are not API (apidocs.NonAPIPrefixes)
	}
	require.NoError(t, err, "find route %s %s", req.Method, req.URL.Path)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.code, Header: res.header,
		Body: io.NopCloser(bytes.NewReader(res.body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out),
		"%s %s → %d does not match openapi.json: %s", req.Method, req.URL.Path, res.code, res.body)
}

// routeHits records which registered route (method + gin path) tests hit,
// for the route-coverage test.
var routeHits sync.Map

func recordHit(engine *gin.Engine, method, path string) {
	for _, r := range engine.Routes() {
		if r.Method == method && matchGinPath(r.Path, path) {
			routeHits.Store(r.Method+" "+r.Path, true)
		}
	}
}

// matchGinPath matches a concrete path to a gin pattern with :params and a
// trailing *catch-all; static routes win over parameter routes as in gin.
func matchGinPath(pattern, path string) bool {
	ps, xs := splitPath(pattern), splitPath(path)
	if n := len(ps); n > 0 && strings.HasPrefix(ps[n-1], "*") && len(xs) >= n {
		ps, xs = ps[:n-1], xs[:n-1]
	}
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if len(ps[i]) > 0 && ps[i][0] == ':' {
			if xs[i] == "cache" && i == 1 { // gin routes /templates/cache/... statically
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

func splitPath(p string) []string {
	var out []string
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}
