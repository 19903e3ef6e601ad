package httpclient

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes the orchestration puts in {"error":{"code":…}} (contract §7.1).
// They are listed so callers can compare APIError.Code without string typos.
const (
	CodeBadRequest          = "BAD_REQUEST"
	CodeInvalidUUID         = "INVALID_UUID"
	CodeJSONError           = "JSON_ERROR"
	CodeUnauthorized        = "UNAUTHORIZED"
	CodeAuthFailed          = "AUTHENTICATION_FAILED"
	CodeAuthorizationFailed = "AUTHORIZATION_FAILED"
	CodeForbidden           = "FORBIDDEN"
	CodeNotFound            = "NOT_FOUND"
	CodeTimeout             = "TIMEOUT"
	CodeDatabaseError       = "DATABASE_ERROR"
	CodeInternalError       = "INTERNAL_ERROR"
	CodeServiceUnavailable  = "SERVICE_UNAVAILABLE"
	CodeCircuitBreakerOpen  = "CIRCUIT_BREAKER_OPEN"
)

// ErrCircuitOpen is returned without any network traffic while the client's
// circuit breaker is open (or half-open with its trial requests in flight).
// It exists so that callers such as the worker can tell "the orchestration is
// known to be down, we did not even try" from a fresh failure.
var ErrCircuitOpen = errors.New("orchestration API circuit breaker is open")

// APIError is a non-2xx answer from the orchestration. Code and Message come
// from the contract's error body {"error":{"code","message"}}; when the body
// has another shape (a proxy's HTML page, say) Code is empty and Message holds
// the start of the body or the status text, so the caller still has something
// readable to print.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the server's machine-readable code, e.g. NOT_FOUND.
	Code string
	// Message is the server's human-readable explanation.
	Message string
	// Method and Path name the request that failed, for log lines.
	Method, Path string
	// RequestID is the x-request-id the server answered with, so a failure
	// can be found in the orchestration's logs.
	RequestID string
	// RetryAfter is the raw Retry-After header of a 429/503, if any.
	RetryAfter string
}

// Error is "METHOD PATH: STATUS CODE: message".
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, code, e.Message)
}

// TransportError is a request that never produced an HTTP response: refused
// connection, DNS failure, reset, or the per-request timeout. It is always
// retry-worthy and counts against the circuit breaker.
type TransportError struct {
	// Method and Path name the request.
	Method, Path string
	// Err is the underlying net/http error.
	Err error
}

// Error names the request and the cause.
func (e *TransportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.Path, e.Err)
}

// Unwrap exposes the net/http error (e.g. for errors.Is(err, context.DeadlineExceeded)).
func (e *TransportError) Unwrap() error { return e.Err }

func apiStatus(err error) (int, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status, true
	}
	return 0, false
}

// IsNotFound reports whether err is a 404: unknown task, step or template.
func IsNotFound(err error) bool {
	s, ok := apiStatus(err)
	return ok && s == http.StatusNotFound
}

// IsValidation reports whether the server rejected the request's content
// (400 BAD_REQUEST / INVALID_UUID / JSON_ERROR, or 422): resending the same
// request can never succeed.
func IsValidation(err error) bool {
	s, ok := apiStatus(err)
	return ok && (s == http.StatusBadRequest || s == http.StatusUnprocessableEntity)
}

// IsUnauthorized reports whether the credentials were missing, invalid or
// insufficient (401 or 403); both mean "fix the token", not "try again".
func IsUnauthorized(err error) bool {
	s, ok := apiStatus(err)
	return ok && (s == http.StatusUnauthorized || s == http.StatusForbidden)
}

// IsUnavailable reports whether the orchestration could not serve the
// request at all: the breaker is open, the connection failed or timed out,
// or the server answered 502/503/504 — even after the retries.
func IsUnavailable(err error) bool {
	if errors.Is(err, ErrCircuitOpen) {
		return true
	}
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	s, ok := apiStatus(err)
	return ok && (s == http.StatusBadGateway || s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout)
}
