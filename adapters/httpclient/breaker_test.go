package httpclient

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func breakerClient(t *testing.T, f *fakeServer, threshold, halfOpen int, open time.Duration) *Client {
	t.Helper()
	cfg := testConfig(f)
	cfg.MaxRetries = 0
	cfg.Breaker = BreakerConfig{Enabled: true, FailureThreshold: threshold, OpenTimeout: open, HalfOpenMaxRequests: halfOpen}
	return newTestClient(t, cfg)
}

func TestBreakerOpensFailsFastHalfOpensAndCloses(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 503, body: errBody(CodeServiceUnavailable, "down")})
	c := breakerClient(t, f, 3, 2, 300*time.Millisecond)
	ctx := context.Background()

	for i := range 2 {
		require.Error(t, c.Health(ctx))
		require.Equal(t, BreakerClosed, c.BreakerState(), "below the threshold after %d failures", i+1)
	}
	require.Error(t, c.Health(ctx))
	require.Equal(t, BreakerOpen, c.BreakerState(), "opens at the 3rd consecutive failure")

	start := time.Now()
	err := c.Health(ctx)
	require.ErrorIs(t, err, ErrCircuitOpen)
	require.True(t, IsUnavailable(err))
	require.Less(t, time.Since(start), 50*time.Millisecond, "fails fast")
	require.Len(t, f.requests(), 3, "nothing sent while open")

	require.Eventually(t, func() bool { return c.BreakerState() == BreakerHalfOpen },
		2*time.Second, 10*time.Millisecond)
	f.script(reply{status: 200, body: healthOK})
	require.NoError(t, c.Health(ctx))
	require.Equal(t, BreakerHalfOpen, c.BreakerState(), "one of two trial successes")
	require.NoError(t, c.Health(ctx))
	require.Equal(t, BreakerClosed, c.BreakerState())
	require.Len(t, f.requests(), 5)
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 500, body: errBody(CodeInternalError, "boom")})
	c := breakerClient(t, f, 1, 2, 200*time.Millisecond)
	ctx := context.Background()

	require.Error(t, c.Health(ctx))
	require.Equal(t, BreakerOpen, c.BreakerState())
	require.Eventually(t, func() bool { return c.BreakerState() == BreakerHalfOpen },
		2*time.Second, 10*time.Millisecond)

	err := c.Health(ctx)
	var ae *APIError
	require.ErrorAs(t, err, &ae, "the trial request reached the server")
	require.Equal(t, BreakerOpen, c.BreakerState(), "a failed trial re-opens")
	require.ErrorIs(t, c.Health(ctx), ErrCircuitOpen)
	require.Len(t, f.requests(), 2)
}

func TestBreakerStopsARetrySequence(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 503, body: errBody(CodeServiceUnavailable, "down")})
	cfg := testConfig(f)
	cfg.MaxRetries = 5
	cfg.Breaker = BreakerConfig{Enabled: true, FailureThreshold: 2, OpenTimeout: time.Minute, HalfOpenMaxRequests: 1}
	c := newTestClient(t, cfg)

	err := c.Health(context.Background())

	require.ErrorIs(t, err, ErrCircuitOpen)
	require.Len(t, f.requests(), 2, "attempts count individually; the open breaker ends the retries")
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 404, body: errBody(CodeNotFound, "Task not found")})
	c := breakerClient(t, f, 2, 1, time.Minute)

	for range 5 {
		require.True(t, IsNotFound(c.Health(context.Background())))
	}
	require.Equal(t, BreakerClosed, c.BreakerState(), "a 404 proves the server is up")
	require.Len(t, f.requests(), 5)
}

func TestBreakerSuccessResetsConsecutiveFailures(t *testing.T) {
	t.Parallel()
	down := reply{status: 503, body: errBody(CodeServiceUnavailable, "down")}
	up := reply{status: 200, body: healthOK}
	f := newFakeServer(t, down, down, up, down, down, up)
	c := breakerClient(t, f, 3, 1, time.Minute)

	for range 6 {
		_ = c.Health(context.Background())
	}
	require.Equal(t, BreakerClosed, c.BreakerState())
	require.Len(t, f.requests(), 6)
}

func TestBreakerDisabled(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 503, body: errBody(CodeServiceUnavailable, "down")})
	cfg := testConfig(f)
	cfg.MaxRetries = 0
	c := newTestClient(t, cfg)

	for range 10 {
		require.NotErrorIs(t, c.Health(context.Background()), ErrCircuitOpen)
	}
	require.Equal(t, BreakerDisabled, c.BreakerState())
	require.Len(t, f.requests(), 10)
}
