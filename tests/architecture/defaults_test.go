package architecture

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/config"
	weborch "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	webworker "github.com/tasker-systems/tasker-go/adapters/web/workerapi"
	"github.com/tasker-systems/tasker-go/app/orchestration/enqueue"
	"github.com/tasker-systems/tasker-go/app/orchestration/result"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/app/orchestration/staleness"
	"github.com/tasker-systems/tasker-go/app/worker/command"
	"github.com/tasker-systems/tasker-go/app/worker/dispatch"
	"github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/app/worker/pipeline"
)

// The configuration (adapters/config, and the TOML files it loads) is the
// one home of every default. Services keep exported defaults so that a
// zero-valued Config (embedding, tests) still works; this test pins each of
// them to the configuration's, so the two can never drift apart. The loaded
// production configuration is compared too, so the TOML files agree, except
// for the keys its environment files raise on purpose (productionOverrides).
func TestAppDefaultsEqualTheConfiguration(t *testing.T) {
	// environments/production/worker.toml holds more steps per worker than
	// the contract's default, for larger claim and outcome batches, and
	// environments/production/pgmq.toml reads as many messages at a time.
	productionOverrides := map[string]any{
		"worker.max_concurrent_steps (intake)":     50,
		"worker.max_concurrent_steps (dispatcher)": 50,
		"pgmq.batch_size (worker intake)":          50,
		"pgmq.batch_size (result consumers)":       50,
	}
	t.Parallel()
	loaded, err := config.Load(config.LoadOptions{ConfigDir: "../../configs/tasker", Environment: config.EnvProduction,
		Environ: []string{"DATABASE_URL=postgres://x@localhost/test", "TASKER_WORKER__NAMESPACES=examples"}})
	require.NoError(t, err)
	for name, cfg := range map[string]config.Config{"built-in": config.Defaults(config.EnvProduction), "loaded production": *loaded} {
		pins := []struct {
			what      string
			app, conf any
		}{
			// worker
			{"pgmq.poll_interval_ms (worker intake)", pipeline.DefaultPollInterval, cfg.Pgmq.PollInterval()},
			{"pgmq.batch_size (worker intake)", pipeline.DefaultBatchSize, cfg.Pgmq.BatchSize},
			{"pgmq.visibility_timeout_seconds (worker)", pipeline.DefaultVisibilityTimeoutSeconds, cfg.Pgmq.VisibilityTimeoutSeconds},
			{"worker.max_concurrent_steps (intake)", pipeline.DefaultMaxConcurrentSteps, cfg.Worker.MaxConcurrentSteps},
			{"worker.max_concurrent_steps (dispatcher)", dispatch.DefaultMaxConcurrent, cfg.Worker.MaxConcurrentSteps},
			{"worker.step_claim_timeout_seconds", pipeline.DefaultStepClaimTimeout, cfg.Worker.StepClaimTimeout()},
			{"worker.limits.max_message_bytes", pipeline.DefaultMaxMessageBytes, cfg.Worker.Limits.MaxMessageBytes},
			{"event_integration.correlation_timeout_seconds", pipeline.DefaultCorrelationTimeout, cfg.EventIntegration.CorrelationTimeout()},
			{"command_processing.command_buffer_size", command.DefaultBufferSize, cfg.CommandProcessing.CommandBufferSize},
			{"command_processing.max_concurrent_commands", command.DefaultMaxConcurrent, cfg.CommandProcessing.MaxConcurrentCommands},
			{"command_processing.command_timeout_ms", command.DefaultTimeout, cfg.CommandProcessing.CommandTimeout()},
			{"pgmq.shutdown_timeout_seconds (worker)", engine.DefaultShutdownTimeout, cfg.Pgmq.ShutdownTimeout()},
			{"worker_web.request_timeout_ms", webworker.DefaultRequestTimeout, cfg.WorkerWeb.RequestTimeout()},
			{"worker_web.health_check_interval_seconds", webworker.DefaultHealthCheckInterval, cfg.WorkerWeb.HealthCheckInterval()},
			{"pgmq.poll_interval_ms (worker health policy)", health.DefaultPollInterval, cfg.Pgmq.PollInterval()},
			{"command_processing.command_buffer_size (worker web)", webworker.DefaultCommandBufferSize, cfg.CommandProcessing.CommandBufferSize},
			// orchestration
			{"pgmq.poll_interval_ms (result consumers)", result.DefaultPollInterval, cfg.Pgmq.PollInterval()},
			{"pgmq.batch_size (result consumers)", result.DefaultBatchSize, cfg.Pgmq.BatchSize},
			{"pgmq.visibility_timeout_seconds (result consumers)", result.DefaultVisibilityTimeoutSeconds, cfg.Pgmq.VisibilityTimeoutSeconds},
			{"orchestration.backoff.max_backoff_seconds", result.DefaultMaxBackoffSeconds, cfg.Orchestration.Backoff.MaxBackoffSeconds},
			{"orchestration.cycle_interval_ms", enqueue.DefaultCycleInterval, cfg.Orchestration.CycleInterval()},
			{"orchestration.sweep_interval_ms", enqueue.DefaultSweepInterval, cfg.Orchestration.SweepInterval()},
			{"orchestration.tasks_per_cycle", enqueue.DefaultTasksPerCycle, cfg.Orchestration.TasksPerCycle},
			{"orchestration.staleness.enqueued_timeout_seconds", staleness.DefaultEnqueuedTimeout, cfg.Orchestration.Staleness.EnqueuedTimeout()},
			{"orchestration.staleness.task_timeout_seconds", staleness.DefaultTaskTimeout, cfg.Orchestration.Staleness.TaskTimeout()},
			{"orchestration.staleness.check_interval_seconds", staleness.DefaultCheckInterval, cfg.Orchestration.Staleness.CheckInterval()},
			{"orchestration.shutdown_timeout_seconds", service.DefaultShutdownGrace, cfg.Orchestration.ShutdownTimeout()},
			{"orchestration.bind_address", weborch.DefaultBindAddress, cfg.Orchestration.BindAddress},
			{"orchestration.request_timeout_ms", weborch.DefaultRequestTimeout, cfg.Orchestration.RequestTimeout()},
			{"orchestration.max_body_bytes", weborch.DefaultMaxBodyBytes, int64(cfg.Orchestration.MaxBodyBytes)},
			{"orchestration.auth.protected_routes", weborch.DefaultProtectedRoutes(), cfg.Orchestration.Auth.ProtectedRoutes},
		}
		for _, p := range pins {
			if v, ok := productionOverrides[p.what]; ok && name == "loaded production" {
				require.EqualValues(t, v, p.conf, "%s: environments/production sets it", p.what)
				continue
			}
			require.EqualValues(t, p.conf, p.app, "%s: the service default differs from the %s configuration", p.what, name)
		}
	}
}
