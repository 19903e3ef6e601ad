// Package orchestrationapi is the gin HTTP server of the orchestration API
// (contract §7): task creation and reading, cancellation, workflow steps and
// manual resolution, templates, health and Prometheus metrics, and its
// OpenAPI document with a page rendering it (/api-docs).
package orchestrationapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/web/apidocs"
	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/adapters/web/webserver"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults (contract §7).
const (
	DefaultBindAddress    = "0.0.0.0:8080"
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxBodyBytes leaves room for the largest valid context (1 MiB)
	// plus the other TaskRequest fields.
	DefaultMaxBodyBytes int64 = 2 << 20
)

// DefaultProtectedRoutes: with auth enabled, every route needs a token
// except the probes and /metrics (issue 13: before, only DELETE and PATCH
// did, so task contexts and step results were readable without one). A
// function, not a variable, so no caller can change the shared default.
func DefaultProtectedRoutes() []string { return []string{"*"} }

// Permissions of the JWT "permissions" claim (static tokens hold "*").
const (
	PermTasksCreate    = "tasks:create"
	PermTasksList      = "tasks:list"
	PermTasksRead      = "tasks:read"
	PermTasksCancel    = "tasks:cancel"
	PermStepsRead      = "steps:read"
	PermStepsResolve   = "steps:resolve"
	PermTemplatesRead  = "templates:read"
	PermDLQRead        = "dlq:read"
	PermDLQUpdate      = "dlq:update"
	PermHealthDetailed = "system:health_read"
)

// RoutePermissions is the permission each protected route needs. A route
// missing here needs "*" (see middleware.Authorize), so a route added
// without an entry is closed rather than open; "" admits any valid token.
var RoutePermissions = map[string]string{
	"POST /v1/tasks":                                         PermTasksCreate,
	"GET /v1/tasks":                                          PermTasksList,
	"GET /v1/tasks/{task_uuid}":                              PermTasksRead,
	"DELETE /v1/tasks/{task_uuid}":                           PermTasksCancel,
	"GET /v1/tasks/{task_uuid}/workflow_steps":               PermStepsRead,
	"GET /v1/tasks/{task_uuid}/workflow_steps/{step_uuid}":   PermStepsRead,
	"PATCH /v1/tasks/{task_uuid}/workflow_steps/{step_uuid}": PermStepsResolve,
	"GET /v1/templates":                                      PermTemplatesRead,
	"GET /v1/templates/{namespace}/{name}/{version}":         PermTemplatesRead,
	"GET /v1/dlq":                                            PermDLQRead,
	"GET /v1/dlq/{entry_uuid}":                               PermDLQRead,
	"POST /v1/dlq/{entry_uuid}/requeue":                      PermDLQUpdate,
	"PATCH /v1/dlq/{entry_uuid}":                             PermDLQUpdate,
	"GET /health/detailed":                                   PermHealthDetailed,
	"GET " + apidocs.PagePath:                                "",
	"GET " + apidocs.DocumentPath:                            "",
	"GET " + apidocs.AssetsPath + "/*file":                   "",
}

// Config tunes the server.
type Config struct {
	// RequestTimeout is the per-request deadline; past it the API answers 408 TIMEOUT.
	RequestTimeout time.Duration
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64
	// Verifier checks bearer tokens; nil disables auth (the default).
	Verifier middleware.TokenVerifier
	// ProtectedRoutes lists "<METHOD> <path template>" keys that require a
	// token when Verifier is set; nil means DefaultProtectedRoutes.
	ProtectedRoutes []string
	// Version and Environment are reported by /health/detailed.
	Version     string
	Environment string
	// DBPoolSize is reported by /health/detailed.
	DBPoolSize int
	// MaxInFlight caps requests served at once; beyond it requests get 503
	// with Retry-After (health probes excepted). 0 selects
	// middleware.DefaultMaxInFlight, negative disables the cap.
	MaxInFlight int
	// HTTP bounds connections (timeouts, header size); see HTTPServer.
	HTTP webserver.Config
	// CORSAllowedOrigins are the origins answered with CORS headers ("*"
	// for any). Empty (the default): no cross-origin browser access.
	CORSAllowedOrigins []string
	// Tracer, when set, traces every API request (a server span continuing
	// an incoming traceparent); nil when tracing is off.
	Tracer trace.Tracer
}

// TaskService is what the API needs from the orchestration core.
type TaskService interface {
	// CreateTaskIdempotent creates a task; key is the request's
	// Idempotency-Key, empty when it has none.
	CreateTaskIdempotent(ctx context.Context, req domain.TaskRequest, key string) (domain.TaskCreationResponse, error)
	CancelTask(ctx context.Context, taskUUID uuid.UUID) error
	ResolveStep(ctx context.Context, taskUUID, stepUUID uuid.UUID, r ports.ManualResolution) error
	// Running reports whether the orchestration loops run and no shutdown began.
	Running() bool
}

// TemplateReader lists and finds registered templates.
type TemplateReader interface {
	GetTemplate(ctx context.Context, namespace, name, version string) (ports.RegisteredTemplate, error)
	ListTemplates(ctx context.Context, namespace string) ([]ports.RegisteredTemplate, error)
}

// LeaderReporter reports whether this orchestration instance leads, i.e.
// consumes the orchestration queues, or stands by while another one does.
type LeaderReporter interface {
	Leading() bool
}

// Pinger checks the database for readiness.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps are the server's collaborators. Metrics and Log may be nil.
type Deps struct {
	Tasks     TaskService
	Query     ports.TaskQuery
	Templates TemplateReader
	DB        Pinger
	// Metrics serves /metrics.
	Metrics http.Handler
	// ObserveRequest, when set, records every request's duration by route
	// (telemetry.HTTPMetrics.Observe).
	ObserveRequest middleware.RequestObserver
	// Breaker, when set, reports the state of the circuit breaker guarding
	// the API's database reads (/health/detailed circuit_breaker_state).
	Breaker BreakerReporter
	// DLQ serves /v1/dlq; nil answers 503 (no DLQ table).
	DLQ DLQService
	// Leader, when set, reports whether this instance consumes the
	// orchestration queues or stands by (/health/detailed check
	// "leadership").
	Leader LeaderReporter
	// UI, when set, is mounted at UIPath (the dashboard). With auth on, all
	// its routes need a token like the API.
	UI  RouteRegistrar
	Log *zap.Logger
}

// UIPath is where the dashboard is mounted.
const UIPath = "/ui"

// RouteRegistrar adds its routes to a router group (the dashboard).
type RouteRegistrar interface {
	Register(g *gin.RouterGroup)
}

// isUIRoute reports whether a "<METHOD> <path template>" key is a dashboard route.
func isUIRoute(key string) bool {
	_, path, _ := strings.Cut(key, " ")
	return path == UIPath || strings.HasPrefix(path, UIPath+"/")
}

// Server is the orchestration API.
type Server struct {
	cfg    Config
	deps   Deps
	log    *zap.Logger
	engine *gin.Engine
}

// New builds the gin engine with middleware and routes.
func New(cfg Config, d Deps) *Server {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ProtectedRoutes == nil {
		cfg.ProtectedRoutes = DefaultProtectedRoutes()
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = middleware.DefaultMaxInFlight
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, deps: d, log: d.Log, engine: gin.New()}
	e := s.engine
	if d.ObserveRequest != nil {
		e.Use(middleware.Metrics(d.ObserveRequest))
	}
	if cfg.Tracer != nil {
		e.Use(middleware.Tracing(cfg.Tracer))
	}
	e.Use(middleware.RequestID(), middleware.Recovery(s.log, writeError, CodeInternalError),
		middleware.AccessLog(s.log),
		middleware.InFlightLimit(cfg.MaxInFlight, middleware.IsProbePath, writeError, CodeServiceUnavailable),
		middleware.CORS(cfg.CORSAllowedOrigins),
		middleware.Timeout(cfg.RequestTimeout, writeError, CodeTimeout))
	if cfg.Verifier != nil {
		protected := middleware.Protected(cfg.ProtectedRoutes)
		e.Use(middleware.Auth(cfg.Verifier, func(k string) bool { return protected(k) || isUIRoute(k) }, writeError, CodeAuthenticationFail),
			middleware.Authorize(RoutePermissions, writeError, CodeForbidden))
	}
	e.Use(middleware.RequireJSON(writeError, CodeUnsupportedMediaType),
		middleware.BodyLimit(cfg.MaxBodyBytes, writeError, CodePayloadTooLarge))
	e.NoRoute(func(c *gin.Context) { writeError(c, http.StatusNotFound, CodeNotFound, "Route not found") })

	e.GET("/health", s.health)
	for _, p := range []string{"/health/ready", "/ready"} {
		e.GET(p, s.ready)
	}
	for _, p := range []string{"/health/live", "/live"} {
		e.GET(p, s.live)
	}
	e.GET("/health/detailed", s.detailed)
	if d.Metrics != nil {
		e.GET("/metrics", gin.WrapH(d.Metrics))
	}
	if d.UI != nil {
		d.UI.Register(e.Group(UIPath))
	}
	v1 := e.Group("/v1")
	v1.POST("/tasks", s.createTask)
	v1.GET("/tasks", s.listTasks)
	v1.GET("/tasks/:task_uuid", s.getTask)
	v1.DELETE("/tasks/:task_uuid", s.cancelTask)
	v1.GET("/tasks/:task_uuid/workflow_steps", s.listSteps)
	v1.GET("/tasks/:task_uuid/workflow_steps/:step_uuid", s.getStep)
	v1.PATCH("/tasks/:task_uuid/workflow_steps/:step_uuid", s.resolveStep)
	v1.GET("/templates", s.listTemplates)
	v1.GET("/templates/:namespace/:name/:version", s.getTemplate)
	v1.GET("/dlq", s.listDLQ)
	v1.GET("/dlq/:entry_uuid", s.getDLQ)
	v1.POST("/dlq/:entry_uuid/requeue", s.requeueDLQ)
	v1.PATCH("/dlq/:entry_uuid", s.resolveDLQ)

	e.GET(apidocs.DocumentPath, serveOpenAPI)
	apidocs.Register(e, "Tasker orchestration API")
	return s
}

// Handler is the server as an http.Handler (for http.Server and httptest).
func (s *Server) Handler() http.Handler { return s.engine }

// HTTPServer is an http.Server for Handler with the configured connection
// limits (read, write and idle timeouts, header size).
func (s *Server) HTTPServer() *http.Server { return webserver.New(s.engine, s.cfg.HTTP) }

// pathUUID parses a UUID path parameter.
func pathUUID(c *gin.Context, param string) (uuid.UUID, error) {
	v := c.Param(param)
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, &invalidUUIDError{param: param, value: v}
	}
	return id, nil
}
