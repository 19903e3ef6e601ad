package orchestrationapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/dberr"
	"github.com/tasker-systems/tasker-go/ports"
)

// Error codes of contract §7.1, plus PAYLOAD_TOO_LARGE for 413, which the
// contract's table does not name.
const (
	CodeBadRequest         = "BAD_REQUEST"
	CodeInvalidUUID        = "INVALID_UUID"
	CodeJSONError          = "JSON_ERROR"
	CodeAuthenticationFail = "AUTHENTICATION_FAILED"
	CodeNotFound           = "NOT_FOUND"
	CodeForbidden          = "FORBIDDEN"
	// CodeUnsupportedMediaType answers 415 for a non-JSON body (issue 13).
	CodeUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	CodeConflict             = "CONFLICT"
	CodeTimeout              = "TIMEOUT"
	CodePayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	CodeDatabaseError        = "DATABASE_ERROR"
	CodeInternalError        = "INTERNAL_ERROR"
	CodeServiceUnavailable   = "SERVICE_UNAVAILABLE"
	messageInternal          = "Internal server error"
	messageDatabase          = "Database error"
	messageUnavailable       = "Service unavailable"
)

// errorBody is the §7.1 error body {"error":{"code","message"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError is the middleware.ErrorWriter of this API.
func writeError(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, errorBody{Error: errorDetail{Code: code, Message: message}})
}

var _ middleware.ErrorWriter = writeError

// jsonError is a request body that is not valid JSON, lacks a required
// field or has a wrong type (D-o).
type jsonError struct{ msg string }

func (e *jsonError) Error() string { return e.msg }

// invalidUUIDError is a path parameter that is not a UUID.
type invalidUUIDError struct{ param, value string }

func (e *invalidUUIDError) Error() string {
	return "Invalid UUID for " + e.param + ": " + e.value
}

// badRequestError is a query parameter or body value out of range.
type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

// classify maps an error to (status, code, message): the ONE place where
// typed errors become HTTP responses. Unknown errors are 500 without
// internals in the message; they are logged by respondError.
func classify(err error) (int, string, string) {
	var (
		je  *jsonError
		iu  *invalidUUIDError
		br  *badRequestError
		ve  *domain.ValidationError
		tve *domain.TemplateValidationError
		ce  *ports.ConflictError
		ite *domain.InvalidTransitionError
		nfe *ports.NotFoundError
		ice *ports.IdempotencyConflictError
	)
	switch {
	case middleware.IsBodyTooLarge(err):
		return http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "Request body exceeds the limit"
	case errors.As(err, &je):
		return http.StatusBadRequest, CodeJSONError, je.msg
	case errors.As(err, &iu):
		return http.StatusBadRequest, CodeInvalidUUID, iu.Error()
	case errors.As(err, &br):
		return http.StatusBadRequest, CodeBadRequest, br.msg
	case errors.As(err, &tve):
		return http.StatusBadRequest, CodeBadRequest, tve.Error()
	case errors.As(err, &ve):
		return http.StatusBadRequest, CodeBadRequest, ve.Reason
	case errors.As(err, &ce):
		return http.StatusBadRequest, CodeBadRequest, ce.Message
	case errors.As(err, &ite):
		return http.StatusBadRequest, CodeBadRequest, ite.Error()
	case errors.As(err, &ice):
		return http.StatusConflict, CodeConflict, ice.Error()
	case errors.As(err, &nfe):
		return http.StatusNotFound, CodeNotFound, nfe.What
	case errors.Is(err, ports.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, "Not found"
	case errors.Is(err, ports.ErrDLQUnavailable):
		return http.StatusServiceUnavailable, CodeServiceUnavailable, ports.ErrDLQUnavailable.Error()
	case errors.Is(err, ports.ErrUnavailable):
		return http.StatusServiceUnavailable, CodeServiceUnavailable, messageUnavailable
	}
	switch dberr.Classify(err) {
	case dberr.Timeout:
		return http.StatusRequestTimeout, CodeTimeout, "Request timed out"
	case dberr.Unavailable:
		return http.StatusServiceUnavailable, CodeServiceUnavailable, messageUnavailable
	case dberr.InvalidInput:
		return http.StatusBadRequest, CodeBadRequest, "Input rejected by the database: a value cannot be stored"
	case dberr.Other:
	}
	return http.StatusInternalServerError, CodeInternalError, messageInternal
}

// RetryAfterSeconds is the Retry-After of a 503: long enough for a pool to
// reconnect, short enough that a client polling a recovering service does
// not wait long.
const RetryAfterSeconds = "5"

// respondError writes err per classify and logs server-side failures. An
// unexpected failure (500) logs ERROR; an outage (503) logs WARN, because
// it is a state of the world and not a bug; a timeout (408) is the
// client's deadline and is only in the access log. Neither carries a
// stack trace (only panics do, see middleware.Recovery) and the logger
// samples repeats, so a database outage under retrying clients does not
// flood the log.
func (s *Server) respondError(c *gin.Context, err error) {
	status, code, msg := classify(err)
	fields := []zap.Field{zap.String("path", c.Request.URL.Path), zap.Int("status", status),
		zap.String("request_id", middleware.GetRequestID(c)), zap.Error(err)}
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", fields...)
	case status == http.StatusServiceUnavailable:
		s.log.Warn("request failed", fields...)
	}
	if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", RetryAfterSeconds)
	}
	writeError(c, status, code, msg)
}
