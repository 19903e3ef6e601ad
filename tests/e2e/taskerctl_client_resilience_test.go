package e2e

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

// countingTransport counts HTTP attempts, the retries included.
type countingTransport struct {
	attempts atomic.Int64
	next     http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.attempts.Add(1)
	return c.next.RoundTrip(r)
}

// TestClientRidesOutAnOrchestrationRestart stops and restarts the real
// orchestration binary on the same address: a call made while it is down
// keeps retrying and succeeds once it is back; a client without retries
// opens its breaker, fails fast, half-opens and closes again.
func TestClientRidesOutAnOrchestrationRestart(t *testing.T) {
	_, dbURL := OrchDB(t)
	bins := buildBinaries(t)
	addr := freeAddr(t)
	orch := startOrchestration(t, bins, dbURL, addr)
	ctx := context.Background()

	transport := &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	httpClient := &http.Client{Transport: transport}
	t.Cleanup(httpClient.CloseIdleConnections)
	newClient := func(mutate func(*httpclient.Config)) *httpclient.Client {
		cfg := httpclient.DefaultConfig()
		cfg.BaseURL, cfg.HTTPClient, cfg.Timeout = orch.URL, httpClient, 2*time.Second
		cfg.Backoff = httpclient.BackoffConfig{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2, Jitter: 0.5}
		mutate(&cfg)
		c, err := httpclient.New(cfg)
		require.NoError(t, err)
		return c
	}

	retrying := newClient(func(c *httpclient.Config) { c.MaxRetries, c.Breaker.Enabled = 50, false })
	require.NoError(t, retrying.Health(ctx))
	orch.Stop()

	done := make(chan error, 1)
	before := transport.attempts.Load()
	go func() { done <- retrying.Health(ctx) }()
	require.Eventually(t, func() bool { return transport.attempts.Load() >= before+3 }, 10*time.Second, 10*time.Millisecond,
		"the call keeps retrying while nothing listens")
	orch = startOrchestration(t, bins, dbURL, addr)
	select {
	case err := <-done:
		require.NoError(t, err, "the same call succeeds once the orchestration is back")
	case <-time.After(30 * time.Second):
		t.Fatal("the retrying call did not return after the restart")
	}
	t.Logf("one Health call survived the restart with %d attempts", transport.attempts.Load()-before)

	breaker := newClient(func(c *httpclient.Config) {
		c.MaxRetries = 0
		c.Breaker = httpclient.BreakerConfig{Enabled: true, FailureThreshold: 3, OpenTimeout: 500 * time.Millisecond, HalfOpenMaxRequests: 1}
	})
	orch.Stop()
	for range 3 {
		err := breaker.Health(ctx)
		var te *httpclient.TransportError
		require.ErrorAs(t, err, &te)
	}
	require.Equal(t, httpclient.BreakerOpen, breaker.BreakerState())
	before = transport.attempts.Load()
	require.ErrorIs(t, breaker.Health(ctx), httpclient.ErrCircuitOpen)
	require.Equal(t, before, transport.attempts.Load(), "fails fast without sending")

	startOrchestration(t, bins, dbURL, addr)
	require.Eventually(t, func() bool { return breaker.BreakerState() == httpclient.BreakerHalfOpen },
		5*time.Second, 10*time.Millisecond)
	require.NoError(t, breaker.Health(ctx))
	require.Equal(t, httpclient.BreakerClosed, breaker.BreakerState())
}
