package workerapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"
	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
)

// Permissions of the worker API's JWT "permissions" claim.
const (
	PermWorkerStatus          = "worker:status_read"
	PermWorkerTemplatesRead   = "worker:templates_read"
	PermWorkerTemplatesManage = "worker:templates_manage"
)

// RoutePermissions is the permission each protected route needs; a route
// missing here needs "*" (middleware.Authorize), "" admits any valid token.
var RoutePermissions = map[string]string{
	"GET /metrics/worker":                            PermWorkerStatus,
	"GET /status":                                    PermWorkerStatus,
	"GET /status/detailed":                           PermWorkerStatus,
	"GET /status/namespaces":                         PermWorkerStatus,
	"GET /handlers":                                  PermWorkerStatus,
	"GET /templates":                                 PermWorkerTemplatesRead,
	"GET /templates/cache/stats":                     PermWorkerTemplatesRead,
	"GET /templates/{ns}/{name}/{version}":           PermWorkerTemplatesRead,
	"POST /templates/{ns}/{name}/{version}/validate": PermWorkerTemplatesRead,
	"POST /templates/{ns}/{name}/{version}/refresh":  PermWorkerTemplatesManage,
	"DELETE /templates/cache":                        PermWorkerTemplatesManage,
	"POST /templates/cache/maintain":                 PermWorkerTemplatesManage,
	"GET /api-docs/openapi.json":                     "",
	"GET /api-docs":                                  "",
	"GET /api-docs/assets/*file":                     "",
}

// routes builds the engine: middleware in the order request id (so every
// later log line and error carries it), recovery, access log, CORS,
// timeout, auth; then the contract §8.1 routes.
func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	if s.deps.ObserveRequest != nil {
		e.Use(middleware.Metrics(s.deps.ObserveRequest))
	}
	e.Use(middleware.RequestID())
	e.Use(middleware.Recovery(s.log, s.writeError, CodeInternalError))
	e.Use(middleware.AccessLog(s.log))
	e.Use(middleware.InFlightLimit(s.cfg.MaxInFlight, middleware.IsProbePath, s.writeError, CodeServiceUnavailable))
	if s.cfg.CORSEnabled {
		e.Use(middleware.CORS(s.cfg.CORSAllowedOrigins))
	}
	e.Use(middleware.Timeout(s.cfg.RequestTimeout, s.writeError, CodeRequestTimeout))
	if s.cfg.AuthEnabled {
		var v middleware.AnyVerifier
		if len(s.cfg.Tokens) > 0 {
			v = append(v, newStaticTokens(s.cfg.Tokens))
		}
		if s.cfg.Verifier != nil {
			v = append(v, s.cfg.Verifier)
		}
		e.Use(middleware.Auth(v, middleware.Protected([]string{"*"}), s.writeError, CodeUnauthorized),
			middleware.Authorize(RoutePermissions, s.writeError, CodeForbidden))
	}
	e.Use(middleware.RequireJSON(s.writeError, CodeUnsupportedMediaType))
	e.NoRoute(func(c *gin.Context) {
		s.writeError(c, http.StatusNotFound, CodeNotFound, "No route for "+c.Request.URL.Path)
	})
	e.NoMethod(func(c *gin.Context) {
		s.writeError(c, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "Method "+c.Request.Method+" not allowed on "+c.Request.URL.Path)
	})

	e.GET("/health", s.handleHealth)
	e.GET("/health/ready", s.handleReady)
	e.GET("/health/live", s.handleLive)
	if s.cfg.MetricsEnabled {
		e.GET("/metrics", gin.WrapH(s.deps.Metrics))
		e.GET("/metrics/worker", s.handleWorkerMetrics)
	}
	e.GET("/status", s.handleStatus)
	e.GET("/status/detailed", s.handleStatus)
	e.GET("/status/namespaces", s.handleNamespaces)
	e.GET("/handlers", s.handleHandlers)

	e.GET("/templates", s.handleListTemplates)
	e.GET("/templates/cache/stats", s.handleCacheStats)
	e.DELETE("/templates/cache", s.handleClearCache)
	e.POST("/templates/cache/maintain", s.handleMaintainCache)
	e.GET("/templates/:ns/:name/:version", s.handleGetTemplate)
	e.POST("/templates/:ns/:name/:version/validate", s.handleValidateTemplate)
	e.POST("/templates/:ns/:name/:version/refresh", s.handleRefreshTemplate)

	e.GET(apidocs.DocumentPath, s.handleOpenAPI)
	apidocs.Register(e, "Tasker worker API")
	return e
}
