package orchestrationapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
)

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// openAPI loads and validates the embedded document once (kin-openapi) and
// builds a router over it for matching requests to operations.
func openAPI(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, router, err := loadOpenAPI()
	require.NoError(t, err, "openapi.json")
	return doc, router
}

func loadOpenAPI() (*openapi3.T, routers.Router, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		if specDoc, specErr = loader.LoadFromData(web.OpenAPIDocument); specErr != nil {
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			return
		}
		// Match on paths only: the test servers listen on random ports.
		forRouting := *specDoc
		forRouting.Servers = nil
		specRouter, specErr = legacy.NewRouter(&forRouting)
	})
	return specDoc, specRouter, specErr
}

// reporter is the part of *testing.T that checkResponse uses; Errorf (not
// FailNow) because it runs on the test server's goroutine.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// checkResponse validates a response the server produced against the
// operation the document gives for the request: the status code must be
// documented, and content type and body must match its schema. Requests with
// no operation are skipped only when the server itself found no route (404
// NOT_FOUND), for CORS preflights, and for the non-API routes of
// apidocs.NonAPIPrefixes (the HTML docs page and its assets).
func checkResponse(t reporter, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	if req.Method == http.MethodOptions {
		return
	}
	_, router, err := loadOpenAPI()
	if err != nil {
		t.Errorf("openapi.json: %v", err)
		return
	}
	probe := req.Clone(context.Background())
	probe.Body = http.NoBody
	route, params, err := router.FindRoute(probe)
	if err != nil {
		if apidocs.IsNonAPIRoute(req.URL.Path) {
			return
		}
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if rec.Code == http.StatusNotFound && json.Unmarshal(rec.Body.Bytes(), &body) == nil && body.Error.Code == web.CodeNotFound {
			return // unrouted: there is no operation to check against
		}
		t.Errorf("%s %s answered %d but has no operation in openapi.json: %v", req.Method, req.URL.Path, rec.Code, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s → %d does not match openapi.json: %v\nbody: %s", req.Method, req.URL.Path, rec.Code, err, rec.Body.Bytes())
	}
}

// checkRequest validates a request the server accepted (2xx) against the
// document's parameters and request body: if the server takes a request the
// document would reject, the document is too strict and clients generated
// from it would refuse to send it. Rejected requests are not checked: the
// tests send invalid ones on purpose.
func checkRequest(t reporter, req *http.Request, body []byte, status int) {
	t.Helper()
	if status < 200 || status > 299 || apidocs.IsNonAPIRoute(req.URL.Path) {
		return
	}
	_, router, err := loadOpenAPI()
	if err != nil {
		t.Errorf("openapi.json: %v", err)
		return
	}
	probe := req.Clone(context.Background())
	probe.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := router.FindRoute(probe)
	if err != nil {
		t.Errorf("%s %s accepted (%d) but has no operation in openapi.json: %v", req.Method, req.URL.Path, status, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
		t.Errorf("%s %s was accepted (%d) but openapi.json rejects the request: %v\nbody: %s", req.Method, req.URL.String(), status, err, body)
	}
}

// openAPIPath turns a gin pattern (/v1/tasks/:task_uuid) into the
// document's form (/v1/tasks/{task_uuid}).
func openAPIPath(ginPath string) string {
	segs := strings.Split(ginPath, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// routeDrift compares a route table with the document in both directions:
// undocumented lists routes (outside apidocs.NonAPIPrefixes) with no
// operation, unrouted lists operations no route serves. Both are sorted
// "<METHOD> <path>" keys.
func routeDrift(routes gin.RoutesInfo, doc *openapi3.T) (undocumented, unrouted []string) {
	routed := map[string]bool{}
	for _, r := range routes {
		key := r.Method + " " + openAPIPath(r.Path)
		routed[key] = true
		if apidocs.IsNonAPIRoute(r.Path) {
			continue
		}
		item := doc.Paths.Find(openAPIPath(r.Path))
		if item == nil || item.GetOperation(r.Method) == nil {
			undocumented = append(undocumented, key)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if key := method + " " + path; !routed[key] {
				unrouted = append(unrouted, key)
			}
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unrouted)
	return undocumented, unrouted
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := openAPI(t)
	require.Equal(t, "3.0.3", doc.OpenAPI)
	require.NotEmpty(t, doc.Info.Title)
	// Every operation documents the middleware outcomes it can produce.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			require.NotNil(t, op.Responses.Status(http.StatusOK), "%s %s: 200", method, path)
			for _, code := range []int{http.StatusRequestTimeout, http.StatusInternalServerError} {
				require.NotNil(t, op.Responses.Status(code), "%s %s: %d", method, path, code)
			}
			if strings.HasPrefix(path, "/v1/") {
				require.NotNil(t, op.Responses.Status(http.StatusUnauthorized), "%s %s: 401 (protected-route list is configurable)", method, path)
			}
			if op.RequestBody != nil {
				require.NotNil(t, op.Responses.Status(http.StatusRequestEntityTooLarge), "%s %s: 413", method, path)
			}
		}
	}
}

func TestEveryRouteIsDocumented(t *testing.T) {
	doc, _ := openAPI(t)
	undocumented, unrouted := routeDrift(routeInventory(), doc)
	require.Empty(t, undocumented, "routes missing from openapi.json (document them, or mount them under apidocs.NonAPIPrefixes if they are not API)")
	require.Empty(t, unrouted, "operations in openapi.json that no route serves")

	// The check itself: a route added without documentation, or an
	// operation whose route was removed, is reported.
	t.Run("new undocumented route is caught", func(t *testing.T) {
		routes := append(routeInventory(), gin.RouteInfo{Method: http.MethodPost, Path: "/v1/tasks/:task_uuid/retry"})
		undocumented, _ := routeDrift(routes, doc)
		require.Equal(t, []string{"POST /v1/tasks/{task_uuid}/retry"}, undocumented)
	})
	t.Run("removed route is caught", func(t *testing.T) {
		var routes gin.RoutesInfo
		for _, r := range routeInventory() {
			if r.Path != "/v1/templates" {
				routes = append(routes, r)
			}
		}
		_, unrouted := routeDrift(routes, doc)
		require.Equal(t, []string{"GET /v1/templates"}, unrouted)
	})
	t.Run("non-API routes are exempt", func(t *testing.T) {
		routes := append(routeInventory(), gin.RouteInfo{Method: http.MethodGet, Path: "/ui/tasks/:task_uuid"})
		undocumented, _ := routeDrift(routes, doc)
		require.Empty(t, undocumented)
	})
}

// TestCheckResponse_RejectsUndocumentedStatus shows the response check is
// live: a status the operation does not list, or a body off its schema,
// fails the test that produced it.
func TestCheckResponse_RejectsUndocumentedStatus(t *testing.T) {
	cases := []struct {
		name   string
		method string
		path   string
		code   int
		body   string
	}{
		{"status not documented", http.MethodGet, "/health", http.StatusTeapot, `{"error":{"code":"X","message":"m"}}`},
		{"body off schema", http.MethodGet, "/health", http.StatusOK, `{"status":"ok"}`},
		{"unknown field", http.MethodGet, "/v1/templates", http.StatusOK, `[{"namespace":"n","name":"x","version":"1","description":null,"updated_at":"2026-01-01T00:00:00Z","extra":1}]`},
		{"routed path without operation", http.MethodPut, "/v1/tasks", http.StatusOK, `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(tc.code)
			_, _ = rec.WriteString(tc.body)
			var probe recordingReporter
			checkResponse(&probe, httptest.NewRequest(tc.method, tc.path, nil), rec)
			require.NotEmpty(t, probe.errors, "checkResponse accepted it")
			t.Log(probe.errors[0])
		})
	}
}

// TestCheckRequest_RejectsWhatTheDocumentForbids shows the request check is
// live: had the server accepted these, the document would be wrong.
func TestCheckRequest_RejectsWhatTheDocumentForbids(t *testing.T) {
	cases := []struct {
		name, method, target, body string
	}{
		{"required field missing", http.MethodPost, "/v1/tasks", `{"namespace":"examples","version":"1.0.0"}`},
		{"wrong type", http.MethodPost, "/v1/tasks", `{"name":"x","namespace":"examples","version":"1.0.0","priority":"high"}`},
		{"query out of range", http.MethodGet, "/v1/tasks?per_page=500", ""},
		{"unknown enum value", http.MethodGet, "/v1/dlq?status=closed", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			var probe recordingReporter
			checkRequest(&probe, req, []byte(tc.body), http.StatusOK)
			require.NotEmpty(t, probe.errors, "checkRequest accepted it")
			t.Log(probe.errors[0])
		})
	}
	var probe recordingReporter
	checkRequest(&probe, httptest.NewRequest(http.MethodGet, "/v1/tasks?per_page=500", nil), nil, http.StatusBadRequest)
	require.Empty(t, probe.errors, "rejected requests are not checked")
}

// recordingReporter collects what checkResponse reports.
type recordingReporter struct{ errors []string }

func (r *recordingReporter) Helper() {}

func (r *recordingReporter) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestOpenAPIAndDocsPageAreServed(t *testing.T) {
	u := unitSetup(t, web.Config{}, &fakeTasks{running: true}, fakeTemplates{}, nil)
	code, body := u.do(t, http.MethodGet, apidocs.DocumentPath, "")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, string(web.OpenAPIDocument), string(body))

	code, body = u.do(t, http.MethodGet, apidocs.PagePath, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "<title>Tasker orchestration API</title>")

	code, body = u.do(t, http.MethodGet, apidocs.AssetsPath+"/apidocs.js", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "data-spec")
}
