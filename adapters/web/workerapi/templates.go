package workerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DefaultHandlerClass is TemplateResponse.handler_metadata.handler_class
// when the configuration names none (contract §8.2).
const DefaultHandlerClass = "TaskerCore::TaskHandler::Base"

// workerCapabilities is TemplateListResponse.worker_capabilities (fixed by the contract).
var workerCapabilities = []string{"command_processing", "database_access", "message_queues", "ffi_integration"}

// capabilityMarkers map a substring of a callable to a required capability
// (contract §8.2, TemplateValidationResponse).
var capabilityMarkers = []struct{ marker, capability string }{
	{"FFI", "ffi"}, {"External", "external_api"}, {"Database", "database_access"},
}

// templateParams reads the {ns}/{name}/{version} path parameters and
// answers 400 bad_request for one PostgreSQL cannot take as text (a %00 in
// the URL), which used to reach the catalog query and answer 500.
func (s *Server) templateParams(c *gin.Context) (ns, name, version string, ok bool) {
	ns, name, version = c.Param("ns"), c.Param("name"), c.Param("version")
	for _, p := range [][2]string{{"namespace", ns}, {"name", name}, {"version", version}} {
		if err := domain.ValidateText(p[0], p[1]); err != nil {
			var ve *domain.ValidationError
			_ = errors.As(err, &ve)
			s.writeError(c, http.StatusBadRequest, CodeBadRequest, ve.Reason)
			return "", "", "", false
		}
	}
	if !middleware.NamespaceAllowed(c, ns) {
		s.writeError(c, http.StatusForbidden, CodeForbidden, "Token is not allowed namespace "+ns)
		return "", "", "", false
	}
	return ns, name, version, true
}

func templateKey(ns, name, version string) string { return ns + "/" + name + "/" + version }

func (s *Server) handleListTemplates(c *gin.Context) {
	namespaces := s.namespaces()
	if ns, ok := c.GetQuery("namespace"); ok && ns != "" {
		if !slices.Contains(s.cfg.Namespaces, ns) {
			s.writeError(c, http.StatusBadRequest, CodeNamespaceNotSupported,
				fmt.Sprintf("Namespace %q is not supported by this worker (supported: %s)", ns, strings.Join(s.cfg.Namespaces, ", ")))
			return
		}
		namespaces = []string{ns}
	}
	includeStats := false
	if raw, ok := c.GetQuery("include_cache_stats"); ok && raw != "" {
		v, err := strconv.ParseBool(raw)
		if err != nil {
			s.writeError(c, http.StatusBadRequest, CodeBadRequest, "include_cache_stats must be true or false")
			return
		}
		includeStats = v
	}
	count := 0
	for _, ns := range namespaces {
		ts, err := s.deps.Templates.ListTemplates(c.Request.Context(), ns)
		if err != nil {
			s.writeStoreError(c, "list templates", err)
			return
		}
		count += len(ts)
	}
	resp := TemplateListResponse{SupportedNamespaces: namespaces, TemplateCount: count, WorkerCapabilities: workerCapabilities}
	if includeStats {
		st := s.cache.Stats(s.namespaces())
		resp.CacheStats = &st
	}
	c.JSON(http.StatusOK, resp)
}

func (s *Server) handleGetTemplate(c *gin.Context) {
	ns, name, version, ok := s.templateParams(c)
	if !ok {
		return
	}
	key := templateKey(ns, name, version)
	if e, ok := s.cache.Get(key); ok {
		resp := e.value
		age := uint64(s.clock.Now().Sub(e.stored).Seconds())
		accesses := e.accesses
		resp.Cached, resp.CacheAgeSeconds, resp.AccessCount = true, &age, &accesses
		c.JSON(http.StatusOK, resp)
		return
	}
	resp, ok := s.loadTemplate(c, ns, name, version)
	if !ok {
		return
	}
	s.cache.Put(key, resp)
	c.JSON(http.StatusOK, resp)
}

// loadTemplate reads and resolves a template from the catalog, writing the
// error response itself when it fails.
func (s *Server) loadTemplate(c *gin.Context, ns, name, version string) (TemplateResponse, bool) {
	reg, ok := s.readTemplate(c, ns, name, version, func(err error) { s.writeStoreError(c, "load template", err) })
	if !ok {
		return TemplateResponse{}, false
	}
	resp, err := s.buildTemplateResponse(reg)
	if err != nil {
		s.writeError(c, http.StatusNotFound, CodeHandlerMetadataNotFound,
			fmt.Sprintf("Handler metadata not available for %s: %v", templateKey(ns, name, version), err))
		return TemplateResponse{}, false
	}
	return resp, true
}

// readTemplate reads a template's catalog entry. A missing template is
// answered 404 template_not_found here, the same on every template route;
// any other failure is handed to failed, which answers it in the route's
// own terms. It reports whether the entry was read.
func (s *Server) readTemplate(c *gin.Context, ns, name, version string, failed func(error)) (ports.RegisteredTemplate, bool) {
	reg, err := s.deps.Templates.GetTemplate(c.Request.Context(), ns, name, version)
	switch {
	case err == nil:
		return reg, true
	case isNotFound(err):
		s.writeError(c, http.StatusNotFound, CodeTemplateNotFound, "Task template not found: "+templateKey(ns, name, version))
	default:
		failed(err)
	}
	return ports.RegisteredTemplate{}, false
}

// buildTemplateResponse resolves the stored (unresolved) configuration for
// the worker's environment (D-q) and derives the handler metadata.
func (s *Server) buildTemplateResponse(reg ports.RegisteredTemplate) (TemplateResponse, error) {
	if len(reg.Configuration) == 0 || string(reg.Configuration) == "null" {
		return TemplateResponse{}, fmt.Errorf("the named task has no configuration")
	}
	tmpl, err := domain.ParseTemplateJSON(reg.Configuration)
	if err != nil {
		return TemplateResponse{}, fmt.Errorf("parse configuration: %w", err)
	}
	resolved, err := tmpl.ResolveForEnvironment(s.cfg.Environment).ConfigurationJSON()
	if err != nil {
		return TemplateResponse{}, fmt.Errorf("encode resolved template: %w", err)
	}
	var extra struct {
		HandlerClass *string `json:"handler_class"`
	}
	_ = json.Unmarshal(reg.Configuration, &extra) // an object: ParseTemplateJSON accepted it
	class := DefaultHandlerClass
	if extra.HandlerClass != nil && *extra.HandlerClass != "" {
		class = *extra.HandlerClass
	}
	var depSystem *string
	if p := tmpl.SystemDependencies.Primary; p != "" {
		depSystem = &p
	}
	return TemplateResponse{
		Template: ResolvedTemplate{Template: resolved, Environment: s.cfg.Environment, ResolvedAt: s.now()},
		HandlerMetadata: HandlerMetadata{
			Namespace: reg.Namespace, Name: reg.Name, Version: reg.Version, HandlerClass: class,
			ConfigSchema: reg.Configuration, DefaultDependentSystem: depSystem, RegisteredAt: reg.UpdatedAt.UTC(),
		},
	}, nil
}

func (s *Server) handleValidateTemplate(c *gin.Context) {
	ns, name, version, ok := s.templateParams(c)
	if !ok {
		return
	}
	reg, ok := s.readTemplate(c, ns, name, version, func(err error) { s.writeStoreError(c, "load template", err) })
	if !ok {
		return
	}
	c.JSON(http.StatusOK, validateConfiguration(reg.Configuration))
}

// validateConfiguration applies the §6.3 rules to a stored configuration.
func validateConfiguration(raw json.RawMessage) TemplateValidationResponse {
	resp := TemplateValidationResponse{Errors: []string{}, RequiredCapabilities: []string{}, StepHandlers: []string{}}
	tmpl, err := domain.ParseTemplateJSON(raw)
	if err != nil {
		resp.Errors = append(resp.Errors, fmt.Sprintf("configuration is not a task template: %v", err))
		return resp
	}
	if verr := tmpl.Validate(); verr != nil {
		var tv *domain.TemplateValidationError
		if errors.As(verr, &tv) {
			resp.Errors = append(resp.Errors, tv.Messages()...)
		} else {
			resp.Errors = append(resp.Errors, verr.Error())
		}
	}
	caps := map[string]bool{}
	seen := map[string]bool{}
	for _, st := range tmpl.Steps {
		cb := st.Handler.Callable
		if cb == "" || seen[cb] {
			continue
		}
		seen[cb] = true
		resp.StepHandlers = append(resp.StepHandlers, cb)
		for _, m := range capabilityMarkers {
			if strings.Contains(cb, m.marker) {
				caps[m.capability] = true
			}
		}
	}
	for cp := range caps {
		resp.RequiredCapabilities = append(resp.RequiredCapabilities, cp)
	}
	sort.Strings(resp.RequiredCapabilities)
	resp.Valid = len(resp.Errors) == 0
	return resp
}

// handleRefreshTemplate reloads one template from the database into the
// cache. An unknown template is 404; any other failure is 500 refresh_failed.
func (s *Server) handleRefreshTemplate(c *gin.Context) {
	ns, name, version, ok := s.templateParams(c)
	if !ok {
		return
	}
	failed := func(err error) {
		s.writeError(c, http.StatusInternalServerError, CodeRefreshFailed, fmt.Sprintf("Refreshing %s failed: %v", templateKey(ns, name, version), err))
	}
	reg, ok := s.readTemplate(c, ns, name, version, failed)
	if !ok {
		return
	}
	resp, err := s.buildTemplateResponse(reg)
	if err != nil {
		failed(err)
		return
	}
	s.cache.Put(templateKey(ns, name, version), resp)
	s.handlers.invalidate()
	c.JSON(http.StatusOK, CacheOperationResponse{Operation: "refresh", Success: true, CacheStats: s.cache.Stats(s.namespaces())})
}

func (s *Server) handleClearCache(c *gin.Context) {
	s.cache.Clear()
	s.handlers.invalidate()
	c.JSON(http.StatusOK, CacheOperationResponse{Operation: "clear", Success: true, CacheStats: s.cache.Stats(s.namespaces())})
}

func (s *Server) handleCacheStats(c *gin.Context) {
	c.JSON(http.StatusOK, s.cache.Stats(s.namespaces()))
}

func (s *Server) handleMaintainCache(c *gin.Context) {
	s.cache.Maintain()
	c.JSON(http.StatusOK, CacheOperationResponse{Operation: "maintain", Success: true, CacheStats: s.cache.Stats(s.namespaces())})
}
