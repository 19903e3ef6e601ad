package config

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	for _, env := range []string{EnvDevelopment, EnvTest, EnvProduction} {
		cfg := Defaults(env)
		require.NoError(t, cfg.Validate(), env)
	}
}

const testPEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"

// Each case breaks exactly one value; Validate must name that key and only
// that key (so the rule exists and nothing else fires by accident).
func TestValidateRejectsEachInvalidValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		key    string
		reason string
	}{
		{"database url scheme", func(c *Config) { c.Database.URL = "mysql://u@h/db" }, "database.url", "scheme must be postgres or postgresql"},
		{"database url garbage", func(c *Config) { c.Database.URL = "just-a-name" }, "database.url", "postgres:// URL or a key=value"},
		{"pool max open 0", func(c *Config) { c.Database.Pool.MaxOpenConns = 0 }, "database.pool.max_open_conns", "greater than 0"},
		{"pool idle above open", func(c *Config) { c.Database.Pool.MaxIdleConns = 21 }, "database.pool.max_idle_conns", "between 0 and max_open_conns"},
		{"pool idle negative", func(c *Config) { c.Database.Pool.MaxIdleConns = -1 }, "database.pool.max_idle_conns", "between 0 and max_open_conns"},
		{"pool lifetime negative", func(c *Config) { c.Database.Pool.ConnMaxLifetimeSeconds = -1 }, "database.pool.conn_max_lifetime_seconds", "0 or greater"},
		{"connect timeout 0", func(c *Config) { c.Database.Pool.ConnectTimeoutSeconds = 0 }, "database.pool.connect_timeout_seconds", "greater than 0"},
		{"poll interval 0", func(c *Config) { c.Pgmq.PollIntervalMs = 0 }, "pgmq.poll_interval_ms", "greater than 0"},
		{"vt negative", func(c *Config) { c.Pgmq.VisibilityTimeoutSeconds = -5 }, "pgmq.visibility_timeout_seconds", "greater than 0"},
		{"batch size 0", func(c *Config) { c.Pgmq.BatchSize = 0 }, "pgmq.batch_size", "must be between 1 and 1000, got 0"},
		{"batch size 1001", func(c *Config) { c.Pgmq.BatchSize = 1001 }, "pgmq.batch_size", "must be between 1 and 1000, got 1001"},
		{"max receive negative", func(c *Config) { c.Pgmq.MaxReceiveCount = -1 }, "pgmq.max_receive_count", "0 or greater"},
		{"pgmq shutdown 0", func(c *Config) { c.Pgmq.ShutdownTimeoutSeconds = 0 }, "pgmq.shutdown_timeout_seconds", "greater than 0"},
		{"command buffer 0", func(c *Config) { c.CommandProcessing.CommandBufferSize = 0 }, "command_processing.command_buffer_size", "greater than 0"},
		{"command timeout -1", func(c *Config) { c.CommandProcessing.CommandTimeoutMs = -1 }, "command_processing.command_timeout_ms", "greater than 0"},
		{"max concurrent commands 0", func(c *Config) { c.CommandProcessing.MaxConcurrentCommands = 0 }, "command_processing.max_concurrent_commands", "greater than 0"},
		{"publisher buffer 0", func(c *Config) { c.EventIntegration.PublisherBufferSize = 0 }, "event_integration.publisher_buffer_size", "greater than 0"},
		{"subscriber buffer -1", func(c *Config) { c.EventIntegration.SubscriberBufferSize = -1 }, "event_integration.subscriber_buffer_size", "greater than 0"},
		{"correlation timeout 0", func(c *Config) { c.EventIntegration.CorrelationTimeoutSeconds = 0 }, "event_integration.correlation_timeout_seconds", "greater than 0"},
		{"worker id with space", func(c *Config) { c.Worker.WorkerID = "worker one" }, "worker.worker_id", "letters, digits"},
		{"worker id too long", func(c *Config) { c.Worker.WorkerID = strings.Repeat("w", 129) }, "worker.worker_id", "1 to 128"},
		{"namespace upper case", func(c *Config) { c.Worker.Namespaces = []string{"ok", "Billing"} }, "worker.namespaces[1]", "^[a-z0-9_]{1,41}$"},
		{"namespace dash", func(c *Config) { c.Worker.Namespaces = []string{"a-b"} }, "worker.namespaces[0]", "^[a-z0-9_]{1,41}$"},
		{"namespace 42 chars", func(c *Config) { c.Worker.Namespaces = []string{strings.Repeat("n", 42)} }, "worker.namespaces[0]", "at most 41 characters"},
		{"namespace empty", func(c *Config) { c.Worker.Namespaces = []string{""} }, "worker.namespaces[0]", "must not be empty"},
		{"namespace duplicate", func(c *Config) { c.Worker.Namespaces = []string{"a", "a"} }, "worker.namespaces[1]", "duplicate"},
		{"max concurrent steps 0", func(c *Config) { c.Worker.MaxConcurrentSteps = 0 }, "worker.max_concurrent_steps", "greater than 0"},
		{"step claim timeout 0", func(c *Config) { c.Worker.StepClaimTimeoutSeconds = 0 }, "worker.step_claim_timeout_seconds", "greater than 0"},
		{"template dir empty", func(c *Config) { c.Worker.TemplateDir = " " }, "worker.template_dir", "must not be empty"},
		{"web bind no port", func(c *Config) { c.WorkerWeb.BindAddress = "0.0.0.0" }, "worker_web.bind_address", "must be host:port"},
		{"web bind only port", func(c *Config) { c.WorkerWeb.BindAddress = "8081" }, "worker_web.bind_address", "must be host:port"},
		{"web bind port too big", func(c *Config) { c.WorkerWeb.BindAddress = "0.0.0.0:70000" }, "worker_web.bind_address", "between 0 and 65535"},
		{"web bind port not a number", func(c *Config) { c.WorkerWeb.BindAddress = "localhost:http" }, "worker_web.bind_address", "between 0 and 65535"},
		{"web bind host with slash", func(c *Config) { c.WorkerWeb.BindAddress = "http://x:80" }, "worker_web.bind_address", "must be host:port"},
		{"web request timeout 0", func(c *Config) { c.WorkerWeb.RequestTimeoutMs = 0 }, "worker_web.request_timeout_ms", "greater than 0"},
		{"web auth without tokens", func(c *Config) { c.WorkerWeb.AuthenticationEnabled = true }, "worker_web.tokens", "at least one token"},
		{"web blank token", func(c *Config) { c.WorkerWeb.Tokens = []string{"good", " "} }, "worker_web.tokens[1]", "non-empty token"},
		{"web health interval 0", func(c *Config) { c.WorkerWeb.HealthCheckIntervalSeconds = 0 }, "worker_web.health_check_interval_seconds", "greater than 0"},
		{"orch bind bad", func(c *Config) { c.Orchestration.BindAddress = "localhost" }, "orchestration.bind_address", "must be host:port"},
		{"orch bind negative port", func(c *Config) { c.Orchestration.BindAddress = ":-1" }, "orchestration.bind_address", "between 0 and 65535"},
		{"cycle interval 0", func(c *Config) { c.Orchestration.CycleIntervalMs = 0 }, "orchestration.cycle_interval_ms", "greater than 0"},
		{"tasks per cycle 0", func(c *Config) { c.Orchestration.TasksPerCycle = 0 }, "orchestration.tasks_per_cycle", "between 1 and 1000"},
		{"orch claim timeout 0", func(c *Config) { c.Orchestration.ClaimTimeoutSeconds = 0 }, "orchestration.claim_timeout_seconds", "greater than 0"},
		{"max backoff 0", func(c *Config) { c.Orchestration.Backoff.MaxBackoffSeconds = 0 }, "orchestration.backoff.max_backoff_seconds", "greater than 0"},
		{"orch request timeout 0", func(c *Config) { c.Orchestration.RequestTimeoutMs = 0 }, "orchestration.request_timeout_ms", "greater than 0"},
		{"max body 0", func(c *Config) { c.Orchestration.MaxBodyBytes = 0 }, "orchestration.max_body_bytes", "greater than 0"},
		{"orch shutdown 0", func(c *Config) { c.Orchestration.ShutdownTimeoutSeconds = 0 }, "orchestration.shutdown_timeout_seconds", "greater than 0"},
		{"auth enabled without credentials", func(c *Config) { c.Orchestration.Auth.Enabled = true }, "orchestration.auth", "needs tokens or jwt_public_key"},
		{"auth blank token", func(c *Config) { c.Orchestration.Auth.Tokens = []string{""} }, "orchestration.auth.tokens[0]", "non-empty token"},
		{"protected route without method", func(c *Config) { c.Orchestration.Auth.ProtectedRoutes = []string{"/v1/tasks"} }, "orchestration.auth.protected_routes[0]", "<METHOD> <path template>"},
		{"protected route bad method", func(c *Config) { c.Orchestration.Auth.ProtectedRoutes = []string{"FETCH /v1/tasks"} }, "orchestration.auth.protected_routes[0]", "<METHOD> <path template>"},
		{"jwt key not pem", func(c *Config) { c.Orchestration.Auth.JWTPublicKey = "abc" }, "orchestration.auth.jwt_public_key", "PEM"},
		{"jwt issuer empty with key", func(c *Config) {
			c.Orchestration.Auth.JWTPublicKey, c.Orchestration.Auth.JWTIssuer = testPEM, ""
		}, "orchestration.auth.jwt_issuer", "must not be empty"},
		{"jwt audience empty with key", func(c *Config) {
			c.Orchestration.Auth.JWTPublicKey, c.Orchestration.Auth.JWTAudience = testPEM, ""
		}, "orchestration.auth.jwt_audience", "must not be empty"},
		{"api url scheme", func(c *Config) { c.OrchestrationAPI.BaseURL = "ftp://orch:8080" }, "orchestration_api.base_url", "scheme must be http or https"},
		{"api url without scheme", func(c *Config) { c.OrchestrationAPI.BaseURL = "localhost:8080" }, "orchestration_api.base_url", "scheme must be http or https"},
		{"api url without host", func(c *Config) { c.OrchestrationAPI.BaseURL = "http://" }, "orchestration_api.base_url", "must include a host"},
		{"api url unparsable", func(c *Config) { c.OrchestrationAPI.BaseURL = "http://[::1" }, "orchestration_api.base_url", "not a valid URL"},
		// Issue 13 defect 8: credentials in a URL are never echoed.
		{"api url credentials redacted (scheme)", func(c *Config) { c.OrchestrationAPI.BaseURL = "ftp://ops:s3cret@orch:8080" }, "orchestration_api.base_url", `got "ftp://REDACTED@orch:8080"`},
		{"api url credentials redacted (unparsable)", func(c *Config) { c.OrchestrationAPI.BaseURL = "http://ops:s3cret@orch:bad port" }, "orchestration_api.base_url", "REDACTED@"},
		{"api timeout 0", func(c *Config) { c.OrchestrationAPI.TimeoutMs = 0 }, "orchestration_api.timeout_ms", "greater than 0"},
		{"api retries negative", func(c *Config) { c.OrchestrationAPI.MaxRetries = -1 }, "orchestration_api.max_retries", "between 0 and 100"},
		{"api backoff initial 0", func(c *Config) { c.OrchestrationAPI.Backoff.InitialMs = 0 }, "orchestration_api.backoff.initial_ms", "greater than 0"},
		{"api backoff max below initial", func(c *Config) { c.OrchestrationAPI.Backoff.MaxMs = 50 }, "orchestration_api.backoff.max_ms", "at least initial_ms"},
		{"api backoff multiplier below 1", func(c *Config) { c.OrchestrationAPI.Backoff.Multiplier = 0.5 }, "orchestration_api.backoff.multiplier", "at least 1"},
		{"api jitter above 1", func(c *Config) { c.OrchestrationAPI.Backoff.Jitter = 1.5 }, "orchestration_api.backoff.jitter", "between 0 and 1"},
		{"api jitter negative", func(c *Config) { c.OrchestrationAPI.Backoff.Jitter = -0.1 }, "orchestration_api.backoff.jitter", "between 0 and 1"},
		{"api token with space", func(c *Config) { c.OrchestrationAPI.AuthToken = "a b" }, "orchestration_api.auth_token", "whitespace"},
		{"breaker threshold 0", func(c *Config) { c.OrchestrationAPI.CircuitBreaker.FailureThreshold = 0 }, "orchestration_api.circuit_breaker.failure_threshold", "greater than 0"},
		{"breaker timeout 0", func(c *Config) { c.OrchestrationAPI.CircuitBreaker.TimeoutSeconds = 0 }, "orchestration_api.circuit_breaker.timeout_seconds", "greater than 0"},
		{"breaker half-open 0", func(c *Config) { c.OrchestrationAPI.CircuitBreaker.HalfOpenMaxRequests = 0 }, "orchestration_api.circuit_breaker.half_open_max_requests", "greater than 0"},
		{"log level", func(c *Config) { c.Logging.Level = "verbose" }, "logging.level", "must be one of debug, info, warn, error"},
		{"log level case", func(c *Config) { c.Logging.Level = "INFO" }, "logging.level", "must be one of"},
		{"log format", func(c *Config) { c.Logging.Format = "text" }, "logging.format", "must be one of json, console"},
		{"environment", func(c *Config) { c.Environment = "staging" }, "environment", "must be one of development, test, production"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Defaults(EnvDevelopment)
			tt.mutate(&cfg)
			err := cfg.Validate()
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Len(t, verr.Problems, 1, "only %s should be reported: %v", tt.key, verr.Problems)
			require.Equal(t, tt.key, verr.Problems[0].Key)
			require.Contains(t, verr.Problems[0].Reason, tt.reason)
			require.Contains(t, err.Error(), tt.key+": ")
			require.NotContains(t, err.Error(), "s3cret")
			t.Logf("%v", err)
		})
	}
}

func TestValidateAcceptsEdgeValues(t *testing.T) {
	t.Parallel()
	cfg := Defaults(EnvProduction)
	cfg.Database.URL = "host=127.0.0.1 dbname=tasker_test sslmode=disable"
	cfg.WorkerWeb.BindAddress = ":0"
	cfg.Orchestration.BindAddress = "[::1]:8080"
	cfg.Pgmq.BatchSize = 1000
	cfg.Pgmq.MaxReceiveCount = 0
	cfg.Worker.Namespaces = []string{strings.Repeat("n", 41), "a_1"}
	cfg.Worker.WorkerID = "worker-0198f0c2-aaaa"
	cfg.OrchestrationAPI.MaxRetries = 0
	cfg.OrchestrationAPI.Backoff.Jitter = 0
	cfg.Orchestration.Auth.Enabled = true
	cfg.Orchestration.Auth.JWTPublicKey = testPEM
	require.NoError(t, cfg.Validate())
	require.NoError(t, cfg.ValidateWorker())
}

func TestValidateReportsAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	cfg := Defaults(EnvDevelopment)
	cfg.Pgmq.BatchSize = 0
	cfg.WorkerWeb.BindAddress = "nope"
	cfg.Logging.Level = "loud"
	err := cfg.Validate()
	require.EqualError(t, err, "invalid configuration: pgmq.batch_size: must be between 1 and 1000, got 0; "+
		`worker_web.bind_address: must be host:port, got "nope"; `+
		`logging.level: must be one of debug, info, warn, error, got "loud"`)
}

func TestValidateWorker(t *testing.T) {
	t.Parallel()
	cfg := Defaults(EnvProduction)
	err := cfg.ValidateWorker()
	requireProblem(t, err, "", "database.url", "is required")
	requireProblem(t, err, "", "worker.namespaces", "at least one namespace")
	require.NoError(t, cfg.Validate(), "service requirements are not part of Validate")

	cfg.Database.URL = "postgres://postgres@127.0.0.1:5432/x_test"
	cfg.Worker.Namespaces = []string{"examples"}
	require.NoError(t, cfg.ValidateWorker())

	cfg.Pgmq.MaxReceiveCount = 10 // 10 × 30 s = 300 s, not more than the 300 s claim timeout
	err = cfg.ValidateWorker()
	requireProblem(t, err, "", "pgmq.max_receive_count", "10 × visibility_timeout_seconds (30) = 300 s")

	cfg.Pgmq.MaxReceiveCount = 11
	require.NoError(t, cfg.ValidateWorker())

	cfg.Worker.Namespaces = []string{"Bad"}
	requireProblem(t, cfg.ValidateWorker(), "", "worker.namespaces[0]", "must match")
}

func TestValidateOrchestration(t *testing.T) {
	t.Parallel()
	cfg := Defaults(EnvProduction)
	requireProblem(t, cfg.ValidateOrchestration(), "", "database.url", "is required")
	cfg.Database.URL = "postgresql://postgres@127.0.0.1/x_test"
	require.NoError(t, cfg.ValidateOrchestration(), "namespaces are a worker requirement only")
	cfg.Orchestration.TasksPerCycle = 0
	requireProblem(t, cfg.ValidateOrchestration(), "", "orchestration.tasks_per_cycle", "between 1 and 1000")
}

func TestDatabaseURLProblemDoesNotLeakPassword(t *testing.T) {
	t.Parallel()
	cfg := Defaults(EnvProduction)
	cfg.Database.URL = "mysql://user:s3cret@h/db"
	err := cfg.Validate()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

func TestEnsureID(t *testing.T) {
	t.Parallel()
	w := Defaults(EnvTest).Worker
	id, err := w.EnsureID()
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`^worker-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`), id)
	again, err := w.EnsureID()
	require.NoError(t, err)
	require.Equal(t, id, again, "generated once, then stable")
	require.Equal(t, id, w.WorkerID)

	configured := WorkerConfig{WorkerID: "worker-a"}
	id, err = configured.EnsureID()
	require.NoError(t, err)
	require.Equal(t, "worker-a", id)
}

func TestDurationAccessors(t *testing.T) {
	t.Parallel()
	cfg := Defaults(EnvDevelopment)
	require.Equal(t, 500*time.Millisecond, cfg.Pgmq.PollInterval())
	require.Equal(t, 30*time.Second, cfg.Pgmq.VisibilityTimeout())
	require.Equal(t, 10*time.Second, cfg.Pgmq.HeartbeatInterval(), "vt/3 (contract §4.7)")
	require.Equal(t, 250*time.Millisecond, cfg.Orchestration.CycleInterval())
	require.Equal(t, 5*time.Minute, cfg.Orchestration.Backoff.MaxBackoff())
	require.Equal(t, 100*time.Millisecond, cfg.OrchestrationAPI.Backoff.Initial())
	require.Equal(t, 5*time.Second, cfg.OrchestrationAPI.Backoff.Max())
	require.Equal(t, 30*time.Second, cfg.OrchestrationAPI.CircuitBreaker.Timeout())
	require.Equal(t, 30*time.Second, cfg.OrchestrationAPI.Timeout())
	require.Equal(t, 30*time.Second, cfg.WorkerWeb.RequestTimeout())
	require.Equal(t, 5*time.Minute, cfg.Worker.StepClaimTimeout())
	require.Equal(t, 5*time.Minute, cfg.EventIntegration.CorrelationTimeout())
	require.Equal(t, 30*time.Second, cfg.CommandProcessing.CommandTimeout())
	require.Equal(t, 30*time.Minute, cfg.Database.Pool.ConnMaxLifetime())
}
