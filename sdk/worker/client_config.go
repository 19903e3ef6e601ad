package worker

import (
	"time"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

// clientConfig maps the loaded orchestration_api.* section (already validated
// by adapters/config) onto the HTTP client's Config. It lives in the
// composition root so that neither adapter imports the other.
func clientConfig(s config.OrchestrationAPIConfig) httpclient.Config {
	c := httpclient.DefaultConfig()
	c.BaseURL = s.BaseURL
	c.Timeout = time.Duration(s.TimeoutMs) * time.Millisecond
	c.MaxRetries = s.MaxRetries
	c.Backoff = httpclient.BackoffConfig{
		Initial:    time.Duration(s.Backoff.InitialMs) * time.Millisecond,
		Max:        time.Duration(s.Backoff.MaxMs) * time.Millisecond,
		Multiplier: s.Backoff.Multiplier,
		Jitter:     s.Backoff.Jitter,
	}
	c.AuthToken = s.AuthToken
	c.Breaker = httpclient.BreakerConfig{
		Enabled:             s.CircuitBreaker.Enabled,
		FailureThreshold:    s.CircuitBreaker.FailureThreshold,
		OpenTimeout:         time.Duration(s.CircuitBreaker.TimeoutSeconds) * time.Second,
		HalfOpenMaxRequests: s.CircuitBreaker.HalfOpenMaxRequests,
	}
	return c
}
