package httpclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
)

// errCallerGone marks failures caused by the caller's context (cancelled or
// past its deadline): never retried and never counted by the breaker.
var errCallerGone = errors.New("caller context done")

type callerGoneError struct{ err error }

func (e *callerGoneError) Error() string   { return e.err.Error() }
func (e *callerGoneError) Unwrap() []error { return []error{e.err, errCallerGone} }

// delayedError carries a server-requested delay to backoff.Retry (through
// *backoff.RetryAfterError) without losing the APIError that asked for it.
type delayedError struct {
	cause error
	after *backoff.RetryAfterError
}

func (e *delayedError) Error() string   { return e.cause.Error() }
func (e *delayedError) Unwrap() []error { return []error{e.cause, e.after} }

// retryable is the one retry rule: network errors (including the per-attempt
// timeout), 5xx and 429. Any other 4xx is the caller's problem and resending
// the same request cannot fix it.
func retryable(err error) bool {
	if errors.Is(err, errCallerGone) {
		return false
	}
	var te *TransportError
	if errors.As(err, &te) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	return false
}

// send runs the attempts of one logical request.
func (c *Client) send(ctx context.Context, r request) (*response, error) {
	eb := &backoff.ExponentialBackOff{
		InitialInterval:     c.cfg.Backoff.Initial,
		RandomizationFactor: c.cfg.Backoff.Jitter,
		Multiplier:          c.cfg.Backoff.Multiplier,
		MaxInterval:         c.cfg.Backoff.Max,
	}
	var lastErr error
	op := func() (*response, error) {
		resp, err := c.guarded(ctx, r)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !retryable(err) {
			return nil, backoff.Permanent(err)
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter != "" {
			if d, ok := parseRetryAfter(ae.RetryAfter, time.Now()); ok {
				if d > c.cfg.MaxRetryAfter || beyondDeadline(ctx, d) {
					return nil, backoff.Permanent(err)
				}
				return nil, &delayedError{cause: err, after: &backoff.RetryAfterError{Duration: d}}
			}
		}
		return nil, err
	}
	resp, err := backoff.Retry(ctx, op,
		backoff.WithBackOff(eb),
		backoff.WithMaxTries(uint(c.cfg.MaxRetries)+1),
		backoff.WithMaxElapsedTime(0), // bounded by MaxRetries and ctx instead
	)
	if err == nil {
		return resp, nil
	}
	var de *delayedError
	if errors.As(err, &de) {
		err = de.cause
	}
	if cause := context.Cause(ctx); cause != nil && err == cause {
		// backoff.Retry returns the bare context cause when it stops waiting;
		// keep the failure that made it wait.
		return nil, fmt.Errorf("%s %s: gave up while waiting to retry: %w (last error: %v)", r.method, r.path, err, lastErr)
	}
	return nil, err
}

// guarded runs one attempt inside the circuit breaker (when enabled).
func (c *Client) guarded(ctx context.Context, r request) (*response, error) {
	if c.breaker == nil {
		return c.attempt(ctx, r)
	}
	resp, err := c.breaker.Execute(func() (*response, error) { return c.attempt(ctx, r) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%s %s: %w (%s)", r.method, r.path, ErrCircuitOpen, c.BreakerState())
	}
	return resp, err
}

func beyondDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) < d
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). A date in the past means "now".
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}
