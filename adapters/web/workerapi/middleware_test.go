package workerapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// concretePath turns a gin route pattern into a request path that reaches
// a real template of the fixture.
func concretePath(pattern string) string {
	r := strings.NewReplacer(":ns", "examples", ":name", "square_chain", ":version", "1.0.0", "*file", "apidocs.js")
	return r.Replace(pattern)
}

func TestAuth_EveryNonExemptRoute(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.AuthEnabled, c.Tokens = true, []string{"s3cret-token", "second-token"} })
	routes := e.srv.Engine().Routes()
	require.Len(t, routes, 19)
	for _, r := range routes {
		path := concretePath(r.Path)
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			if !middleware.Protected([]string{"*"})(r.Method + " " + r.Path) {
				require.Equal(t, http.StatusOK, e.do(t, r.Method, path).code, "probes need no token")
				return
			}
			for _, bad := range []struct{ name, header string }{
				{"missing", ""}, {"wrong token", "Bearer s3cret-tokeX"}, {"prefix of a token", "Bearer s3cret"},
				{"wrong scheme", "Basic czNjcmV0LXRva2Vu"}, {"empty bearer", "Bearer "},
			} {
				var res response
				if bad.header == "" {
					res = e.do(t, r.Method, path)
				} else {
					res = e.do(t, r.Method, path, "Authorization", bad.header)
				}
				require.Equal(t, http.StatusUnauthorized, res.code, bad.name)
				body := res.json(t)
				require.Equal(t, CodeUnauthorized, body["error"], bad.name)
				require.Equal(t, res.header.Get("x-request-id"), body["request_id"])
			}
			for _, tok := range []string{"s3cret-token", "second-token"} {
				res := e.do(t, r.Method, path, "Authorization", "Bearer "+tok)
				require.Equal(t, http.StatusOK, res.code, "%s with a valid token: %s", path, res.body)
			}
		})
	}
}

func TestAuthExempt(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"GET /health": true, "GET /health/ready": true, "GET /health/live": true,
		"GET /metrics": true, "GET /healthz": false, "GET /metrics/worker": false, "GET /status": false, "DELETE /templates/cache": false,
	} {
		require.Equal(t, want, !middleware.Protected([]string{"*"})(key), key)
	}
}

func TestRequestID_KeptWhenValidElseGenerated(t *testing.T) {
	t.Parallel()
	e := setup(t)
	res := e.do(t, http.MethodGet, "/health", "x-request-id", "abc-123")
	require.Equal(t, "abc-123", res.header.Get("x-request-id"))
	res = e.do(t, http.MethodGet, "/templates?namespace=unserved", "x-request-id", "abc-456")
	require.Equal(t, "abc-456", res.json(t)["request_id"], "errors carry the same id")
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "tab\there"} {
		res = e.do(t, http.MethodGet, "/health", "x-request-id", bad)
		got := res.header.Get("x-request-id")
		require.NotEqual(t, bad, got)
		require.Len(t, got, 36, "a generated UUID")
	}
}

// TestCORS: only configured origins get CORS headers; none by default
// (issue 13: CORS "*" let any page create work).
func TestCORS(t *testing.T) {
	t.Parallel()
	def := setup(t)
	require.Empty(t, def.do(t, http.MethodGet, "/health", "Origin", "https://evil.example").header.Get("Access-Control-Allow-Origin"),
		"no origin is allowed by default")
	e := setup(t, func(c *Config) { c.CORSAllowedOrigins = []string{"https://example.com"} })
	res := e.do(t, http.MethodGet, "/health", "Origin", "https://example.com")
	require.Equal(t, "https://example.com", res.header.Get("Access-Control-Allow-Origin"))
	require.Empty(t, e.do(t, http.MethodGet, "/health", "Origin", "https://evil.example").header.Get("Access-Control-Allow-Origin"))
	req := httptest.NewRequest(http.MethodOptions, "/status", nil)
	req.Header.Set("Origin", "https://example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), "GET")

	off := setup(t, func(c *Config) { c.CORSEnabled, c.CORSAllowedOrigins = false, []string{"*"} })
	require.Empty(t, off.do(t, http.MethodGet, "/health", "Origin", "https://example.com").header.Get("Access-Control-Allow-Origin"))
}

func TestRecovery_PanicBecomesErrorResponseWithoutStack(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	e := setup(t)
	srv, err := New(e.srv.cfg, Deps{Health: e.srv.deps.Health, Status: StatusFunc(func() domain.WorkerStatus { panic("boom: secret internals") }),
		Templates: e.catalog, Handlers: fakeRegistry{}, DB: e.db, Queues: e.queues, Metrics: http.NotFoundHandler(), Logger: zap.New(core)})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	var body ErrorResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, CodeInternalError, body.Error)
	require.Equal(t, "Internal server error", body.Message)
	require.NotContains(t, rec.Body.String(), "boom")
	require.NotContains(t, rec.Body.String(), "goroutine")
	require.Equal(t, 1, logs.FilterMessage("panic in http handler").Len(), "the panic is logged server-side")
}

func TestAccessLog_CarriesRequestID(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.DebugLevel)
	e := setup(t)
	srv, err := New(e.srv.cfg, Deps{Health: e.srv.deps.Health, Status: e.status, Templates: e.catalog, Handlers: fakeRegistry{}, DB: e.db, Queues: e.queues,
		Metrics: http.NotFoundHandler(), Logger: zap.New(core), Clock: e.clock})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/health", nil)
	req.Header.Set("x-request-id", "log-me")
	srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	entries := logs.FilterMessage("http request").All()
	require.Len(t, entries, 1)
	fields := entries[0].ContextMap()
	require.Equal(t, "log-me", fields["request_id"])
	require.Equal(t, "/health", fields["route"])
	require.EqualValues(t, 200, fields["status"])
	require.Equal(t, zap.DebugLevel, entries[0].Level, "probes log at DEBUG")

	srv.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/no/such/route", nil))
	entries = logs.FilterMessage("http request").All()
	require.Len(t, entries, 2)
	require.Equal(t, zap.InfoLevel, entries[1].Level, "other requests log at INFO")
}

// blockingCatalog waits for the request deadline, like a hung database.
type blockingCatalog struct{ fakeCatalog }

func (b *blockingCatalog) ListTemplates(ctx context.Context, _ string) ([]ports.RegisteredTemplate, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestRequestTimeout_Is408(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.RequestTimeout = 30 * time.Millisecond })
	srv, err := New(e.srv.cfg, Deps{Health: e.srv.deps.Health, Status: e.status, Templates: &blockingCatalog{}, Handlers: fakeRegistry{}, DB: e.db, Queues: e.queues,
		Metrics: http.NotFoundHandler()})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/templates", nil))
	require.Equal(t, http.StatusRequestTimeout, rec.Code)
	var body ErrorResponse
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Equal(t, CodeRequestTimeout, body.Error)
}

func TestStaticTokens(t *testing.T) {
	t.Parallel()
	ts := newStaticTokens([]string{" a-token ", "", "b"})
	require.Len(t, ts, 2, "blank tokens are dropped, surrounding space trimmed")
	_, err := ts.Verify("a-token")
	require.NoError(t, err)
	_, err = ts.Verify("b")
	require.NoError(t, err)
	for _, bad := range []string{"", "a", "a-token ", "c"} {
		_, err = ts.Verify(bad)
		require.Error(t, err, bad)
	}
}
