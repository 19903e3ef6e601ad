package httpclient

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/config"
)

func TestDefaultsMatchTheConfigSchema(t *testing.T) {
	t.Parallel()
	got := FromSettings(config.Defaults(config.EnvDevelopment).OrchestrationAPI)
	want := DefaultConfig()
	require.Equal(t, want, got, "DefaultConfig must equal the orchestration_api.* defaults of adapters/config")
}

func TestFromSettingsMapsEveryKey(t *testing.T) {
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

	got := FromSettings(cfg.OrchestrationAPI)

	want := Config{
		BaseURL: "https://orch.example:9443", Timeout: 1500 * time.Millisecond, MaxRetries: 7,
		Backoff:       BackoffConfig{Initial: 20 * time.Millisecond, Max: 900 * time.Millisecond, Multiplier: 3, Jitter: 0.25},
		MaxRetryAfter: DefaultMaxRetryAfter, AuthToken: "tok",
		Breaker: BreakerConfig{Enabled: false, FailureThreshold: 9, OpenTimeout: 11 * time.Second, HalfOpenMaxRequests: 4},
	}
	require.Equal(t, want, got)
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "empty base url", mutate: func(c *Config) { c.BaseURL = "" }, wantErr: "orchestration_api.base_url"},
		{name: "no scheme", mutate: func(c *Config) { c.BaseURL = "localhost:8080" }, wantErr: "orchestration_api.base_url"},
		{name: "ftp", mutate: func(c *Config) { c.BaseURL = "ftp://x" }, wantErr: "orchestration_api.base_url"},
		{name: "negative retries", mutate: func(c *Config) { c.MaxRetries = -1 }, wantErr: "orchestration_api.max_retries"},
		{name: "jitter above 1", mutate: func(c *Config) { c.Backoff.Jitter = 1.5 }, wantErr: "orchestration_api.backoff.jitter"},
		{name: "shrinking multiplier", mutate: func(c *Config) { c.Backoff.Multiplier = 0.5 }, wantErr: "orchestration_api.backoff.multiplier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestNewFillsZeroValues(t *testing.T) {
	t.Parallel()
	c, err := New(Config{BaseURL: "http://orch:8080/"})
	require.NoError(t, err)
	require.Equal(t, "http://orch:8080", c.BaseURL(), "trailing slash dropped so paths join cleanly")
	require.Equal(t, DefaultTimeout, c.cfg.Timeout)
	require.Equal(t, 0, c.cfg.MaxRetries, "0 retries is a choice, not unset")
	require.Equal(t, DefaultBackoffMultiplier, c.cfg.Backoff.Multiplier)
	require.Equal(t, BreakerDisabled, c.BreakerState(), "a zero Config has the breaker off")
	require.Equal(t, "tasker-go/"+Version(), c.cfg.UserAgent)
}
