package workerapi

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"
	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/domain"
)

// routeInventory is a server with every optional route enabled, used to
// enumerate the routes that must be covered.
func routeInventory() *Server {
	srv, err := New(Config{WorkerID: "w", MetricsEnabled: true, AuthEnabled: true, Tokens: []string{"t"}},
		Deps{Status: &fakeStatus{}, Health: health.New(testHealth()), Templates: &fakeCatalog{}, Handlers: fakeRegistry{}, DB: &fakeDB{}, Queues: &fakeQueues{},
			Metrics: http.NotFoundHandler()})
	if err != nil {
		panic(err)
	}
	return srv
}

func requireKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.Contains(t, m, k)
	}
}

func TestGetHealth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.db.setDown(errors.New("down")) // /health never looks at the database
	res := e.do(t, http.MethodGet, "/health")
	require.Equal(t, http.StatusOK, res.code)
	body := res.json(t)
	requireKeys(t, body, "status", "timestamp", "worker_id")
	require.Equal(t, "ok", body["status"])
	require.Equal(t, "worker-test", body["worker_id"])
	require.NotEmpty(t, res.header.Get("x-request-id"))
}

func TestGetHealthReady_Ready(t *testing.T) {
	t.Parallel()
	e := setup(t)
	res := e.do(t, http.MethodGet, "/health/ready")
	require.Equal(t, http.StatusOK, res.code, string(res.body))
	var body DetailedHealthResponse
	require.NoError(t, json.Unmarshal(res.body, &body))
	require.Equal(t, "ready", body.Status)
	require.Equal(t, "worker-test", body.WorkerID)
	require.Equal(t, StatusHealthy, body.Checks[CheckDatabase].Status)
	require.Equal(t, StatusHealthy, body.Checks[CheckCommandProcessor].Status)
	require.Equal(t, StatusHealthy, body.Checks[CheckQueueProcessing].Status)
	require.Equal(t, SystemInfo{Version: "0.1.0", Environment: "test", WorkerType: "command_processor", DatabasePoolSize: 3,
		CommandProcessorActive: true, SupportedNamespaces: []string{"examples", "other"}}, body.SystemInfo)
}

func TestGetHealthLive(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.db.setDown(errors.New("connection refused")) // liveness ignores the database
	res := e.do(t, http.MethodGet, "/health/live")
	require.Equal(t, http.StatusOK, res.code)
	body := res.json(t)
	requireKeys(t, body, "status", "timestamp", "worker_id")
	require.Equal(t, "alive", body["status"])
}

func TestGetMetricsWorker(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.clock.advance(90 * time.Second)
	res := e.do(t, http.MethodGet, "/metrics/worker")
	require.Equal(t, http.StatusOK, res.code)
	var body MetricsResponse
	require.NoError(t, json.Unmarshal(res.body, &body))
	require.Equal(t, "worker-test", body.WorkerID)
	require.Equal(t, MetricValue{Value: 90, MetricType: "counter", Labels: map[string]string{}, Help: "Worker uptime in seconds"}, body.Metrics["uptime_seconds"])
	require.Equal(t, 3.0, body.Metrics["database_pool_size"].Value)
	require.Equal(t, MetricValue{Value: 5, MetricType: "gauge", Labels: map[string]string{"namespace": "examples"}, Help: "Queue depth per namespace"},
		body.Metrics["queue_depth_examples"])
	require.Equal(t, 42.0, body.Metrics["queue_oldest_message_age_examples"].Value)
	require.Equal(t, 0.0, body.Metrics["queue_depth_other"].Value)
	require.NotContains(t, body.Metrics, "queue_oldest_message_age_other", "no age for an empty queue")
}

func TestGetStatus_AndDetailed(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/status", "/status/detailed"} {
		t.Run(path, func(t *testing.T) {
			e := setup(t)
			res := e.do(t, http.MethodGet, path)
			require.Equal(t, http.StatusOK, res.code)
			body := res.json(t)
			requireKeys(t, body, "worker_id", "worker_type", "status", "uptime_seconds", "configuration", "capabilities",
				"performance_metrics", "registered_handlers")
			var st WorkerStatusResponse
			require.NoError(t, json.Unmarshal(res.body, &st))
			require.Equal(t, "active", st.Status)
			require.Equal(t, "command_processor", st.WorkerType)
			require.Equal(t, StatusConfiguration{Environment: "test", DatabaseConnected: true, EventSystemEnabled: true,
				CommandBufferSize: 1000, SupportedNamespaces: []string{"examples", "other"}}, st.Configuration, "no breaker wired: null")
			require.True(t, st.Capabilities.CanProcessSteps)
			require.Equal(t, []string{"SimpleStepMessage", "StepCompletionEvent"}, st.Capabilities.SupportedMessageTypes)
			pm := st.PerformanceMetrics
			require.Equal(t, uint64(3), pm.StepsProcessedTotal)
			require.Equal(t, uint64(2), pm.StepsProcessedSuccess)
			require.Equal(t, uint64(1), pm.StepsProcessedFailed)
			require.Equal(t, 12.5, pm.AverageProcessingTimeMs)
			require.Equal(t, 0.05, pm.QueueProcessingRate)
			require.Equal(t, lastUsed, *pm.LastStepProcessed)
			require.Equal(t, []ErrorDetail{{Timestamp: lastUsed, ErrorType: "validation", Message: "odd number", Namespace: "examples", StepName: "step_a"}}, pm.ErrorDetails)
			require.Len(t, st.RegisteredHandlers, 3)
		})
	}
}

func TestGetStatus_Lifecycle(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mut  func(*domain.WorkerStatus)
		want string
	}{
		{"not started", func(s *domain.WorkerStatus) { s.Started = false }, LifecycleStarting},
		{"pipeline not running", func(s *domain.WorkerStatus) { s.PipelineRunning = false }, LifecycleStarting},
		{"shutting down", func(s *domain.WorkerStatus) { s.ShuttingDown = true }, LifecycleStopping},
		{"running", func(*domain.WorkerStatus) {}, LifecycleActive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.status.update(tc.mut)
			var st WorkerStatusResponse
			require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, "/status").body, &st))
			require.Equal(t, tc.want, st.Status)
		})
	}
}

func TestGetStatusNamespaces(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		depth  int64
		err    error
		status string
	}{
		{"healthy", 99, nil, "healthy"},
		{"warning", 100, nil, "warning"},
		{"critical", 500, nil, "critical"},
		{"metrics failed", 7, errors.New("pgmq down"), "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.queues.depths["examples_queue"], e.queues.err = tc.depth, tc.err
			res := e.do(t, http.MethodGet, "/status/namespaces")
			require.Equal(t, http.StatusOK, res.code)
			list := res.list(t)
			require.Len(t, list, 2)
			requireKeys(t, list[0], "namespace", "queue_depth", "processing_rate", "active_steps", "health_status", "last_processed")
			var nh []NamespaceHealth
			require.NoError(t, json.Unmarshal(res.body, &nh))
			require.Equal(t, "examples", nh[0].Namespace)
			require.Equal(t, tc.status, nh[0].HealthStatus)
			if tc.err == nil {
				require.Equal(t, uint64(tc.depth), nh[0].QueueDepth)
			} else {
				require.Zero(t, nh[0].QueueDepth, "unknown reports depth 0")
			}
			require.Equal(t, uint64(1), nh[0].ActiveSteps)
			require.Equal(t, lastUsed, *nh[0].LastProcessed)
			require.Nil(t, nh[1].LastProcessed)
		})
	}
}

// A transiently negative active gauge (an outcome counted before its
// claim) is reported as 0, never as a wrapped-around uint64.
func TestGetStatusNamespacesClampsNegativeActive(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.status.update(func(s *domain.WorkerStatus) {
		s.Namespaces = map[string]domain.WorkerNamespaceStats{"other": {Active: -1}, "examples": {Active: 2}}
	})
	res := e.do(t, http.MethodGet, "/status/namespaces")
	require.Equal(t, http.StatusOK, res.code)
	var nh []NamespaceHealth
	require.NoError(t, json.Unmarshal(res.body, &nh))
	active := map[string]uint64{}
	for _, n := range nh {
		active[n.Namespace] = n.ActiveSteps
	}
	require.Equal(t, map[string]uint64{"other": 0, "examples": 2}, active)
}

func TestGetHandlers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	res := e.do(t, http.MethodGet, "/handlers")
	require.Equal(t, http.StatusOK, res.code)
	list := res.list(t)
	require.NotEmpty(t, list)
	requireKeys(t, list[0], "namespace", "handler_class", "version", "last_used", "success_count", "failure_count")
	var hs []RegisteredHandler
	require.NoError(t, json.Unmarshal(res.body, &hs))
	// One per (served namespace, callable with a Go handler); the
	// unregistered callable and the unserved namespace are left out.
	require.Equal(t, []RegisteredHandler{
		{Namespace: "examples", HandlerClass: "Examples::Multiply", Version: "1.0.0"},
		{Namespace: "examples", HandlerClass: "Examples::Square", Version: "1.0.0", LastUsed: &lastUsed, SuccessCount: 2, FailureCount: 1},
		{Namespace: "other", HandlerClass: "Examples::Square", Version: "2.0.0"},
	}, hs)
}

func TestGetHandlers_CatalogFailureIs500(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.catalog.err = errors.New("unexpected catalog state")
	res := e.do(t, http.MethodGet, "/handlers")
	require.Equal(t, http.StatusInternalServerError, res.code)
	require.Equal(t, CodeDatabaseError, res.json(t)["error"])
}

// TestStoreErrorClasses is issue 13 defects 2-3 on the worker: a statement
// cancelled at the deadline is 408 and an unreachable database 503 with
// Retry-After, not 500 database_error.
func TestStoreErrorClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"57014 query canceled", &pq.Error{Code: "57014"}, http.StatusRequestTimeout, CodeRequestTimeout},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, http.StatusServiceUnavailable, CodeServiceUnavailable},
		{"connection reset", errors.New("read tcp: connection reset by peer"), http.StatusServiceUnavailable, CodeServiceUnavailable},
		{"57P01 admin shutdown", &pq.Error{Code: "57P01"}, http.StatusServiceUnavailable, CodeServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.catalog.err = tc.err
			res := e.do(t, http.MethodGet, "/handlers")
			require.Equal(t, tc.status, res.code)
			require.Equal(t, tc.code, res.json(t)["error"])
			if tc.status == http.StatusServiceUnavailable {
				require.Equal(t, RetryAfterSeconds, res.header.Get("Retry-After"))
			}
			t.Logf("store error %v: GET /handlers → %d Retry-After=%q %s", tc.err, res.code, res.header.Get("Retry-After"), res.body)
		})
	}
}

func TestGetOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := setup(t)
	res := e.do(t, http.MethodGet, "/api-docs/openapi.json")
	require.Equal(t, http.StatusOK, res.code)
	body := res.json(t)
	requireKeys(t, body, "openapi", "info", "paths", "components")
	paths := body["paths"].(map[string]any)
	for _, r := range e.srv.Engine().Routes() {
		if apidocs.IsNonAPIRoute(r.Path) && r.Path != apidocs.DocumentPath {
			continue // the docs page and its assets are not API
		}
		p := r.Path
		for _, seg := range []string{"ns", "name", "version"} {
			p = strings.ReplaceAll(p, ":"+seg, "{"+seg+"}")
		}
		op, ok := paths[p].(map[string]any)
		require.True(t, ok, "route %s %s is not documented", r.Method, r.Path)
		require.Contains(t, op, strings.ToLower(r.Method), "route %s %s is not documented", r.Method, r.Path)
	}
}

// TestEveryDocumentedOperationIsRouted is the other direction of
// TestGetOpenAPIDocument: an operation in openapi.json that no route of a
// fully configured server serves (a removed or renamed route) fails.
func TestEveryDocumentedOperationIsRouted(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(OpenAPIDocument, &doc))
	routed := map[string]bool{}
	for _, r := range routeInventory().Engine().Routes() {
		p := r.Path
		for _, seg := range []string{"ns", "name", "version"} {
			p = strings.ReplaceAll(p, ":"+seg, "{"+seg+"}")
		}
		routed[r.Method+" "+p] = true
	}
	require.NotEmpty(t, doc.Paths)
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "post", "put", "patch", "delete":
				key := strings.ToUpper(method) + " " + path
				require.True(t, routed[key], "openapi.json documents %s but no route serves it", key)
			}
		}
	}
}

func TestGetAPIDocsPage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	res := e.do(t, http.MethodGet, apidocs.PagePath)
	require.Equal(t, http.StatusOK, res.code)
	require.Contains(t, string(res.body), "<title>Tasker worker API</title>")
	res = e.do(t, http.MethodGet, apidocs.AssetsPath+"/apidocs.css")
	require.Equal(t, http.StatusOK, res.code)
	require.Contains(t, res.header.Get("Content-Type"), "text/css")
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	e := setup(t)
	res := e.do(t, http.MethodGet, "/nope")
	require.Equal(t, http.StatusNotFound, res.code)
	require.Equal(t, CodeNotFound, res.json(t)["error"])
	res = e.do(t, http.MethodPost, "/status")
	require.Equal(t, http.StatusMethodNotAllowed, res.code)
	require.Equal(t, CodeMethodNotAllowed, res.json(t)["error"])
}

func TestNew_RejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	full := Deps{Status: &fakeStatus{}, Health: health.New(testHealth()), Templates: &fakeCatalog{}, Handlers: fakeRegistry{}, DB: &fakeDB{}, Queues: &fakeQueues{}}
	cases := []struct {
		name string
		cfg  Config
		deps func(Deps) Deps
		want string
	}{
		{"no status", Config{}, func(d Deps) Deps { d.Status = nil; return d }, "required"},
		{"no health policy", Config{}, func(d Deps) Deps { d.Health = nil; return d }, "required"},
		{"no db", Config{}, func(d Deps) Deps { d.DB = nil; return d }, "required"},
		{"metrics without handler", Config{MetricsEnabled: true}, func(d Deps) Deps { return d }, "Metrics handler"},
		{"auth without tokens", Config{AuthEnabled: true}, func(d Deps) Deps { return d }, "without tokens"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.deps(full))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMetricsDisabled_RoutesAbsent(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.MetricsEnabled = false })
	for _, r := range e.srv.Engine().Routes() {
		require.False(t, strings.HasPrefix(r.Path, "/metrics"), r.Path)
	}
	require.Equal(t, http.StatusNotFound, e.do(t, http.MethodGet, "/metrics").code)
}

type breakerState string

func (b breakerState) BreakerState() string { return string(b) }

func TestGetStatus_ReportsCircuitBreaker(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.srv.deps.Breaker = breakerState("open")
	var st WorkerStatusResponse
	require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, "/status").body, &st))
	require.Equal(t, "open", *st.Configuration.CircuitBreakerState)
}
