// Package middleware holds the gin middleware shared by the orchestration and
// worker HTTP APIs: request id, access log, request timeout, body limit,
// CORS, panic recovery and bearer authentication. Each API has its own error
// body, so middleware that rejects a request takes an ErrorWriter.
package middleware

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.uber.org/zap"
)

// RequestIDHeader is echoed or generated on every response (contract §7, §8).
const RequestIDHeader = "x-request-id"

// requestIDKey is the gin context key holding the request id.
const requestIDKey = "request_id"

// MaxRequestIDLength bounds an accepted incoming request id; longer or
// non-printable values are replaced so logs and headers stay sane.
const MaxRequestIDLength = 128

// ErrorWriter writes an API-specific error body with status, a code from the
// API's error table and a message, and aborts the chain.
type ErrorWriter func(c *gin.Context, status int, code, message string)

// RequestID echoes a valid incoming x-request-id, otherwise sets a new UUID
// v4, on the response and in the context (see GetRequestID).
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLength {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

// GetRequestID returns the request id set by RequestID ("" if none).
func GetRequestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// AccessLog logs one line per request with method, route, status, latency
// and request id. Probes and scrapes (see IsProbeRoute) log at DEBUG: they
// arrive every few seconds and would drown the lines that matter; any other
// request logs at INFO.
func AccessLog(log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = c.Request.URL.Path
		}
		logf := log.Info
		if IsProbeRoute(route) {
			logf = log.Debug
		}
		logf("http request",
			zap.String("method", c.Request.Method),
			zap.String("route", route),
			zap.Int("status", c.Writer.Status()),
			zap.Duration("latency", time.Since(start)),
			zap.String("request_id", GetRequestID(c)))
	}
}

// IsProbeRoute reports whether route is a health probe or a metrics
// scrape: /health…, /ready, /live, /metrics….
func IsProbeRoute(route string) bool {
	return route == "/health" || strings.HasPrefix(route, "/health/") || route == "/ready" || route == "/live" ||
		route == "/metrics" || strings.HasPrefix(route, "/metrics/")
}

// RequestObserver records one finished request: method, route template
// ("" when no route matched), status code and duration
// (telemetry.HTTPMetrics.Observe).
type RequestObserver func(method, route string, status int, d time.Duration)

// Metrics feeds observe with every request once the chain has run, so the
// duration includes the other middleware and the status is final.
func Metrics(observe RequestObserver) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		observe(c.Request.Method, c.FullPath(), c.Writer.Status(), time.Since(start))
	}
}

// Timeout gives each request a context deadline of d. Handlers pass the
// request context to every database call, so a slow call fails with
// context.DeadlineExceeded; the API maps that (see IsTimeout) to 408. If the
// handler wrote nothing by the deadline, Timeout writes the 408 itself. The
// timeout is cooperative: a handler is never abandoned mid-write, which would
// race on the ResponseWriter.
func Timeout(d time.Duration, write ErrorWriter, code string) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
		if !c.Writer.Written() && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			write(c, http.StatusRequestTimeout, code, "Request timed out")
		}
	}
}

// IsTimeout reports whether err comes from the request deadline.
func IsTimeout(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// BodyLimit rejects bodies over limit bytes with 413: at once when
// Content-Length says so, otherwise when the handler reads past the limit
// (the read fails with *http.MaxBytesError, see IsBodyTooLarge).
func BodyLimit(limit int64, write ErrorWriter, code string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			write(c, http.StatusRequestEntityTooLarge, code, "Request body exceeds the limit")
			return
		}
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
		c.Next()
	}
}

// IsBodyTooLarge reports whether err comes from reading past BodyLimit.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// CORS answers cross-origin requests from the allowed origins only (config
// *.cors_allowed_origins; "*" allows any). The default is none: a browser
// page elsewhere cannot call the API with a user's network position or
// credentials (issue 13). A preflight is answered 204 either way; without
// Access-Control-Allow-Origin the browser refuses the real request.
func CORS(allowed []string) gin.HandlerFunc {
	any := slices.Contains(allowed, "*")
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		if origin != "" && (any || slices.Contains(allowed, origin)) {
			h := c.Writer.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
			reqHeaders := c.GetHeader("Access-Control-Request-Headers")
			if reqHeaders == "" {
				reqHeaders = "authorization, content-type, x-request-id"
			}
			h.Set("Access-Control-Allow-Headers", reqHeaders)
			h.Set("Access-Control-Expose-Headers", RequestIDHeader)
		}
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}

// RequireJSON answers 415 for a request that carries a body whose
// Content-Type is not JSON (application/json or a +json type). Text and
// form bodies are what a browser can send cross-site without a preflight;
// refusing them closes that door (issue 13). Bodiless requests pass.
func RequireJSON(write ErrorWriter, code string) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
		if !hasBody {
			c.Next()
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			write(c, http.StatusUnsupportedMediaType, code, "Content-Type must be application/json")
			return
		}
		c.Next()
	}
}

// Recovery turns a handler panic into a 500 error body and logs it, so one
// bad request never takes the server down.
func Recovery(log *zap.Logger, write ErrorWriter, code string) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic in http handler", zap.Any("panic", p), zap.String("path", c.Request.URL.Path),
					zap.String("request_id", GetRequestID(c)), zap.Stack("stack"))
				if !c.Writer.Written() {
					write(c, http.StatusInternalServerError, code, "Internal server error")
				} else {
					c.Abort()
				}
			}
		}()
		c.Next()
	}
}

// bearerToken extracts the token of an Authorization header, with the
// contract's failure messages (§7.1).
func bearerToken(header string) (string, string) {
	if header == "" {
		return "", "Missing authorization header"
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", "Authorization header must use Bearer scheme"
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", "Empty Bearer token"
	}
	return token, ""
}

// DefaultMaxInFlight is the default cap on requests served at once by one
// API. Each request holds at most one pool connection (8 by default) for a
// short time, so 256 waiting requests are already far more than the
// database can serve within a request timeout; beyond that, answering 503
// at once is kinder than queueing.
const DefaultMaxInFlight = 256

// RetryAfterSeconds is the Retry-After sent with a shed request.
const RetryAfterSeconds = "1"

// InFlightLimit sheds load: while max requests are being served, further
// requests get 503 with Retry-After instead of queueing on the database
// pool. Requests for which exempt(path) is true (health probes) are never
// shed, so an overloaded service is not also declared dead. max <= 0
// disables the cap.
func InFlightLimit(max int, exempt func(path string) bool, write ErrorWriter, code string) gin.HandlerFunc {
	if max <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	slots := make(chan struct{}, max)
	return func(c *gin.Context) {
		if exempt != nil && exempt(c.Request.URL.Path) {
			c.Next()
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			c.Next()
		default:
			c.Header("Retry-After", RetryAfterSeconds)
			write(c, http.StatusServiceUnavailable, code, "Server is at its in-flight request limit; retry later")
		}
	}
}

// IsProbePath reports whether path is a health probe (/health, /health/…,
// /ready, /live), which load shedding and auth leave alone.
func IsProbePath(path string) bool {
	return path == "/health" || strings.HasPrefix(path, "/health/") || path == "/ready" || path == "/live"
}
