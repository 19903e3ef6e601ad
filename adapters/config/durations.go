package config

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// The files keep integers with a unit suffix (…_ms, …_seconds) because
// they read unambiguously in TOML and env vars; these accessors convert
// them once so callers never multiply by the wrong unit.

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
func millis(n int) time.Duration  { return time.Duration(n) * time.Millisecond }

// ConnMaxLifetime is conn_max_lifetime_seconds (0 = unlimited).
func (p PoolConfig) ConnMaxLifetime() time.Duration { return seconds(p.ConnMaxLifetimeSeconds) }

// ConnectTimeout is connect_timeout_seconds.
func (p PoolConfig) ConnectTimeout() time.Duration { return seconds(p.ConnectTimeoutSeconds) }

// PollInterval is poll_interval_ms.
func (p PgmqConfig) PollInterval() time.Duration { return millis(p.PollIntervalMs) }

// VisibilityTimeout is visibility_timeout_seconds.
func (p PgmqConfig) VisibilityTimeout() time.Duration { return seconds(p.VisibilityTimeoutSeconds) }

// HeartbeatInterval is how often a holder extends a message's vt: vt/3, so
// two heartbeats can be missed before the message reappears (contract §4.7).
func (p PgmqConfig) HeartbeatInterval() time.Duration { return p.VisibilityTimeout() / 3 }

// ShutdownTimeout is shutdown_timeout_seconds.
func (p PgmqConfig) ShutdownTimeout() time.Duration { return seconds(p.ShutdownTimeoutSeconds) }

// CommandTimeout is command_timeout_ms.
func (c CommandProcessingConfig) CommandTimeout() time.Duration { return millis(c.CommandTimeoutMs) }

// CorrelationTimeout is correlation_timeout_seconds.
func (e EventIntegrationConfig) CorrelationTimeout() time.Duration {
	return seconds(e.CorrelationTimeoutSeconds)
}

// StepClaimTimeout is step_claim_timeout_seconds.
func (w WorkerConfig) StepClaimTimeout() time.Duration { return seconds(w.StepClaimTimeoutSeconds) }

// EnsureID returns worker_id, first generating "worker-<uuid v7>" when it is
// empty (contract §8). It stores the generated id so every later reader
// (claims, logs, the HTTP API) sees the same value; call it once at start.
func (w *WorkerConfig) EnsureID() (string, error) {
	if w.WorkerID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("generate worker id: %w", err)
		}
		w.WorkerID = "worker-" + id.String()
	}
	return w.WorkerID, nil
}

// RequestTimeout is request_timeout_ms.
func (w WorkerWebConfig) RequestTimeout() time.Duration { return millis(w.RequestTimeoutMs) }

// HealthCheckInterval is health_check_interval_seconds.
func (w WorkerWebConfig) HealthCheckInterval() time.Duration {
	return seconds(w.HealthCheckIntervalSeconds)
}

// CycleInterval is cycle_interval_ms.
func (o OrchestrationConfig) CycleInterval() time.Duration { return millis(o.CycleIntervalMs) }

// SweepInterval is sweep_interval_ms.
func (o OrchestrationConfig) SweepInterval() time.Duration { return millis(o.SweepIntervalMs) }

// ClaimTimeout is claim_timeout_seconds.
func (o OrchestrationConfig) ClaimTimeout() time.Duration { return seconds(o.ClaimTimeoutSeconds) }

// RequestTimeout is request_timeout_ms.
func (o OrchestrationConfig) RequestTimeout() time.Duration { return millis(o.RequestTimeoutMs) }

// ShutdownTimeout is shutdown_timeout_seconds.
func (o OrchestrationConfig) ShutdownTimeout() time.Duration {
	return seconds(o.ShutdownTimeoutSeconds)
}

// MaxBackoff is max_backoff_seconds.
func (b OrchestrationBackoffConfig) MaxBackoff() time.Duration { return seconds(b.MaxBackoffSeconds) }

// Timeout is timeout_ms, the bound on one HTTP attempt.
func (o OrchestrationAPIConfig) Timeout() time.Duration { return millis(o.TimeoutMs) }

// Initial is initial_ms.
func (b ClientBackoffConfig) Initial() time.Duration { return millis(b.InitialMs) }

// Max is max_ms.
func (b ClientBackoffConfig) Max() time.Duration { return millis(b.MaxMs) }

// Timeout is timeout_seconds, the open → half-open delay.
func (c CircuitBreakerConfig) Timeout() time.Duration { return seconds(c.TimeoutSeconds) }

// Retention is orchestration.idempotency.retention_hours as a duration.
func (i OrchestrationIdempotencyConfig) Retention() time.Duration {
	return time.Duration(i.RetentionHours) * time.Hour
}

// EnqueuedTimeout is orchestration.staleness.enqueued_timeout_seconds.
func (s OrchestrationStalenessConfig) EnqueuedTimeout() time.Duration {
	return seconds(s.EnqueuedTimeoutSeconds)
}

// TaskTimeout is orchestration.staleness.task_timeout_seconds.
func (s OrchestrationStalenessConfig) TaskTimeout() time.Duration {
	return seconds(s.TaskTimeoutSeconds)
}

// CheckInterval is orchestration.staleness.check_interval_seconds.
func (s OrchestrationStalenessConfig) CheckInterval() time.Duration {
	return seconds(s.CheckIntervalSeconds)
}
