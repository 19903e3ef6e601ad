// Package config loads and validates the settings of the Tasker services
// (worker, orchestration, taskerctl) with koanf.
//
// Layers, later wins: built-in defaults (the Default* constants) →
// base/*.toml (sorted by file name) → environments/<env>/*.toml →
// environment variables. Tables merge key by key; scalars and arrays
// replace. See docs/configuration.md for every key and the env rule.
package config

// Config is the complete configuration of one Tasker process. Every service
// loads the same tree and reads the sections it needs, so one set of files
// (and one env rule) describes a whole deployment.
type Config struct {
	// Environment is the detected or requested environment (development,
	// test or production). It is not a file key: it chooses which
	// environments/<env> directory is merged, and templates are resolved for
	// it (contract D-q).
	Environment string `koanf:"-"`
	// Source says where the files came from: the config directory path, or
	// "embedded" when the built-in copy was used because no directory was
	// found. Logged at start so an operator can tell which files applied.
	Source string `koanf:"-"`

	// Database is the PostgreSQL connection shared by stores and queues.
	Database DatabaseConfig `koanf:"database"`
	// Pgmq tunes reading from the pgmq queues (both services).
	Pgmq PgmqConfig `koanf:"pgmq"`
	// CommandProcessing bounds the worker's command channel.
	CommandProcessing CommandProcessingConfig `koanf:"command_processing"`
	// EventIntegration sizes the worker's in-process event bus.
	EventIntegration EventIntegrationConfig `koanf:"event_integration"`
	// Worker holds what the worker serves and how many steps it runs.
	Worker WorkerConfig `koanf:"worker"`
	// WorkerWeb configures the worker's HTTP API (contract §8).
	WorkerWeb WorkerWebConfig `koanf:"worker_web"`
	// Orchestration configures the orchestration service and its HTTP API
	// (contract §7, §10).
	Orchestration OrchestrationConfig `koanf:"orchestration"`
	// OrchestrationAPI configures the HTTP client that workers and taskerctl
	// use to call the orchestration.
	OrchestrationAPI OrchestrationAPIConfig `koanf:"orchestration_api"`
	// Logging chooses the zap level and encoder.
	Logging LoggingConfig `koanf:"logging"`
}

// DatabaseConfig is the PostgreSQL connection.
type DatabaseConfig struct {
	// URL is the lib/pq connection string (postgres:// URL or key=value DSN).
	// Empty by default because there is no safe guess; DATABASE_URL sets it,
	// and both services refuse to start without it.
	URL string `koanf:"url"`
	// Pool sizes the database/sql pool.
	Pool PoolConfig `koanf:"pool"`
}

// PoolConfig sizes the database/sql connection pool.
type PoolConfig struct {
	// MaxOpenConns caps open connections. 8 per service, plus the LISTEN
	// connection outside the pool, lets ten services share PostgreSQL's
	// default max_connections = 100. It is enough for the worker's default 10
	// concurrent steps because claims and outcomes are group-committed (the
	// handlers share transactions rather than holding one connection each)
	// and step reads and set_vt heartbeats are short autocommit statements;
	// no code path holds a connection while waiting for another one (see
	// postgres.PoolConfig).
	MaxOpenConns int `koanf:"max_open_conns"`
	// MaxIdleConns keeps this many idle connections for reuse; must not
	// exceed max_open_conns. The default equals max_open_conns, so a busy
	// service does not close and reopen connections under load.
	MaxIdleConns int `koanf:"max_idle_conns"`
	// ConnMaxLifetimeSeconds recycles connections after this age so that
	// failovers and pgbouncer rebalancing are picked up; 0 means forever.
	ConnMaxLifetimeSeconds int `koanf:"conn_max_lifetime_seconds"`
	// ConnectTimeoutSeconds bounds establishing one connection (lib/pq
	// connect_timeout) so a dead server fails start-up instead of hanging.
	ConnectTimeoutSeconds int `koanf:"connect_timeout_seconds"`
}

// PgmqConfig tunes queue reads (contract §4.7).
type PgmqConfig struct {
	// PollIntervalMs is the fallback poll period. NOTIFY wakes consumers
	// immediately; polling still runs because notifications can be lost
	// (reconnects, queues created before the trigger) — contract D-h.
	PollIntervalMs int `koanf:"poll_interval_ms"`
	// VisibilityTimeoutSeconds hides a read message for this long. A holder
	// extends it every vt/3 while it works, so a crash redelivers within vt.
	VisibilityTimeoutSeconds int `koanf:"visibility_timeout_seconds"`
	// BatchSize is the number of messages taken per pgmq.read (1..1000).
	BatchSize int `koanf:"batch_size"`
	// MaxReceiveCount archives a message as poison once its read_ct exceeds
	// this; 0 disables. It must leave room for the redeliveries that happen
	// before an abandoned step reaches worker.step_claim_timeout_seconds
	// (checked by ValidateWorker), otherwise the step would be stranded.
	MaxReceiveCount int `koanf:"max_receive_count"`
	// ShutdownTimeoutSeconds is how long a service waits for in-flight work
	// after SIGTERM before persisting the rest as shutdown failures.
	ShutdownTimeoutSeconds int `koanf:"shutdown_timeout_seconds"`
	// ListenEnabled turns LISTEN/NOTIFY wake-ups on; polling runs either way.
	// Disable it behind poolers in transaction mode, where LISTEN is unsafe.
	ListenEnabled bool `koanf:"listen_enabled"`
}

// CommandProcessingConfig bounds the worker's command channel (issue 3).
type CommandProcessingConfig struct {
	// CommandBufferSize is the channel capacity; a full channel blocks the
	// sender (back-pressure) instead of dropping commands.
	CommandBufferSize int `koanf:"command_buffer_size"`
	// CommandTimeoutMs bounds handling one command (never a step handler).
	CommandTimeoutMs int `koanf:"command_timeout_ms"`
	// MaxConcurrentCommands caps commands in flight at once.
	MaxConcurrentCommands int `koanf:"max_concurrent_commands"`
}

// EventIntegrationConfig sizes the worker's in-process event bus (issue 3).
type EventIntegrationConfig struct {
	// PublisherBufferSize is the bus's inbound channel capacity.
	PublisherBufferSize int `koanf:"publisher_buffer_size"`
	// SubscriberBufferSize is each subscriber's channel capacity.
	SubscriberBufferSize int `koanf:"subscriber_buffer_size"`
	// CorrelationTimeoutSeconds fails a published step as "timeout" when no
	// completion event arrives in time; 300 matches step_claim_timeout.
	CorrelationTimeoutSeconds int `koanf:"correlation_timeout_seconds"`
}

// WorkerConfig is what the worker serves (contract §4.7, §8, §9).
type WorkerConfig struct {
	// WorkerID names this worker in claims and the API. Empty (the default)
	// means "generate worker-<uuid v7> at start" via EnsureID, so replicas
	// sharing one config file still get distinct ids.
	WorkerID string `koanf:"worker_id"`
	// Namespaces are the namespaces served; each needs a {ns}_queue. No
	// default: a worker must be told what to serve (ValidateWorker).
	// Each must match ^[a-z0-9_]{1,41}$ (contract D-k).
	Namespaces []string `koanf:"namespaces"`
	// MaxConcurrentSteps caps handlers running at once; intake stops reading
	// while the cap is reached (back-pressure, never drop).
	MaxConcurrentSteps int `koanf:"max_concurrent_steps"`
	// StepClaimTimeoutSeconds: an in_progress step whose message is
	// redelivered after this long is treated as abandoned (worker_lost, D-g).
	StepClaimTimeoutSeconds int `koanf:"step_claim_timeout_seconds"`
	// TemplateDir is searched recursively for *.yml/*.yaml task templates;
	// relative paths are relative to the working directory.
	TemplateDir string `koanf:"template_dir"`
	// SkipInvalidTemplates logs one line per invalid template file (file,
	// line and reason) and starts with the valid ones, as the contract says
	// (§6.3: log it, skip it, continue) — so one broken file does not take a
	// whole worker fleet down. Set it false to refuse to start instead
	// (stricter deployments, CI smoke tests). Default true.
	SkipInvalidTemplates bool `koanf:"skip_invalid_templates"`
	// Limits bound what one queue message may cost the worker.
	Limits WorkerLimitsConfig `koanf:"limits"`
	// RequireHandlers refuses to start (exit 1, one line naming what is
	// missing) when a served namespace has no template or a template's
	// handler.callable has no registered handler. On by default: otherwise
	// the worker starts and every such step fails later with handler_not_found.
	// Off, each missing callable is a WARN.
	RequireHandlers bool `koanf:"require_handlers"`
}

// WorkerWebConfig configures the worker HTTP API (contract §8, issue 5).
type WorkerWebConfig struct {
	// Enabled starts the HTTP server; off for pure queue workers.
	Enabled bool `koanf:"enabled"`
	// BindAddress is host:port; 0.0.0.0 so container probes can reach it.
	// Port 0 picks a free port (tests).
	BindAddress string `koanf:"bind_address"`
	// RequestTimeoutMs answers 408 after this long (contract: 30 s).
	RequestTimeoutMs int `koanf:"request_timeout_ms"`
	// AuthenticationEnabled requires "Authorization: Bearer <token>" with one
	// of Tokens on every non-health route. Off by default like the reference.
	AuthenticationEnabled bool `koanf:"authentication_enabled"`
	// Tokens are the accepted bearer tokens (compared in constant time).
	// Prefer TASKER_WORKER_WEB__TOKENS over files so secrets stay out of git.
	Tokens []string `koanf:"tokens"`
	// CORSEnabled answers CORS for any origin/method/header (contract §8).
	CORSEnabled bool `koanf:"cors_enabled"`
	// CORSAllowedOrigins are the origins CORS answers ("*" for any); empty
	// by default, so no cross-origin browser access (issue 13).
	CORSAllowedOrigins []string `koanf:"cors_allowed_origins"`
	// MetricsEnabled serves /metrics and /metrics/worker.
	MetricsEnabled bool `koanf:"metrics_enabled"`
	// HealthCheckIntervalSeconds is how often readiness re-checks the
	// database in the background, so probes never block on a slow database.
	HealthCheckIntervalSeconds int `koanf:"health_check_interval_seconds"`
	// JWTPublicKey is a PEM RSA public key; when set (with authentication
	// enabled) RS256 JWTs are accepted besides Tokens, and their
	// permissions and worker_namespaces claims are enforced per route.
	JWTPublicKey string `koanf:"jwt_public_key"`
	// JWTIssuer is the required "iss" claim.
	JWTIssuer string `koanf:"jwt_issuer"`
	// JWTAudience is the required "aud" claim.
	JWTAudience string `koanf:"jwt_audience"`
	// HTTP bounds connections and concurrent requests (issue 13).
	HTTP HTTPServerConfig `koanf:"http"`
}

// OrchestrationConfig configures the orchestration service (contract §7, §10).
type OrchestrationConfig struct {
	// BindAddress is host:port of the HTTP API (contract default 0.0.0.0:8080).
	BindAddress string `koanf:"bind_address"`
	// CycleIntervalMs is the period of the enqueue cycle (contract §10.2:
	// 250 ms). The cycle enqueues the tasks whose retry backoff expired,
	// scheduled from result processing, so it bounds how late a retry runs;
	// it scans nothing.
	CycleIntervalMs int `koanf:"cycle_interval_ms"`
	// SweepIntervalMs is the period of the full candidate scan of §10.2 step
	// 1, the safety net for what no wake-up covers (a trigger lost with a
	// process, retries scheduled by an instance that stopped, steps made
	// ready by other writers). Its cost grows with the tasks in flight, so it
	// runs much less often than the cycle: 5 s.
	SweepIntervalMs int `koanf:"sweep_interval_ms"`
	// TasksPerCycle caps the tasks of one candidate scan (a sweep scans again
	// while a scan comes back full) so one instance does not
	// starve the others (contract: 5).
	TasksPerCycle int `koanf:"tasks_per_cycle"`
	// ClaimTimeoutSeconds is how long another instance's claim on a task is
	// honoured (matches the TaskRequest claim_timeout_seconds default, 60).
	ClaimTimeoutSeconds int `koanf:"claim_timeout_seconds"`
	// Backoff shapes the retry delay written after a retryable failure.
	Backoff OrchestrationBackoffConfig `koanf:"backoff"`
	// RequestTimeoutMs answers 408 TIMEOUT after this long (contract: 30 s).
	RequestTimeoutMs int `koanf:"request_timeout_ms"`
	// CORSAllowedOrigins are the origins answered with CORS headers ("*"
	// for any). Empty by default: a browser page elsewhere cannot call the
	// API (issue 13).
	CORSAllowedOrigins []string `koanf:"cors_allowed_origins"`
	// MaxBodyBytes rejects larger request bodies before parsing. 2 MiB leaves
	// room for the 1 MiB context limit of contract §7.2 plus the envelope.
	MaxBodyBytes int `koanf:"max_body_bytes"`
	// ShutdownTimeoutSeconds bounds draining HTTP requests and loops.
	ShutdownTimeoutSeconds int `koanf:"shutdown_timeout_seconds"`
	// Auth protects selected routes (contract §7.1); off by default.
	Auth OrchestrationAuthConfig `koanf:"auth"`
	// HTTP bounds connections and concurrent requests (issue 13).
	HTTP HTTPServerConfig `koanf:"http"`
	// Idempotency keeps POST /v1/tasks Idempotency-Keys (issue 12).
	Idempotency OrchestrationIdempotencyConfig `koanf:"idempotency"`
	// Staleness finds work that can never finish and dead-letters it (issue 12).
	Staleness OrchestrationStalenessConfig `koanf:"staleness"`
	// UI is the web dashboard served under /ui/.
	UI OrchestrationUIConfig `koanf:"ui"`
}

// OrchestrationIdempotencyConfig is how long Idempotency-Keys are honoured.
type OrchestrationIdempotencyConfig struct {
	// RetentionHours keeps a key (and replays its task) this long after the
	// first request; older keys are deleted hourly. 24 h covers any client
	// retry policy, including a retry on the next day's batch run.
	RetentionHours int `koanf:"retention_hours"`
}

// OrchestrationStalenessConfig tunes the staleness detector: what counts as
// stuck and what happens then. Every instance runs it; they skip each
// other's locked rows, so running several is safe.
type OrchestrationStalenessConfig struct {
	// Enabled runs the detector.
	Enabled bool `koanf:"enabled"`
	// EnqueuedTimeoutSeconds: a step enqueued this long with no claim (no
	// worker serves its namespace, or its message was lost) is stale. 600 s is
	// far beyond any healthy queue wait yet short enough for an operator to care.
	EnqueuedTimeoutSeconds int `koanf:"enqueued_timeout_seconds"`
	// TaskTimeoutSeconds: a task in_progress with no transition of its own or
	// of any step for this long is stale. One hour, so long handlers
	// (which write no transition while they run) are not flagged.
	TaskTimeoutSeconds int `koanf:"task_timeout_seconds"`
	// CheckIntervalSeconds is how often each instance looks.
	CheckIntervalSeconds int `koanf:"check_interval_seconds"`
	// Action is "error" (move the task to error with the reason, the
	// default: nothing else will ever finish it) or "alert" (only the DLQ
	// entry, the WARN line and the metric; the task is left as it is).
	Action string `koanf:"action"`
}

// OrchestrationUIConfig is the web dashboard (/ui/) of the orchestration.
type OrchestrationUIConfig struct {
	// Enabled serves the dashboard. On by default: it only reads, and when
	// auth is enabled every /ui route needs a token like the API.
	Enabled bool `koanf:"enabled"`
	// RefreshSeconds is the live-refresh period of the list pages and of a
	// running task's page (5 s: watchable, and cheap for the database);
	// 0 turns refresh off.
	RefreshSeconds int `koanf:"refresh_seconds"`
}

// OrchestrationBackoffConfig is the retry backoff of contract §10.3.
type OrchestrationBackoffConfig struct {
	// MaxBackoffSeconds caps both the exponential 2^attempts delay and a
	// handler's retry-after hint (contract: 300).
	MaxBackoffSeconds int `koanf:"max_backoff_seconds"`
	// JitterEnabled adds ±10 % jitter so retries of many tasks do not align;
	// the test environment turns it off to make timings assertable.
	JitterEnabled bool `koanf:"jitter_enabled"`
}

// OrchestrationAuthConfig is the optional route protection of contract §7.1.
type OrchestrationAuthConfig struct {
	// Enabled turns protection on for ProtectedRoutes. Off by default like
	// the reference; health and metrics routes are never protected.
	Enabled bool `koanf:"enabled"`
	// Tokens are static bearer tokens accepted on protected routes.
	Tokens []string `koanf:"tokens"`
	// ProtectedRoutes are "<METHOD> <path template>" entries that need a
	// token. Defaults are the two destructive routes of contract §7.1.
	ProtectedRoutes []string `koanf:"protected_routes"`
	// JWTPublicKey is a PEM RSA public key; when set, bearer JWTs signed
	// RS256 are accepted too (contract §7.1).
	JWTPublicKey string `koanf:"jwt_public_key"`
	// JWTIssuer is the required "iss" claim (contract default tasker-core).
	JWTIssuer string `koanf:"jwt_issuer"`
	// JWTAudience is the required "aud" claim (contract default tasker-api).
	JWTAudience string `koanf:"jwt_audience"`
}

// OrchestrationAPIConfig configures the orchestration HTTP client (issue 6).
type OrchestrationAPIConfig struct {
	// BaseURL is the orchestration's http(s) root, without /v1.
	BaseURL string `koanf:"base_url"`
	// TimeoutMs bounds one HTTP attempt (not the whole retry sequence).
	TimeoutMs int `koanf:"timeout_ms"`
	// MaxRetries is the number of retries after the first attempt, only for
	// network errors, 5xx and 429; 0 disables retrying.
	MaxRetries int `koanf:"max_retries"`
	// Backoff spaces the retries (cenkalti/backoff exponential).
	Backoff ClientBackoffConfig `koanf:"backoff"`
	// AuthToken is sent as "Authorization: Bearer <token>" when non-empty.
	AuthToken string `koanf:"auth_token"`
	// CircuitBreaker fails fast while the orchestration is down.
	CircuitBreaker CircuitBreakerConfig `koanf:"circuit_breaker"`
}

// ClientBackoffConfig is the client's exponential retry backoff.
type ClientBackoffConfig struct {
	// InitialMs is the first retry delay.
	InitialMs int `koanf:"initial_ms"`
	// MaxMs caps a single delay; must be ≥ initial_ms.
	MaxMs int `koanf:"max_ms"`
	// Multiplier grows the delay per retry; must be ≥ 1.
	Multiplier float64 `koanf:"multiplier"`
	// Jitter is the randomization factor in [0, 1] (delay ± jitter×delay);
	// 0 disables it. 0.5 is cenkalti/backoff's default and de-synchronises
	// many workers retrying against one recovering orchestration.
	Jitter float64 `koanf:"jitter"`
}

// CircuitBreakerConfig maps to sony/gobreaker settings.
type CircuitBreakerConfig struct {
	// Enabled wraps client calls in the breaker.
	Enabled bool `koanf:"enabled"`
	// FailureThreshold opens the breaker after this many consecutive failures.
	FailureThreshold int `koanf:"failure_threshold"`
	// TimeoutSeconds is how long the breaker stays open before half-opening.
	TimeoutSeconds int `koanf:"timeout_seconds"`
	// HalfOpenMaxRequests is the number of trial requests allowed while
	// half-open; that many successes close the breaker.
	HalfOpenMaxRequests int `koanf:"half_open_max_requests"`
}

// LoggingConfig chooses the zap logger.
type LoggingConfig struct {
	// Level is debug, info, warn or error.
	Level string `koanf:"level"`
	// Format is json (log shippers; production default) or console
	// (humans; development and test default).
	Format string `koanf:"format"`
}

// WorkerLimitsConfig bounds the worker's inputs (issue 13).
type WorkerLimitsConfig struct {
	// MaxMessageBytes: a larger step message is poison and archived without
	// being processed. A valid one is ~100 bytes; 64 KiB leaves room for
	// extra keys while a 20 MB message cannot be decoded and logged.
	MaxMessageBytes int `koanf:"max_message_bytes"`
}

// HTTPServerConfig bounds one HTTP server's connections (issue 13: slow
// bodies and idle keep-alive connections were held indefinitely).
type HTTPServerConfig struct {
	// ReadHeaderTimeoutMs closes a connection whose headers are late (slowloris).
	ReadHeaderTimeoutMs int `koanf:"read_header_timeout_ms"`
	// ReadTimeoutMs bounds reading a whole request, body included.
	ReadTimeoutMs int `koanf:"read_timeout_ms"`
	// WriteTimeoutMs bounds headers-read to response-written; it must exceed
	// the request timeout so a 408 can still be written.
	WriteTimeoutMs int `koanf:"write_timeout_ms"`
	// IdleTimeoutMs closes keep-alive connections idle this long.
	IdleTimeoutMs int `koanf:"idle_timeout_ms"`
	// MaxHeaderBytes caps the request line and headers.
	MaxHeaderBytes int `koanf:"max_header_bytes"`
	// MaxInFlightRequests caps requests served at once; beyond it requests
	// get 503 with Retry-After (probes exempt) instead of queueing on the
	// database pool.
	MaxInFlightRequests int `koanf:"max_in_flight_requests"`
}
