package httpclient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slack absorbs scheduling noise on a loaded 2-core machine when checking
// that a delay was not much longer than intended.
const slack = 400 * time.Millisecond

func TestRetry503SpacingFollowsBackoff(t *testing.T) {
	t.Parallel()
	unavailable := reply{status: 503, body: errBody(CodeServiceUnavailable, "database unavailable")}
	f := newFakeServer(t, unavailable, unavailable, unavailable, reply{status: 200, body: healthOK})
	c := newTestClient(t, testConfig(f))

	require.NoError(t, c.Health(context.Background()))

	reqs := f.requests()
	require.Len(t, reqs, 4, "1 attempt + 3 retries")
	want := []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond}
	for i, g := range gaps(reqs) {
		require.GreaterOrEqual(t, g, want[i], "gap %d", i)
		require.Less(t, g, want[i]+slack, "gap %d", i)
	}
}

func TestRetryExhaustedReturnsLastServerError(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 503, body: errBody(CodeServiceUnavailable, "database unavailable")})
	cfg := testConfig(f)
	cfg.MaxRetries = 2
	c := newTestClient(t, cfg)

	err := c.Health(context.Background())

	require.Len(t, f.requests(), 3)
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 503, ae.Status)
	require.Equal(t, CodeServiceUnavailable, ae.Code)
	require.Equal(t, "database unavailable", ae.Message)
	require.True(t, IsUnavailable(err))
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	future := func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name     string
		header   func() string
		minDelay time.Duration
	}{
		{name: "delay-seconds", header: func() string { return "1" }, minDelay: time.Second},
		// An HTTP date has one-second resolution: 2 s ahead waits more than 1 s.
		{name: "HTTP date", header: future, minDelay: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t)
			f.script(reply{status: 429, body: errBody("TOO_MANY_REQUESTS", "slow down"),
				header: map[string]string{"Retry-After": tt.header()}}, reply{status: 200, body: healthOK})
			c := newTestClient(t, testConfig(f))

			require.NoError(t, c.Health(context.Background()))

			reqs := f.requests()
			require.Len(t, reqs, 2)
			g := gaps(reqs)[0]
			require.GreaterOrEqual(t, g, tt.minDelay, "waited the server's Retry-After, not the 40 ms backoff")
			require.Less(t, g, 2*time.Second+slack)
		})
	}
}

func TestRetryAfterBeyondLimitsGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		maxWait time.Duration
		ctx     func() (context.Context, context.CancelFunc)
	}{
		{name: "longer than MaxRetryAfter", maxWait: 5 * time.Second,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{name: "beyond the caller's deadline", maxWait: time.Hour,
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 3*time.Second)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, reply{status: 429, body: errBody("TOO_MANY_REQUESTS", "slow down"),
				header: map[string]string{"Retry-After": "120"}})
			cfg := testConfig(f)
			cfg.MaxRetryAfter = tt.maxWait
			c := newTestClient(t, cfg)
			ctx, cancel := tt.ctx()
			defer cancel()

			start := time.Now()
			err := c.Health(ctx)

			require.Less(t, time.Since(start), time.Second)
			require.Len(t, f.requests(), 1)
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 429, ae.Status)
			require.Equal(t, "120", ae.RetryAfter)
		})
	}
}

func TestNoRetryForClientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		code   string
		is     func(error) bool
	}{
		{name: "400 bad request", status: 400, code: CodeBadRequest, is: IsValidation},
		{name: "400 invalid uuid", status: 400, code: CodeInvalidUUID, is: IsValidation},
		{name: "401", status: 401, code: CodeAuthFailed, is: IsUnauthorized},
		{name: "403", status: 403, code: CodeForbidden, is: IsUnauthorized},
		{name: "404", status: 404, code: CodeNotFound, is: IsNotFound},
		{name: "408 server timeout", status: 408, code: CodeTimeout, is: func(error) bool { return true }},
		{name: "422", status: 422, code: "UNPROCESSABLE", is: IsValidation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, reply{status: tt.status, body: errBody(tt.code, "nope")})
			c := newTestClient(t, testConfig(f))

			err := c.Health(context.Background())

			require.Len(t, f.requests(), 1, "4xx is never retried")
			var ae *APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tt.status, ae.Status)
			require.Equal(t, tt.code, ae.Code)
			require.Equal(t, "nope", ae.Message)
			require.True(t, tt.is(err))
			require.False(t, IsUnavailable(err))
		})
	}
}

func TestPerRequestTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{block: true}, reply{status: 200, body: healthOK})
	cfg := testConfig(f)
	cfg.Timeout = 150 * time.Millisecond
	c := newTestClient(t, cfg)

	start := time.Now()
	require.NoError(t, c.Health(context.Background()))

	require.Len(t, f.requests(), 2)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond+40*time.Millisecond)
}

func TestPerRequestTimeoutExhausted(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{block: true})
	cfg := testConfig(f)
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxRetries = 1
	c := newTestClient(t, cfg)

	start := time.Now()
	err := c.Health(context.Background())
	elapsed := time.Since(start)

	require.Len(t, f.requests(), 2)
	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, IsUnavailable(err))
	require.GreaterOrEqual(t, elapsed, 240*time.Millisecond, "two 100 ms attempts and a 40 ms pause")
	require.Less(t, elapsed, 240*time.Millisecond+slack)
}

func TestNetworkErrorIsRetried(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 200, body: healthOK})
	cfg := testConfig(f)
	f.Close() // nothing listens any more: connection refused
	cfg.MaxRetries = 2
	c := newTestClient(t, cfg)

	start := time.Now()
	err := c.Health(context.Background())

	var te *TransportError
	require.ErrorAs(t, err, &te)
	require.GreaterOrEqual(t, time.Since(start), 120*time.Millisecond, "waited 40 + 80 ms between the 3 attempts")
}

func TestCallerCancellationStopsRetrying(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{block: true})
	cfg := testConfig(f)
	cfg.Breaker = BreakerConfig{Enabled: true, FailureThreshold: 1, OpenTimeout: time.Minute}
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	err := c.Health(ctx)

	require.ErrorIs(t, err, context.DeadlineExceeded)
	var te *TransportError
	require.False(t, errors.As(err, &te), "the caller's deadline is not a server failure")
	require.Len(t, f.requests(), 1)
	require.Equal(t, BreakerClosed, c.BreakerState(), "caller cancellation is not counted by the breaker")
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{name: "seconds", in: "7", want: 7 * time.Second, ok: true},
		{name: "zero", in: "0", want: 0, ok: true},
		{name: "spaces", in: " 3 ", want: 3 * time.Second, ok: true},
		{name: "http date", in: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, ok: true},
		{name: "date in the past", in: now.Add(-time.Hour).Format(http.TimeFormat), want: 0, ok: true},
		{name: "negative", in: "-1", ok: false},
		{name: "garbage", in: "soon", ok: false},
		{name: "empty", in: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRetryAfter(tt.in, now)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCallerDeadlineDuringBackoffKeepsTheLastError(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 503, body: errBody(CodeServiceUnavailable, "database unavailable")})
	cfg := testConfig(f)
	cfg.Backoff.Initial = time.Second
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	err := c.Health(ctx)

	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "gave up while waiting to retry")
	require.ErrorContains(t, err, "503 SERVICE_UNAVAILABLE: database unavailable")
	require.Len(t, f.requests(), 1)
}
