package workerapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestGetTemplates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		query      string
		code       int
		namespaces []string
		count      float64
		withStats  bool
		errCode    string
	}{
		{"all served namespaces", "", 200, []string{"examples", "other"}, 2, false, ""},
		{"one namespace with stats", "?namespace=examples&include_cache_stats=true", 200, []string{"examples"}, 1, true, ""},
		{"stats off explicitly", "?include_cache_stats=false", 200, []string{"examples", "other"}, 2, false, ""},
		{"unsupported namespace", "?namespace=unserved", 400, nil, 0, false, CodeNamespaceNotSupported},
		{"bad include_cache_stats", "?include_cache_stats=maybe", 400, nil, 0, false, CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			res := e.do(t, http.MethodGet, "/templates"+tc.query)
			require.Equal(t, tc.code, res.code, string(res.body))
			body := res.json(t)
			if tc.errCode != "" {
				requireKeys(t, body, "error", "message", "timestamp", "request_id")
				require.Equal(t, tc.errCode, body["error"])
				require.Equal(t, res.header.Get("x-request-id"), body["request_id"])
				return
			}
			requireKeys(t, body, "supported_namespaces", "template_count", "cache_stats", "worker_capabilities")
			var l TemplateListResponse
			require.NoError(t, json.Unmarshal(res.body, &l))
			require.Equal(t, tc.namespaces, l.SupportedNamespaces)
			require.Equal(t, int(tc.count), l.TemplateCount)
			require.Equal(t, []string{"command_processing", "database_access", "message_queues", "ffi_integration"}, l.WorkerCapabilities)
			require.Equal(t, tc.withStats, l.CacheStats != nil)
		})
	}
}

func TestGetTemplate_MissThenHitFromCache(t *testing.T) {
	t.Parallel()
	e := setup(t)
	path := "/templates/examples/square_chain/1.0.0"
	res := e.do(t, http.MethodGet, path)
	require.Equal(t, http.StatusOK, res.code, string(res.body))
	body := res.json(t)
	requireKeys(t, body, "template", "handler_metadata", "cached", "cache_age_seconds", "access_count")
	var first TemplateResponse
	require.NoError(t, json.Unmarshal(res.body, &first))
	require.False(t, first.Cached)
	require.Nil(t, first.CacheAgeSeconds)
	require.Nil(t, first.AccessCount)
	require.Equal(t, "test", first.Template.Environment)
	tmpl, err := domain.ParseTemplateJSON(first.Template.Template)
	require.NoError(t, err)
	require.Equal(t, "square_chain", tmpl.Name)
	require.Len(t, tmpl.Steps, 3)
	hm := first.HandlerMetadata
	require.Equal(t, "examples", hm.Namespace)
	require.Equal(t, "square_chain", hm.Name)
	require.Equal(t, "1.0.0", hm.Version)
	require.Equal(t, DefaultHandlerClass, hm.HandlerClass)
	require.Equal(t, "default", *hm.DefaultDependentSystem)
	require.Equal(t, lastUsed, hm.RegisteredAt)
	require.JSONEq(t, string(e.catalog.items["examples/square_chain/1.0.0"].Configuration), string(hm.ConfigSchema))

	e.clock.advance(7 * time.Second)
	var second TemplateResponse
	require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, path).body, &second))
	require.True(t, second.Cached)
	require.Equal(t, uint64(7), *second.CacheAgeSeconds)
	require.Equal(t, uint64(1), *second.AccessCount)

	var st CacheStats
	require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, "/templates/cache/stats").body, &st))
	require.Equal(t, CacheStats{TotalCached: 1, CacheHits: 1, CacheMisses: 1, OldestEntryAgeSeconds: 7, AverageAccessCount: 1,
		SupportedNamespaces: []string{"examples", "other"}}, st)
}

func TestGetTemplate_ResolvesForEnvironmentAndHandlerClass(t *testing.T) {
	t.Parallel()
	e := setup(t)
	timeout := uint32(5)
	tmpl := domain.TaskTemplate{Name: "env_task", NamespaceName: "examples", Version: "1.0.0",
		Steps:        []domain.StepDefinition{{Name: "a", Handler: domain.HandlerDefinition{Callable: "X"}}},
		Environments: map[string]domain.EnvironmentOverride{"test": {Steps: []domain.StepOverride{{Name: "ALL", TimeoutSeconds: &timeout}}}}}
	raw, err := tmpl.WithDefaults().ConfigurationJSON()
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	m["handler_class"] = "Custom::Handler"
	raw, err = json.Marshal(m)
	require.NoError(t, err)
	e.catalog.put(ports.RegisteredTemplate{Namespace: "examples", Name: "env_task", Version: "1.0.0", Configuration: raw, UpdatedAt: lastUsed})

	var resp TemplateResponse
	res := e.do(t, http.MethodGet, "/templates/examples/env_task/1.0.0")
	require.Equal(t, http.StatusOK, res.code)
	require.NoError(t, json.Unmarshal(res.body, &resp))
	resolved, err := domain.ParseTemplateJSON(resp.Template.Template)
	require.NoError(t, err)
	require.Equal(t, uint32(5), *resolved.Steps[0].TimeoutSeconds, "resolved for the worker's environment (D-q)")
	require.Equal(t, "Custom::Handler", resp.HandlerMetadata.HandlerClass)
}

func TestGetTemplate_Errors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		path   string
		mutate func(*env)
		code   int
		errors string
	}{
		{"unknown template", "/templates/examples/nope/1.0.0", nil, 404, CodeTemplateNotFound},
		{"no configuration", "/templates/examples/legacy/1.0.0", func(e *env) {
			e.catalog.put(ports.RegisteredTemplate{Namespace: "examples", Name: "legacy", Version: "1.0.0"})
		}, 404, CodeHandlerMetadataNotFound},
		{"unparseable configuration", "/templates/examples/broken/1.0.0", func(e *env) {
			e.catalog.put(ports.RegisteredTemplate{Namespace: "examples", Name: "broken", Version: "1.0.0", Configuration: json.RawMessage(`[1]`)})
		}, 404, CodeHandlerMetadataNotFound},
		{"database failure", "/templates/examples/square_chain/1.0.0", func(e *env) { e.catalog.err = errors.New("conn reset") }, 500, CodeDatabaseError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			if tc.mutate != nil {
				tc.mutate(e)
			}
			res := e.do(t, http.MethodGet, tc.path)
			require.Equal(t, tc.code, res.code)
			require.Equal(t, tc.errors, res.json(t)["error"])
		})
	}
}

func TestValidateTemplate(t *testing.T) {
	t.Parallel()
	invalid := domain.TaskTemplate{Name: "bad", NamespaceName: "examples", Version: "1.0.0", Steps: []domain.StepDefinition{
		{Name: "a", Handler: domain.HandlerDefinition{Callable: "Acme::DatabaseFFIHandler"}, Dependencies: []string{"missing"}},
		{Name: "b", Handler: domain.HandlerDefinition{Callable: "Acme::ExternalCall"}},
		{Name: "c", Handler: domain.HandlerDefinition{Callable: "Acme::ExternalCall"}},
	}}
	rawInvalid, err := invalid.WithDefaults().ConfigurationJSON()
	require.NoError(t, err)
	cases := []struct {
		name     string
		path     string
		code     int
		valid    bool
		errs     int
		caps     []string
		handlers []string
	}{
		{"valid", "/templates/examples/square_chain/1.0.0/validate", 200, true, 0, []string{},
			[]string{"Examples::Square", "Examples::Multiply", "Unregistered::Handler"}},
		{"invalid with capabilities", "/templates/examples/bad/1.0.0/validate", 200, false, 1,
			[]string{"database_access", "external_api", "ffi"}, []string{"Acme::DatabaseFFIHandler", "Acme::ExternalCall"}},
		{"not a template", "/templates/examples/junk/1.0.0/validate", 200, false, 1, []string{}, []string{}},
		{"unknown", "/templates/examples/nope/1.0.0/validate", 404, false, 0, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.catalog.put(ports.RegisteredTemplate{Namespace: "examples", Name: "bad", Version: "1.0.0", Configuration: rawInvalid})
			e.catalog.put(ports.RegisteredTemplate{Namespace: "examples", Name: "junk", Version: "1.0.0", Configuration: json.RawMessage(`"x"`)})
			res := e.do(t, http.MethodPost, tc.path)
			require.Equal(t, tc.code, res.code, string(res.body))
			if tc.code != 200 {
				require.Equal(t, CodeTemplateNotFound, res.json(t)["error"])
				return
			}
			requireKeys(t, res.json(t), "valid", "errors", "required_capabilities", "step_handlers")
			var v TemplateValidationResponse
			require.NoError(t, json.Unmarshal(res.body, &v))
			require.Equal(t, tc.valid, v.Valid)
			require.Len(t, v.Errors, tc.errs, v.Errors)
			require.Equal(t, tc.caps, v.RequiredCapabilities)
			require.Equal(t, tc.handlers, v.StepHandlers)
		})
	}
}

func TestRefreshTemplate(t *testing.T) {
	t.Parallel()
	e := setup(t)
	path := "/templates/examples/square_chain/1.0.0"
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, path).code)
	updated := exampleTemplate("examples", "square_chain", "1.0.0", "Examples::Square")
	e.catalog.put(updated)

	res := e.do(t, http.MethodPost, path+"/refresh")
	require.Equal(t, http.StatusOK, res.code, string(res.body))
	requireKeys(t, res.json(t), "operation", "success", "cache_stats")
	var op CacheOperationResponse
	require.NoError(t, json.Unmarshal(res.body, &op))
	require.Equal(t, "refresh", op.Operation)
	require.True(t, op.Success)
	require.Equal(t, uint64(1), op.CacheStats.TotalCached)

	var got TemplateResponse
	require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, path).body, &got))
	require.True(t, got.Cached)
	tmpl, err := domain.ParseTemplateJSON(got.Template.Template)
	require.NoError(t, err)
	require.Len(t, tmpl.Steps, 1, "the cache holds the refreshed template")

	require.Equal(t, http.StatusNotFound, e.do(t, http.MethodPost, "/templates/examples/nope/1.0.0/refresh").code)
	e.catalog.err = errors.New("connection refused")
	res = e.do(t, http.MethodPost, path+"/refresh")
	require.Equal(t, http.StatusInternalServerError, res.code)
	require.Equal(t, CodeRefreshFailed, res.json(t)["error"])
}

func TestClearAndMaintainCache(t *testing.T) {
	t.Parallel()
	e := setup(t)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/templates/examples/square_chain/1.0.0").code)
	e.clock.advance(DefaultTemplateCacheTTL)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/templates/other/other_task/2.0.0").code)

	res := e.do(t, http.MethodPost, "/templates/cache/maintain")
	require.Equal(t, http.StatusOK, res.code)
	var op CacheOperationResponse
	require.NoError(t, json.Unmarshal(res.body, &op))
	require.Equal(t, "maintain", op.Operation)
	require.Equal(t, uint64(1), op.CacheStats.TotalCached, "the entry older than the TTL was evicted")
	require.Equal(t, uint64(1), op.CacheStats.CacheEvictions)

	res = e.do(t, http.MethodDelete, "/templates/cache")
	require.Equal(t, http.StatusOK, res.code)
	require.NoError(t, json.Unmarshal(res.body, &op))
	require.Equal(t, "clear", op.Operation)
	require.True(t, op.Success)
	require.Zero(t, op.CacheStats.TotalCached)
}

func TestTemplateCache_LRUAndTTL(t *testing.T) {
	t.Parallel()
	clock := &manualClock{now: time.Unix(1000, 0)}
	c := newTemplateCache(2, time.Minute, clock.Now)
	c.Put("a", TemplateResponse{})
	c.Put("b", TemplateResponse{})
	_, ok := c.Get("a") // a becomes most recently used
	require.True(t, ok)
	c.Put("c", TemplateResponse{}) // evicts b, the least recently used
	_, ok = c.Get("b")
	require.False(t, ok)
	_, ok = c.Get("a")
	require.True(t, ok)
	clock.advance(time.Minute)
	_, ok = c.Get("c")
	require.False(t, ok, "expired entries are misses")
	st := c.Stats(nil)
	require.Equal(t, uint64(1), st.TotalCached)
	require.Equal(t, uint64(2), st.CacheHits)
	require.Equal(t, uint64(2), st.CacheMisses)
	require.Equal(t, uint64(2), st.CacheEvictions)
	c.Put("a", TemplateResponse{Cached: true}) // replacing keeps one entry
	require.Equal(t, uint64(1), c.Stats(nil).TotalCached)
	require.Zero(t, c.Maintain())
	clock.advance(time.Minute)
	require.Equal(t, 1, c.Maintain())
	require.Zero(t, c.Stats(nil).TotalCached)
}
