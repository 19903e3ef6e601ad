package config

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/redact"
)

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)

var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// checker accumulates problems so every invalid value is reported at once.
type checker struct{ problems []Problem }

func (ch *checker) add(key, format string, args ...any) {
	ch.problems = append(ch.problems, Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
}

func (ch *checker) positive(key string, v int) {
	if v <= 0 {
		ch.add(key, "must be greater than 0, got %d", v)
	}
}

func (ch *checker) nonNegative(key string, v int) {
	if v < 0 {
		ch.add(key, "must be 0 or greater, got %d", v)
	}
}

func (ch *checker) between(key string, v, lo, hi int) {
	if v < lo || v > hi {
		ch.add(key, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (ch *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		ch.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

// bindAddress accepts host:port with an optional host (":8080") and port
// 0..65535 (0 lets the OS pick, which tests use).
func (ch *checker) bindAddress(key, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		ch.add(key, "must be host:port, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ch.add(key, "port must be a number between 0 and 65535, got %q", port)
	}
	if strings.ContainsAny(host, " /") {
		ch.add(key, "host must be an IP address or host name, got %q", host)
	}
}

func (ch *checker) tokens(key string, tokens []string) {
	for i, t := range tokens {
		if strings.TrimSpace(t) == "" || strings.ContainsAny(t, " \t\r\n") {
			ch.add(fmt.Sprintf("%s[%d]", key, i), "must be a non-empty token without whitespace")
		}
	}
}

// Validate checks every value of every section, whichever service runs, so
// a wrong value anywhere in a shared file is caught at the first start. It
// does not require settings that only one service needs (see
// ValidateWorker and ValidateOrchestration). Load calls it.
func (c *Config) Validate() error {
	return problemsError(c.problems())
}

// ValidateWorker is Validate plus what the worker cannot run without: a
// database URL and at least one namespace (contract §4.7; an invalid
// namespace is fatal, D-k), and a poison limit that cannot strand abandoned
// steps.
func (c *Config) ValidateWorker() error {
	ch := checker{problems: c.problems()}
	ch.requireDatabaseURL(c.Database.URL)
	if len(c.Worker.Namespaces) == 0 {
		ch.add("worker.namespaces", "at least one namespace is required (e.g. TASKER_WORKER__NAMESPACES=examples)")
	}
	if n := c.Pgmq.MaxReceiveCount; n > 0 && n*c.Pgmq.VisibilityTimeoutSeconds <= c.Worker.StepClaimTimeoutSeconds {
		ch.add("pgmq.max_receive_count",
			"must allow more than worker.step_claim_timeout_seconds (%d) of redeliveries: %d × visibility_timeout_seconds (%d) = %d s",
			c.Worker.StepClaimTimeoutSeconds, n, c.Pgmq.VisibilityTimeoutSeconds, n*c.Pgmq.VisibilityTimeoutSeconds)
	}
	return problemsError(ch.problems)
}

// ValidateOrchestration is Validate plus what the orchestration cannot run
// without: a database URL.
func (c *Config) ValidateOrchestration() error {
	ch := checker{problems: c.problems()}
	ch.requireDatabaseURL(c.Database.URL)
	return problemsError(ch.problems)
}

func (ch *checker) requireDatabaseURL(v string) {
	if v == "" {
		ch.add("database.url", "is required (set DATABASE_URL)")
	}
}

func (c *Config) problems() []Problem {
	ch := &checker{}
	if c.Environment != "" {
		ch.oneOf("environment", c.Environment, EnvDevelopment, EnvTest, EnvProduction)
	}
	c.Database.check(ch)
	c.Pgmq.check(ch)
	c.CommandProcessing.check(ch)
	c.EventIntegration.check(ch)
	c.Worker.check(ch)
	c.WorkerWeb.check(ch)
	c.Orchestration.check(ch)
	c.OrchestrationAPI.check(ch)
	ch.oneOf("logging.level", c.Logging.Level, "debug", "info", "warn", "error")
	ch.oneOf("logging.format", c.Logging.Format, "json", "console")
	return ch.problems
}

func (d DatabaseConfig) check(ch *checker) {
	if d.URL != "" {
		checkDatabaseURL(ch, d.URL)
	}
	p := d.Pool
	ch.positive("database.pool.max_open_conns", p.MaxOpenConns)
	if p.MaxIdleConns < 0 || (p.MaxOpenConns > 0 && p.MaxIdleConns > p.MaxOpenConns) {
		ch.add("database.pool.max_idle_conns", "must be between 0 and max_open_conns (%d), got %d", p.MaxOpenConns, p.MaxIdleConns)
	}
	ch.nonNegative("database.pool.conn_max_lifetime_seconds", p.ConnMaxLifetimeSeconds)
	ch.positive("database.pool.connect_timeout_seconds", p.ConnectTimeoutSeconds)
}

// checkDatabaseURL accepts what lib/pq accepts: a postgres:// URL or a
// key=value DSN. The reason never echoes the value: it may hold a password.
func checkDatabaseURL(ch *checker, v string) {
	if !strings.Contains(v, "://") {
		if !strings.Contains(v, "=") {
			ch.add("database.url", "must be a postgres:// URL or a key=value connection string")
		}
		return
	}
	u, err := url.Parse(v)
	if err != nil {
		ch.add("database.url", "is not a valid URL")
		return
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		ch.add("database.url", "scheme must be postgres or postgresql, got %q", u.Scheme)
	}
}

func (p PgmqConfig) check(ch *checker) {
	ch.positive("pgmq.poll_interval_ms", p.PollIntervalMs)
	ch.positive("pgmq.visibility_timeout_seconds", p.VisibilityTimeoutSeconds)
	ch.between("pgmq.batch_size", p.BatchSize, 1, maxBatchSize)
	ch.nonNegative("pgmq.max_receive_count", p.MaxReceiveCount)
	ch.positive("pgmq.shutdown_timeout_seconds", p.ShutdownTimeoutSeconds)
}

func (p CommandProcessingConfig) check(ch *checker) {
	ch.positive("command_processing.command_buffer_size", p.CommandBufferSize)
	ch.positive("command_processing.command_timeout_ms", p.CommandTimeoutMs)
	ch.positive("command_processing.max_concurrent_commands", p.MaxConcurrentCommands)
}

func (e EventIntegrationConfig) check(ch *checker) {
	ch.positive("event_integration.publisher_buffer_size", e.PublisherBufferSize)
	ch.positive("event_integration.subscriber_buffer_size", e.SubscriberBufferSize)
	ch.positive("event_integration.correlation_timeout_seconds", e.CorrelationTimeoutSeconds)
}

func (w WorkerConfig) check(ch *checker) {
	if w.WorkerID != "" && (len(w.WorkerID) > maxWorkerIDLength || !workerIDPattern.MatchString(w.WorkerID)) {
		ch.add("worker.worker_id", "must be 1 to %d characters of letters, digits, '.', '_', ':' or '-'", maxWorkerIDLength)
	}
	seen := map[string]bool{}
	for i, ns := range w.Namespaces {
		key := fmt.Sprintf("worker.namespaces[%d]", i)
		if reason := namespaceProblem(ns); reason != "" {
			ch.add(key, "%s", reason)
		} else if seen[ns] {
			ch.add(key, "duplicate namespace %q", ns)
		}
		seen[ns] = true
	}
	ch.positive("worker.max_concurrent_steps", w.MaxConcurrentSteps)
	ch.positive("worker.step_claim_timeout_seconds", w.StepClaimTimeoutSeconds)
	ch.positive("worker.limits.max_message_bytes", w.Limits.MaxMessageBytes)
	if strings.TrimSpace(w.TemplateDir) == "" {
		ch.add("worker.template_dir", "must not be empty")
	}
}

// namespaceProblem applies contract D-k through the domain rule, so worker
// config, templates and task creation reject exactly the same namespaces.
func namespaceProblem(ns string) string {
	err := domain.ValidateNamespace(ns)
	if err == nil {
		return ""
	}
	var verr *domain.ValidationError
	if errors.As(err, &verr) {
		return verr.Reason
	}
	return err.Error()
}

func (w WorkerWebConfig) check(ch *checker) {
	ch.bindAddress("worker_web.bind_address", w.BindAddress)
	ch.positive("worker_web.request_timeout_ms", w.RequestTimeoutMs)
	w.HTTP.check(ch, "worker_web.http", w.RequestTimeoutMs)
	ch.tokens("worker_web.tokens", w.Tokens)
	if w.AuthenticationEnabled && len(w.Tokens) == 0 {
		ch.add("worker_web.tokens", "at least one token is required when authentication_enabled is true")
	}
	ch.positive("worker_web.health_check_interval_seconds", w.HealthCheckIntervalSeconds)
}

func (o OrchestrationConfig) check(ch *checker) {
	ch.bindAddress("orchestration.bind_address", o.BindAddress)
	ch.positive("orchestration.cycle_interval_ms", o.CycleIntervalMs)
	ch.positive("orchestration.sweep_interval_ms", o.SweepIntervalMs)
	ch.between("orchestration.tasks_per_cycle", o.TasksPerCycle, 1, maxTasksPerCycle)
	ch.positive("orchestration.claim_timeout_seconds", o.ClaimTimeoutSeconds)
	ch.positive("orchestration.backoff.max_backoff_seconds", o.Backoff.MaxBackoffSeconds)
	ch.positive("orchestration.request_timeout_ms", o.RequestTimeoutMs)
	o.HTTP.check(ch, "orchestration.http", o.RequestTimeoutMs)
	ch.positive("orchestration.max_body_bytes", o.MaxBodyBytes)
	ch.positive("orchestration.shutdown_timeout_seconds", o.ShutdownTimeoutSeconds)
	ch.positive("orchestration.idempotency.retention_hours", o.Idempotency.RetentionHours)
	ch.positive("orchestration.staleness.enqueued_timeout_seconds", o.Staleness.EnqueuedTimeoutSeconds)
	ch.positive("orchestration.staleness.task_timeout_seconds", o.Staleness.TaskTimeoutSeconds)
	ch.positive("orchestration.staleness.check_interval_seconds", o.Staleness.CheckIntervalSeconds)
	ch.oneOf("orchestration.staleness.action", o.Staleness.Action, StalenessActionError, StalenessActionAlert)
	ch.between("orchestration.ui.refresh_seconds", o.UI.RefreshSeconds, 0, 3600)
	o.Auth.check(ch)
}

func (a OrchestrationAuthConfig) check(ch *checker) {
	ch.tokens("orchestration.auth.tokens", a.Tokens)
	for i, r := range a.ProtectedRoutes {
		if r == "*" {
			continue
		}
		method, route, ok := strings.Cut(r, " ")
		if !ok || !slices.Contains(httpMethods, method) || !strings.HasPrefix(route, "/") || strings.Contains(route, " ") {
			ch.add(fmt.Sprintf("orchestration.auth.protected_routes[%d]", i),
				"must be \"<METHOD> <path template>\" such as \"DELETE /v1/tasks/{task_uuid}\", got %q", r)
		}
	}
	if a.JWTPublicKey != "" {
		if block, _ := pem.Decode([]byte(a.JWTPublicKey)); block == nil {
			ch.add("orchestration.auth.jwt_public_key", "must be a PEM-encoded public key")
		}
		if a.JWTIssuer == "" {
			ch.add("orchestration.auth.jwt_issuer", "must not be empty when jwt_public_key is set")
		}
		if a.JWTAudience == "" {
			ch.add("orchestration.auth.jwt_audience", "must not be empty when jwt_public_key is set")
		}
	}
	if a.Enabled && len(a.Tokens) == 0 && a.JWTPublicKey == "" {
		ch.add("orchestration.auth", "enabled needs tokens or jwt_public_key, otherwise no request could pass")
	}
}

func (o OrchestrationAPIConfig) check(ch *checker) {
	u, err := url.Parse(o.BaseURL)
	switch {
	case err != nil:
		ch.add("orchestration_api.base_url", "is not a valid URL: %s", redact.URL(err.Error()))
	case u.Scheme != "http" && u.Scheme != "https":
		ch.add("orchestration_api.base_url", "scheme must be http or https, got %q", redact.URL(o.BaseURL))
	case u.Host == "":
		ch.add("orchestration_api.base_url", "must include a host, got %q", redact.URL(o.BaseURL))
	}
	ch.positive("orchestration_api.timeout_ms", o.TimeoutMs)
	ch.between("orchestration_api.max_retries", o.MaxRetries, 0, maxClientRetries)
	b := o.Backoff
	ch.positive("orchestration_api.backoff.initial_ms", b.InitialMs)
	if b.MaxMs < b.InitialMs {
		ch.add("orchestration_api.backoff.max_ms", "must be at least initial_ms (%d), got %d", b.InitialMs, b.MaxMs)
	}
	if b.Multiplier < 1 {
		ch.add("orchestration_api.backoff.multiplier", "must be at least 1, got %g", b.Multiplier)
	}
	if b.Jitter < 0 || b.Jitter > 1 {
		ch.add("orchestration_api.backoff.jitter", "must be between 0 and 1, got %g", b.Jitter)
	}
	if strings.ContainsAny(o.AuthToken, " \t\r\n") {
		ch.add("orchestration_api.auth_token", "must not contain whitespace")
	}
	cb := o.CircuitBreaker
	ch.positive("orchestration_api.circuit_breaker.failure_threshold", cb.FailureThreshold)
	ch.positive("orchestration_api.circuit_breaker.timeout_seconds", cb.TimeoutSeconds)
	ch.positive("orchestration_api.circuit_breaker.half_open_max_requests", cb.HalfOpenMaxRequests)
}

func (h HTTPServerConfig) check(ch *checker, prefix string, requestTimeoutMs int) {
	ch.positive(prefix+".read_header_timeout_ms", h.ReadHeaderTimeoutMs)
	ch.positive(prefix+".read_timeout_ms", h.ReadTimeoutMs)
	ch.positive(prefix+".idle_timeout_ms", h.IdleTimeoutMs)
	ch.positive(prefix+".max_header_bytes", h.MaxHeaderBytes)
	ch.positive(prefix+".max_in_flight_requests", h.MaxInFlightRequests)
	if h.WriteTimeoutMs <= requestTimeoutMs {
		ch.add(prefix+".write_timeout_ms", "must exceed the request timeout (%d ms) so a 408 can still be written, got %d", requestTimeoutMs, h.WriteTimeoutMs)
	}
}
