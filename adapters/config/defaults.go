package config

// Environment names accepted by Load (contract §4.7).
const (
	EnvDevelopment = "development"
	EnvTest        = "test"
	EnvProduction  = "production"
)

// Built-in defaults: the lowest configuration layer. configs/tasker/base
// repeats them so operators can read the values in one place; a test keeps
// the two identical. Why each value was chosen is on the Config field of the
// same name.
const (
	// database.pool.*
	DefaultDatabaseMaxOpenConns           = 8
	DefaultDatabaseMaxIdleConns           = 8
	DefaultDatabaseConnMaxLifetimeSeconds = 1800
	DefaultDatabaseConnectTimeoutSeconds  = 10

	// pgmq.* (contract §4.7)
	DefaultPollIntervalMs           = 500
	DefaultVisibilityTimeoutSeconds = 30
	DefaultBatchSize                = 10
	DefaultMaxReceiveCount          = 100
	DefaultShutdownTimeoutSeconds   = 30
	// DefaultUIEnabled serves the dashboard at /ui/.
	DefaultUIEnabled = true
	// DefaultUIRefreshSeconds is the dashboard's live-refresh period.
	DefaultUIRefreshSeconds = 5
	DefaultListenEnabled    = true

	// command_processing.*
	DefaultCommandBufferSize     = 1000
	DefaultCommandTimeoutMs      = 30000
	DefaultMaxConcurrentCommands = 100

	// event_integration.*
	DefaultPublisherBufferSize       = 1000
	DefaultSubscriberBufferSize      = 1000
	DefaultCorrelationTimeoutSeconds = 300

	// worker.*
	DefaultMaxConcurrentSteps      = 10
	DefaultStepClaimTimeoutSeconds = 300
	DefaultTemplateDir             = "configs/tasks"
	DefaultRequireHandlers         = true
	// DefaultSkipInvalidTemplates follows the contract (§6.3): an invalid
	// template file is logged and skipped, start-up continues.
	DefaultSkipInvalidTemplates = true

	// worker_web.* (contract §8)
	DefaultWorkerWebEnabled           = true
	DefaultWorkerWebBindAddress       = "0.0.0.0:8081"
	DefaultRequestTimeoutMs           = 30000
	DefaultCORSEnabled                = true
	DefaultMetricsEnabled             = true
	DefaultHealthCheckIntervalSeconds = 10

	// orchestration.* (contract §7, §10)
	DefaultOrchestrationBindAddress  = "0.0.0.0:8080"
	DefaultCycleIntervalMs           = 250
	DefaultSweepIntervalMs           = 5000
	DefaultTasksPerCycle             = 5
	DefaultClaimTimeoutSeconds       = 60
	DefaultMaxBackoffSeconds         = 300
	DefaultBackoffJitterEnabled      = true
	DefaultMaxBodyBytes              = 2 << 20
	DefaultJWTIssuer                 = "tasker-core"
	DefaultJWTAudience               = "tasker-api"
	DefaultIdempotencyRetentionHours = 24
	DefaultStalenessEnabled          = true
	DefaultEnqueuedTimeoutSeconds    = 600
	DefaultTaskTimeoutSeconds        = 3600
	DefaultStalenessCheckSeconds     = 30
	DefaultStalenessAction           = StalenessActionError

	// *.http.* (issue 13)
	DefaultHTTPReadHeaderTimeoutMs = 5000
	DefaultHTTPReadTimeoutMs       = 15000
	DefaultHTTPWriteTimeoutMs      = 45000
	DefaultHTTPIdleTimeoutMs       = 30000
	DefaultHTTPMaxHeaderBytes      = 65536
	DefaultHTTPMaxInFlight         = 256

	// worker.limits.*
	DefaultMaxMessageBytes = 65536

	// orchestration_api.*
	DefaultOrchestrationAPIBaseURL        = "http://localhost:8080"
	DefaultOrchestrationAPITimeoutMs      = 30000
	DefaultOrchestrationAPIMaxRetries     = 3
	DefaultClientBackoffInitialMs         = 100
	DefaultClientBackoffMaxMs             = 5000
	DefaultClientBackoffMultiplier        = 2.0
	DefaultClientBackoffJitter            = 0.5
	DefaultCircuitBreakerEnabled          = true
	DefaultCircuitBreakerFailureThreshold = 5
	DefaultCircuitBreakerTimeoutSeconds   = 30
	DefaultCircuitBreakerHalfOpenRequests = 3

	// logging.*
	DefaultLogLevel             = "info"
	DefaultLogFormatProduction  = "json"
	DefaultLogFormatDevelopment = "console"

	// DefaultConfigDir is where Load looks for base/ and environments/,
	// relative to the working directory, when neither LoadOptions.ConfigDir
	// nor TASKER_CONFIG_DIR is set.
	DefaultConfigDir = "configs/tasker"
)

// Names the loader reads from the process environment.
const (
	// EnvVarEnvironment selects the environment; RAILS_ENV, RACK_ENV and
	// APP_ENV are consulted after it (contract §4.7).
	EnvVarEnvironment = "TASKER_ENV"
	// EnvVarConfigDir overrides DefaultConfigDir.
	EnvVarConfigDir = "TASKER_CONFIG_DIR"
	// EnvVarDatabaseURL is the conventional database URL, mapped to
	// database.url (TASKER_DATABASE__URL wins when both are set).
	EnvVarDatabaseURL = "DATABASE_URL"
)

const (
	envPrefix           = "TASKER_"
	envNestingSeparator = "__"
	embeddedSourceName  = "embedded"
	maxBatchSize        = 1000
	maxTasksPerCycle    = 1000
	maxClientRetries    = 100
	maxWorkerIDLength   = 128
)

// Values of orchestration.staleness.action.
const (
	StalenessActionError = "error"
	StalenessActionAlert = "alert"
)

// DefaultProtectedRoutes returns the routes protected when orchestration
// auth is enabled and nothing else is configured: "*", every route but the
// probes and /metrics (issue 13: the contract's short list left task
// contexts and step results readable without a token). A function rather
// than a variable so callers cannot mutate the shared default.
func DefaultProtectedRoutes() []string {
	return []string{"*"}
}

// DefaultHTTPServer is the *.http table's default.
func DefaultHTTPServer() HTTPServerConfig {
	return HTTPServerConfig{ReadHeaderTimeoutMs: DefaultHTTPReadHeaderTimeoutMs, ReadTimeoutMs: DefaultHTTPReadTimeoutMs,
		WriteTimeoutMs: DefaultHTTPWriteTimeoutMs, IdleTimeoutMs: DefaultHTTPIdleTimeoutMs,
		MaxHeaderBytes: DefaultHTTPMaxHeaderBytes, MaxInFlightRequests: DefaultHTTPMaxInFlight}
}

// DefaultLogFormat is json in production (for log shippers) and console
// elsewhere (for humans reading a terminal or test output).
func DefaultLogFormat(environment string) string {
	if environment == EnvProduction {
		return DefaultLogFormatProduction
	}
	return DefaultLogFormatDevelopment
}

// Defaults returns the built-in configuration for an environment, before any
// file or environment variable. Tests of other packages use it to build a
// valid Config without touching the file system.
func Defaults(environment string) Config {
	return Config{
		Environment: environment,
		Database: DatabaseConfig{Pool: PoolConfig{
			MaxOpenConns:           DefaultDatabaseMaxOpenConns,
			MaxIdleConns:           DefaultDatabaseMaxIdleConns,
			ConnMaxLifetimeSeconds: DefaultDatabaseConnMaxLifetimeSeconds,
			ConnectTimeoutSeconds:  DefaultDatabaseConnectTimeoutSeconds,
		}},
		Pgmq: PgmqConfig{
			PollIntervalMs:           DefaultPollIntervalMs,
			VisibilityTimeoutSeconds: DefaultVisibilityTimeoutSeconds,
			BatchSize:                DefaultBatchSize,
			MaxReceiveCount:          DefaultMaxReceiveCount,
			ShutdownTimeoutSeconds:   DefaultShutdownTimeoutSeconds,
			ListenEnabled:            DefaultListenEnabled,
		},
		CommandProcessing: CommandProcessingConfig{
			CommandBufferSize:     DefaultCommandBufferSize,
			CommandTimeoutMs:      DefaultCommandTimeoutMs,
			MaxConcurrentCommands: DefaultMaxConcurrentCommands,
		},
		EventIntegration: EventIntegrationConfig{
			PublisherBufferSize:       DefaultPublisherBufferSize,
			SubscriberBufferSize:      DefaultSubscriberBufferSize,
			CorrelationTimeoutSeconds: DefaultCorrelationTimeoutSeconds,
		},
		Worker: WorkerConfig{
			Namespaces:              []string{},
			MaxConcurrentSteps:      DefaultMaxConcurrentSteps,
			StepClaimTimeoutSeconds: DefaultStepClaimTimeoutSeconds,
			TemplateDir:             DefaultTemplateDir,
			SkipInvalidTemplates:    DefaultSkipInvalidTemplates,
			Limits:                  WorkerLimitsConfig{MaxMessageBytes: DefaultMaxMessageBytes},
			RequireHandlers:         DefaultRequireHandlers,
		},
		WorkerWeb: WorkerWebConfig{
			Enabled:                    DefaultWorkerWebEnabled,
			BindAddress:                DefaultWorkerWebBindAddress,
			RequestTimeoutMs:           DefaultRequestTimeoutMs,
			Tokens:                     []string{},
			CORSEnabled:                DefaultCORSEnabled,
			CORSAllowedOrigins:         []string{},
			JWTIssuer:                  DefaultJWTIssuer,
			JWTAudience:                DefaultJWTAudience,
			HTTP:                       DefaultHTTPServer(),
			MetricsEnabled:             DefaultMetricsEnabled,
			HealthCheckIntervalSeconds: DefaultHealthCheckIntervalSeconds,
		},
		Orchestration: OrchestrationConfig{
			BindAddress:         DefaultOrchestrationBindAddress,
			CycleIntervalMs:     DefaultCycleIntervalMs,
			SweepIntervalMs:     DefaultSweepIntervalMs,
			TasksPerCycle:       DefaultTasksPerCycle,
			ClaimTimeoutSeconds: DefaultClaimTimeoutSeconds,
			Backoff: OrchestrationBackoffConfig{
				MaxBackoffSeconds: DefaultMaxBackoffSeconds,
				JitterEnabled:     DefaultBackoffJitterEnabled,
			},
			RequestTimeoutMs:       DefaultRequestTimeoutMs,
			MaxBodyBytes:           DefaultMaxBodyBytes,
			CORSAllowedOrigins:     []string{},
			HTTP:                   DefaultHTTPServer(),
			ShutdownTimeoutSeconds: DefaultShutdownTimeoutSeconds,
			Auth: OrchestrationAuthConfig{
				Tokens:          []string{},
				ProtectedRoutes: DefaultProtectedRoutes(),
				JWTIssuer:       DefaultJWTIssuer,
				JWTAudience:     DefaultJWTAudience,
			},
			Idempotency: OrchestrationIdempotencyConfig{RetentionHours: DefaultIdempotencyRetentionHours},
			Staleness: OrchestrationStalenessConfig{
				Enabled:                DefaultStalenessEnabled,
				EnqueuedTimeoutSeconds: DefaultEnqueuedTimeoutSeconds,
				TaskTimeoutSeconds:     DefaultTaskTimeoutSeconds,
				CheckIntervalSeconds:   DefaultStalenessCheckSeconds,
				Action:                 DefaultStalenessAction,
			},
			UI: OrchestrationUIConfig{Enabled: DefaultUIEnabled, RefreshSeconds: DefaultUIRefreshSeconds},
		},
		OrchestrationAPI: OrchestrationAPIConfig{
			BaseURL:    DefaultOrchestrationAPIBaseURL,
			TimeoutMs:  DefaultOrchestrationAPITimeoutMs,
			MaxRetries: DefaultOrchestrationAPIMaxRetries,
			Backoff: ClientBackoffConfig{
				InitialMs:  DefaultClientBackoffInitialMs,
				MaxMs:      DefaultClientBackoffMaxMs,
				Multiplier: DefaultClientBackoffMultiplier,
				Jitter:     DefaultClientBackoffJitter,
			},
			CircuitBreaker: CircuitBreakerConfig{
				Enabled:             DefaultCircuitBreakerEnabled,
				FailureThreshold:    DefaultCircuitBreakerFailureThreshold,
				TimeoutSeconds:      DefaultCircuitBreakerTimeoutSeconds,
				HalfOpenMaxRequests: DefaultCircuitBreakerHalfOpenRequests,
			},
		},
		Logging: LoggingConfig{
			Level:  DefaultLogLevel,
			Format: DefaultLogFormat(environment),
		},
	}
}
