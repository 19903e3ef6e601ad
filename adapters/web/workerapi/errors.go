package workerapi

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/internal/dberr"
	"github.com/tasker-systems/tasker-go/ports"
)

// Error codes of ErrorResponse.error (contract §8.1 plus generic ones).
const (
	CodeServiceUnavailable      = "service_unavailable"
	CodeNamespaceNotSupported   = "namespace_not_supported"
	CodeTemplateNotFound        = "template_not_found"
	CodeHandlerMetadataNotFound = "handler_metadata_not_found"
	CodeRefreshFailed           = "refresh_failed"
	CodeBadRequest              = "bad_request"
	CodeUnauthorized            = "unauthorized"
	CodeForbidden               = "forbidden"
	CodeUnsupportedMediaType    = "unsupported_media_type"
	CodeNotFound                = "not_found"
	CodeRequestTimeout          = "request_timeout"
	CodeInternalError           = "internal_error"
	CodeDatabaseError           = "database_error"
	CodeMethodNotAllowed        = "method_not_allowed"
)

// writeError writes ErrorResponse and aborts the chain. It is the
// middleware.ErrorWriter of the worker API, so the shared request-id,
// timeout, recovery and auth middleware produce the worker's error shape.
func (s *Server) writeError(c *gin.Context, status int, code, message string) {
	s.writeErrorChecks(c, status, code, message, nil)
}

func (s *Server) writeErrorChecks(c *gin.Context, status int, code, message string, checks map[string]HealthCheck) {
	c.AbortWithStatusJSON(status, ErrorResponse{
		Error: code, Message: message, Timestamp: s.now(), RequestID: middleware.GetRequestID(c), Checks: checks,
	})
}

// RetryAfterSeconds is the Retry-After of a 503 (database unreachable or
// the server at its in-flight request cap).
const RetryAfterSeconds = "5"

// writeStoreError maps a catalog/database error (see pgerr): a timeout is
// 408, an unreachable database 503 with Retry-After, input the database
// refused 400, anything else 500 database_error. Not-found is handled by
// callers because its code depends on the route. Only the 500 is logged
// at ERROR; outages log WARN (sampled by the logger), without stack traces.
func (s *Server) writeStoreError(c *gin.Context, what string, err error) {
	rid := zap.String("request_id", middleware.GetRequestID(c))
	switch dberr.Classify(err) {
	case dberr.Timeout:
		s.writeError(c, http.StatusRequestTimeout, CodeRequestTimeout, "Request timed out")
	case dberr.Unavailable:
		s.log.Warn("worker web: "+what+" failed: database unavailable", zap.Error(err), rid)
		c.Header("Retry-After", RetryAfterSeconds)
		s.writeError(c, http.StatusServiceUnavailable, CodeServiceUnavailable, "Database unavailable")
	case dberr.InvalidInput:
		s.writeError(c, http.StatusBadRequest, CodeBadRequest, "Input rejected by the database: a value cannot be stored")
	case dberr.Other:
		s.log.Error("worker web: "+what+" failed", zap.Error(err), rid)
		s.writeError(c, http.StatusInternalServerError, CodeDatabaseError, what+" failed")
	}
}

func isNotFound(err error) bool { return errors.Is(err, ports.ErrNotFound) }

// staticTokens verifies bearer tokens against a fixed list in constant
// time, so response timing does not reveal how much of a token matched.
type staticTokens [][]byte

func newStaticTokens(tokens []string) staticTokens {
	out := make(staticTokens, 0, len(tokens))
	for _, t := range tokens {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, []byte(t))
		}
	}
	return out
}

var errInvalidToken = errors.New("invalid bearer token")

// Verify implements middleware.TokenVerifier. Every configured token is
// compared, match or not, so timing does not depend on which one matched.
func (ts staticTokens) Verify(token string) (*middleware.Claims, error) {
	got := []byte(token)
	ok := 0
	for _, want := range ts {
		ok |= subtle.ConstantTimeCompare(got, want)
	}
	if ok != 1 {
		return nil, errInvalidToken
	}
	return &middleware.Claims{Permissions: []string{middleware.PermissionAll}}, nil
}
