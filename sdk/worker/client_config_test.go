package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

func TestDefaultsMatchTheConfigSchema(t *testing.T) {
	t.Parallel()
	got := clientConfig(config.Defaults(config.EnvDevelopment).OrchestrationAPI)
	want := httpclient.DefaultConfig()
	require.Equal(t, want, got, "httpclient.DefaultConfig must equal the orchestration_api.* defaults of adapters/config")
}

func TestClientConfigMapsEveryKey(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(config.LoadOptions{Environment: config.EnvProduction, Environ: []string{
		"DATABASE_URL=postgres://x@localhost/test",
		"TASKER_WORKER__NAMESPACES=examples",
		"TASKER_ORCHESTRATION_API__BASE_URL=https://orch.example:9443",
		"TASKER_ORCHESTRATION_API__TIMEOUT_MS=1500",
		"TASKER_ORCHESTRATION_API__MAX_RETRIES=7",
		"TASKER_ORCHESTRATION_API__AUTH_TOKEN=tok",
		"TASKER_ORCHESTRATION_API__BACKOFF__INITIAL_MS=20",
		"TASKER_ORCHESTRATION_API__BACKOFF__MAX_MS=900",
		"TASKER_ORCHESTRATION_API__BACKOFF__MULTIPLIER=3",
		"TASKER_ORCHESTRATION_API__BACKOFF__JITTER=0.25",
		"TASKER_ORCHESTRATION_API__CIRCUIT_BREAKER__ENABLED=false",
		"TASKER_ORCHESTRATION_API__CIRCUIT_BREAKER__FAILURE_THRESHOLD=9",
		"TASKER_ORCHESTRATION_API__CIRCUIT_BREAKER__TIMEOUT_SECONDS=11",
		"TASKER_ORCHESTRATION_API__CIRCUIT_BREAKER__HALF_OPEN_MAX_REQUESTS=4",
	}})
	require.NoError(t, err)

	got := clientConfig(cfg.OrchestrationAPI)

	want := httpclient.Config{
		BaseURL: "https://orch.example:9443", Timeout: 1500 * time.Millisecond, MaxRetries: 7,
		Backoff:       httpclient.BackoffConfig{Initial: 20 * time.Millisecond, Max: 900 * time.Millisecond, Multiplier: 3, Jitter: 0.25},
		MaxRetryAfter: httpclient.DefaultMaxRetryAfter, AuthToken: "tok",
		Breaker: httpclient.BreakerConfig{Enabled: false, FailureThreshold: 9, OpenTimeout: 11 * time.Second, HalfOpenMaxRequests: 4},
	}
	require.Equal(t, want, got)
}
