package workerapi

import (
	"encoding/json"
	"time"

	"github.com/tasker-systems/tasker-go/domain"
)

// Response bodies of the worker HTTP API (contract §8.2). Field names and
// nullability follow the contract exactly; the OpenAPI document mirrors
// these types and a test validates real responses against it.

// ErrorResponse is every error body of the worker API. Checks is set only
// by a failing readiness probe and names every failing check (D-i).
type ErrorResponse struct {
	Error     string                 `json:"error"`
	Message   string                 `json:"message"`
	Timestamp time.Time              `json:"timestamp"`
	RequestID string                 `json:"request_id"`
	Checks    map[string]HealthCheck `json:"checks,omitempty"`
}

// BasicHealthResponse is the body of /health and /health/live.
type BasicHealthResponse struct {
	Status    string    `json:"status"`
	Timestamp time.Time `json:"timestamp"`
	WorkerID  string    `json:"worker_id"`
}

// HealthCheck is the result of one readiness check (contract HC).
type HealthCheck struct {
	Status      string    `json:"status"`
	Message     *string   `json:"message"`
	DurationMs  uint64    `json:"duration_ms"`
	LastChecked time.Time `json:"last_checked"`
}

// Health check statuses (the health policy's levels).
const (
	StatusHealthy   = string(domain.CheckHealthy)
	StatusDegraded  = string(domain.CheckDegraded)
	StatusUnhealthy = string(domain.CheckUnhealthy)
)

// SystemInfo describes the worker in DetailedHealthResponse.
type SystemInfo struct {
	Version                string   `json:"version"`
	Environment            string   `json:"environment"`
	UptimeSeconds          uint64   `json:"uptime_seconds"`
	WorkerType             string   `json:"worker_type"`
	DatabasePoolSize       uint32   `json:"database_pool_size"`
	CommandProcessorActive bool     `json:"command_processor_active"`
	SupportedNamespaces    []string `json:"supported_namespaces"`
}

// DetailedHealthResponse is the 200 body of /health/ready.
type DetailedHealthResponse struct {
	Status     string                 `json:"status"`
	Timestamp  time.Time              `json:"timestamp"`
	WorkerID   string                 `json:"worker_id"`
	Checks     map[string]HealthCheck `json:"checks"`
	SystemInfo SystemInfo             `json:"system_info"`
}

// MetricValue is one entry of MetricsResponse.
type MetricValue struct {
	Value      float64           `json:"value"`
	MetricType string            `json:"metric_type"`
	Labels     map[string]string `json:"labels"`
	Help       string            `json:"help"`
}

// MetricsResponse is the body of /metrics/worker.
type MetricsResponse struct {
	Metrics   map[string]MetricValue `json:"metrics"`
	Timestamp time.Time              `json:"timestamp"`
	WorkerID  string                 `json:"worker_id"`
}

// StatusConfiguration is WorkerStatusResponse.configuration.
type StatusConfiguration struct {
	Environment         string   `json:"environment"`
	DatabaseConnected   bool     `json:"database_connected"`
	EventSystemEnabled  bool     `json:"event_system_enabled"`
	CommandBufferSize   int      `json:"command_buffer_size"`
	SupportedNamespaces []string `json:"supported_namespaces"`
	// CircuitBreakerState is the OrchestrationAPI client's breaker (project
	// addition to the contract shape; null when no client is wired).
	CircuitBreakerState *string `json:"circuit_breaker_state"`
}

// Capabilities is WorkerStatusResponse.capabilities.
type Capabilities struct {
	CanProcessSteps         bool     `json:"can_process_steps"`
	CanInitializeTasks      bool     `json:"can_initialize_tasks"`
	EventPublishingEnabled  bool     `json:"event_publishing_enabled"`
	HealthMonitoringEnabled bool     `json:"health_monitoring_enabled"`
	SupportedMessageTypes   []string `json:"supported_message_types"`
}

// ErrorDetail is one recent failure in PerformanceMetrics.error_details.
type ErrorDetail struct {
	Timestamp time.Time `json:"timestamp"`
	ErrorType string    `json:"error_type"`
	Message   string    `json:"message"`
	Namespace string    `json:"namespace"`
	StepName  string    `json:"step_name"`
}

// PerformanceMetrics is WorkerStatusResponse.performance_metrics.
type PerformanceMetrics struct {
	StepsProcessedTotal     uint64        `json:"steps_processed_total"`
	StepsProcessedSuccess   uint64        `json:"steps_processed_success"`
	StepsProcessedFailed    uint64        `json:"steps_processed_failed"`
	AverageProcessingTimeMs float64       `json:"average_processing_time_ms"`
	QueueProcessingRate     float64       `json:"queue_processing_rate"`
	LastStepProcessed       *time.Time    `json:"last_step_processed"`
	ErrorDetails            []ErrorDetail `json:"error_details"`
}

// RegisteredHandler is one (namespace, callable) with a Go handler.
type RegisteredHandler struct {
	Namespace    string     `json:"namespace"`
	HandlerClass string     `json:"handler_class"`
	Version      string     `json:"version"`
	LastUsed     *time.Time `json:"last_used"`
	SuccessCount uint64     `json:"success_count"`
	FailureCount uint64     `json:"failure_count"`
}

// WorkerStatusResponse is the body of /status and /status/detailed.
type WorkerStatusResponse struct {
	WorkerID           string              `json:"worker_id"`
	WorkerType         string              `json:"worker_type"`
	Status             string              `json:"status"`
	UptimeSeconds      uint64              `json:"uptime_seconds"`
	Configuration      StatusConfiguration `json:"configuration"`
	Capabilities       Capabilities        `json:"capabilities"`
	PerformanceMetrics PerformanceMetrics  `json:"performance_metrics"`
	RegisteredHandlers []RegisteredHandler `json:"registered_handlers"`
}

// NamespaceHealth is one entry of /status/namespaces.
type NamespaceHealth struct {
	Namespace      string     `json:"namespace"`
	QueueDepth     uint64     `json:"queue_depth"`
	ProcessingRate float64    `json:"processing_rate"`
	ActiveSteps    uint64     `json:"active_steps"`
	HealthStatus   string     `json:"health_status"`
	LastProcessed  *time.Time `json:"last_processed"`
}

// CacheStats describes the template cache.
type CacheStats struct {
	TotalCached           uint64   `json:"total_cached"`
	CacheHits             uint64   `json:"cache_hits"`
	CacheMisses           uint64   `json:"cache_misses"`
	CacheEvictions        uint64   `json:"cache_evictions"`
	OldestEntryAgeSeconds uint64   `json:"oldest_entry_age_seconds"`
	AverageAccessCount    float64  `json:"average_access_count"`
	SupportedNamespaces   []string `json:"supported_namespaces"`
}

// TemplateListResponse is the body of GET /templates.
type TemplateListResponse struct {
	SupportedNamespaces []string    `json:"supported_namespaces"`
	TemplateCount       int         `json:"template_count"`
	CacheStats          *CacheStats `json:"cache_stats"`
	WorkerCapabilities  []string    `json:"worker_capabilities"`
}

// ResolvedTemplate is TemplateResponse.template: the template resolved for
// the worker's environment (D-q).
type ResolvedTemplate struct {
	Template    json.RawMessage `json:"template"`
	Environment string          `json:"environment"`
	ResolvedAt  time.Time       `json:"resolved_at"`
}

// HandlerMetadata is TemplateResponse.handler_metadata.
type HandlerMetadata struct {
	Namespace              string          `json:"namespace"`
	Name                   string          `json:"name"`
	Version                string          `json:"version"`
	HandlerClass           string          `json:"handler_class"`
	ConfigSchema           json.RawMessage `json:"config_schema"`
	DefaultDependentSystem *string         `json:"default_dependent_system"`
	RegisteredAt           time.Time       `json:"registered_at"`
}

// TemplateResponse is the body of GET /templates/{ns}/{name}/{version}.
type TemplateResponse struct {
	Template        ResolvedTemplate `json:"template"`
	HandlerMetadata HandlerMetadata  `json:"handler_metadata"`
	Cached          bool             `json:"cached"`
	CacheAgeSeconds *uint64          `json:"cache_age_seconds"`
	AccessCount     *uint64          `json:"access_count"`
}

// TemplateValidationResponse is the body of POST …/validate.
type TemplateValidationResponse struct {
	Valid                bool     `json:"valid"`
	Errors               []string `json:"errors"`
	RequiredCapabilities []string `json:"required_capabilities"`
	StepHandlers         []string `json:"step_handlers"`
}

// CacheOperationResponse is the body of the cache operations.
type CacheOperationResponse struct {
	Operation  string     `json:"operation"`
	Success    bool       `json:"success"`
	CacheStats CacheStats `json:"cache_stats"`
}
