package httpclient

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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
