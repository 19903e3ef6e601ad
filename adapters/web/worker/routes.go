package worker

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"
	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
)

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
	if s.cfg.CORSEnabled {
		e.Use(middleware.CORS())
	}
	e.Use(middleware.Timeout(s.cfg.RequestTimeout, s.writeError, CodeRequestTimeout))
	if s.cfg.AuthEnabled {
		protected := func(key string) bool { return !authExempt(key) }
		e.Use(middleware.Auth(newStaticTokens(s.cfg.Tokens), protected, s.writeError, CodeUnauthorized))
	}
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
