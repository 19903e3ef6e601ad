package httpclient

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tasker-systems/tasker-go/internal/buildinfo"
	"github.com/tasker-systems/tasker-go/internal/redact"
)

// Defaults of Config, identical to the orchestration_api.* defaults in
// adapters/config and configs/tasker/base/orchestration_api.toml.
const (
	DefaultBaseURL             = "http://localhost:8080"
	DefaultTimeout             = 30 * time.Second
	DefaultMaxRetries          = 3
	DefaultBackoffInitial      = 100 * time.Millisecond
	DefaultBackoffMax          = 5 * time.Second
	DefaultBackoffMultiplier   = 2.0
	DefaultBackoffJitter       = 0.5
	DefaultMaxRetryAfter       = 60 * time.Second
	DefaultBreakerEnabled      = true
	DefaultFailureThreshold    = 5
	DefaultBreakerOpenTimeout  = 30 * time.Second
	DefaultHalfOpenMaxRequests = 3
)

// Config configures a Client. Build it with DefaultConfig (the worker SDK maps orchestration_api.* onto it) and
// override fields; New fills zero durations, multiplier and breaker sizes with
// the defaults, but takes MaxRetries = 0, Jitter = 0 and Breaker.Enabled =
// false literally because they are meaningful choices.
type Config struct {
	// BaseURL is the orchestration's http(s) root without /v1, e.g.
	// http://orchestration:8080. Required.
	BaseURL string
	// Timeout bounds one HTTP attempt, not the whole retry sequence: a hung
	// connection is abandoned and retried instead of eating the caller's budget.
	// 30 s matches the server's own request timeout (contract §7).
	Timeout time.Duration
	// MaxRetries is the number of extra attempts after the first, made only
	// after network errors, 5xx and 429. 3 rides out a restart of the
	// orchestration without making a dead one look alive for long.
	MaxRetries int
	// Backoff spaces the retries.
	Backoff BackoffConfig
	// MaxRetryAfter caps a server-requested Retry-After: a longer request is
	// treated as "give up now" rather than silently blocking the caller.
	MaxRetryAfter time.Duration
	// AuthToken is sent as "Authorization: Bearer <token>" when non-empty.
	AuthToken string
	// Breaker fails calls fast while the orchestration is down.
	Breaker BreakerConfig
	// UserAgent is sent on every request; empty means "tasker-go/<version>".
	UserAgent string
	// HTTPClient sends the requests; nil means a client with default
	// transport. Its own Timeout should be 0: Config.Timeout applies per attempt.
	HTTPClient *http.Client
}

// BackoffConfig is the exponential retry delay (cenkalti/backoff/v5):
// delay n = min(Initial × Multiplier^(n-1), Max) ± Jitter × delay.
type BackoffConfig struct {
	// Initial is the delay before the first retry. 100 ms: quick enough for
	// an interactive taskerctl, long enough not to hammer a restarting server.
	Initial time.Duration
	// Max caps one delay.
	Max time.Duration
	// Multiplier grows the delay per retry; ≥ 1.
	Multiplier float64
	// Jitter is the randomization factor in [0, 1]; it de-synchronises many
	// workers retrying against one recovering orchestration. 0 disables it.
	Jitter float64
}

// BreakerConfig maps to sony/gobreaker/v2 settings. Only retry-worthy
// failures (network errors, 5xx, 429) count; a 404 proves the server is up.
type BreakerConfig struct {
	// Enabled wraps every attempt in the breaker.
	Enabled bool
	// FailureThreshold opens the breaker after this many consecutive failed
	// attempts (retries count individually, so one call can open it).
	FailureThreshold int
	// OpenTimeout is how long the breaker stays open before letting trial
	// requests through (half-open).
	OpenTimeout time.Duration
	// HalfOpenMaxRequests trial requests are allowed while half-open; that
	// many consecutive successes close the breaker, one failure re-opens it.
	HalfOpenMaxRequests int
}

// DefaultConfig returns the defaults above.
func DefaultConfig() Config {
	return Config{
		BaseURL:       DefaultBaseURL,
		Timeout:       DefaultTimeout,
		MaxRetries:    DefaultMaxRetries,
		Backoff:       BackoffConfig{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, Multiplier: DefaultBackoffMultiplier, Jitter: DefaultBackoffJitter},
		MaxRetryAfter: DefaultMaxRetryAfter,
		Breaker: BreakerConfig{Enabled: DefaultBreakerEnabled, FailureThreshold: DefaultFailureThreshold,
			OpenTimeout: DefaultBreakerOpenTimeout, HalfOpenMaxRequests: DefaultHalfOpenMaxRequests},
	}
}

// withDefaults fills unset fields and checks the rest; errors name the key.
func (c Config) withDefaults() (Config, *url.URL, error) {
	base, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return c, nil, fmt.Errorf("orchestration_api.base_url: %q is not an http(s) URL with a host", redact.URL(c.BaseURL))
	}
	if c.MaxRetries < 0 {
		return c, nil, fmt.Errorf("orchestration_api.max_retries: must be ≥ 0, got %d", c.MaxRetries)
	}
	if c.Backoff.Jitter < 0 || c.Backoff.Jitter > 1 {
		return c, nil, fmt.Errorf("orchestration_api.backoff.jitter: must be in [0, 1], got %g", c.Backoff.Jitter)
	}
	if c.Backoff.Multiplier != 0 && c.Backoff.Multiplier < 1 {
		return c, nil, fmt.Errorf("orchestration_api.backoff.multiplier: must be ≥ 1, got %g", c.Backoff.Multiplier)
	}
	fill := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	fill(&c.Timeout, DefaultTimeout)
	fill(&c.Backoff.Initial, DefaultBackoffInitial)
	fill(&c.Backoff.Max, DefaultBackoffMax)
	fill(&c.MaxRetryAfter, DefaultMaxRetryAfter)
	fill(&c.Breaker.OpenTimeout, DefaultBreakerOpenTimeout)
	if c.Backoff.Max < c.Backoff.Initial {
		c.Backoff.Max = c.Backoff.Initial
	}
	if c.Backoff.Multiplier == 0 {
		c.Backoff.Multiplier = DefaultBackoffMultiplier
	}
	if c.Breaker.FailureThreshold <= 0 {
		c.Breaker.FailureThreshold = DefaultFailureThreshold
	}
	if c.Breaker.HalfOpenMaxRequests <= 0 {
		c.Breaker.HalfOpenMaxRequests = DefaultHalfOpenMaxRequests
	}
	if c.UserAgent == "" {
		c.UserAgent = "tasker-go/" + Version()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	return c, base, nil
}

// Version is the version the User-Agent reports: the build's stamp or
// the toolchain's build information (see internal/buildinfo).
func Version() string { return buildinfo.Get() }
