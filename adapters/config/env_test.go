package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		got     func(*Config) any
		want    any
	}{
		{"nested section with underscore", []string{"TASKER_WORKER_WEB__BIND_ADDRESS=127.0.0.1:9999"},
			func(c *Config) any { return c.WorkerWeb.BindAddress }, "127.0.0.1:9999"},
		{"orchestration bind", []string{"TASKER_ORCHESTRATION__BIND_ADDRESS=:18080"},
			func(c *Config) any { return c.Orchestration.BindAddress }, ":18080"},
		{"api base url", []string{"TASKER_ORCHESTRATION_API__BASE_URL=https://orch.example:8443"},
			func(c *Config) any { return c.OrchestrationAPI.BaseURL }, "https://orch.example:8443"},
		{"three levels", []string{"TASKER_ORCHESTRATION_API__CIRCUIT_BREAKER__FAILURE_THRESHOLD=11"},
			func(c *Config) any { return c.OrchestrationAPI.CircuitBreaker.FailureThreshold }, 11},
		{"comma list trimmed, blanks dropped", []string{"TASKER_WORKER__NAMESPACES= a, b_2 ,,c"},
			func(c *Config) any { return c.Worker.Namespaces }, []string{"a", "b_2", "c"}},
		{"list replaces file list", []string{"TASKER_ORCHESTRATION__AUTH__PROTECTED_ROUTES=POST /v1/tasks"},
			func(c *Config) any { return c.Orchestration.Auth.ProtectedRoutes }, []string{"POST /v1/tasks"}},
		{"integer", []string{"TASKER_PGMQ__BATCH_SIZE= 25 "},
			func(c *Config) any { return c.Pgmq.BatchSize }, 25},
		{"boolean", []string{"TASKER_PGMQ__LISTEN_ENABLED=false"},
			func(c *Config) any { return c.Pgmq.ListenEnabled }, false},
		{"float", []string{"TASKER_ORCHESTRATION_API__BACKOFF__MULTIPLIER=1.5"},
			func(c *Config) any { return c.OrchestrationAPI.Backoff.Multiplier }, 1.5},
		{"logging level", []string{"TASKER_LOGGING__LEVEL=error"},
			func(c *Config) any { return c.Logging.Level }, "error"},
		{"DATABASE_URL", []string{"DATABASE_URL=postgres://u@h/db_test"},
			func(c *Config) any { return c.Database.URL }, "postgres://u@h/db_test"},
		{"TASKER_DATABASE__URL beats DATABASE_URL in either order",
			[]string{"TASKER_DATABASE__URL=postgres://a/x", "DATABASE_URL=postgres://b/y"},
			func(c *Config) any { return c.Database.URL }, "postgres://a/x"},
		{"empty value means unset", []string{"TASKER_PGMQ__BATCH_SIZE=", "TASKER_WORKER__NAMESPACES="},
			func(c *Config) any { return []any{c.Pgmq.BatchSize, c.Worker.Namespaces} },
			[]any{DefaultBatchSize, []string{"examples"}}},
		{"TASKER_ vars without __ are not config keys",
			[]string{"TASKER_CONFIG_DIR_X=1", "TASKER_TEST_DATABASE_URL=postgres://x/y_test", "TASKER_VERSION=1"},
			func(c *Config) any { return c.Database.URL }, ""},
		{"unprefixed lookalikes ignored", []string{"WORKER__NAMESPACES=zzz", "tasker_worker__namespaces=zzz"},
			func(c *Config) any { return c.Worker.Namespaces }, []string{"examples"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(LoadOptions{ConfigDir: repoConfigDir, Environment: EnvDevelopment, Environ: tt.environ})
			require.NoError(t, err)
			require.Equal(t, tt.want, tt.got(cfg))
		})
	}
}

func TestEnvProblemsNameVariableAndKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    string
		source string
		key    string
		reason string
	}{
		{"unknown key", "TASKER_WORKER__NAMESPACE=a", "TASKER_WORKER__NAMESPACE", "worker.namespace", "unknown key"},
		{"unknown section", "TASKER_WORKERS__NAMESPACES=a", "TASKER_WORKERS__NAMESPACES", "workers.namespaces", "unknown key"},
		{"not an integer", "TASKER_PGMQ__BATCH_SIZE=ten", "TASKER_PGMQ__BATCH_SIZE", "pgmq.batch_size", `must be an integer, got "ten"`},
		{"not a boolean", "TASKER_WORKER_WEB__ENABLED=yes", "TASKER_WORKER_WEB__ENABLED", "worker_web.enabled", "must be a boolean"},
		{"not a number", "TASKER_ORCHESTRATION_API__BACKOFF__JITTER=lots", "TASKER_ORCHESTRATION_API__BACKOFF__JITTER", "orchestration_api.backoff.jitter", "must be a number"},
		{"a table", "TASKER_ORCHESTRATION__AUTH=on", "TASKER_ORCHESTRATION__AUTH", "orchestration.auth", "is a table"},
		{"triple underscore", "TASKER_PGMQ___BATCH_SIZE=1", "TASKER_PGMQ___BATCH_SIZE", "pgmq___batch_size", "malformed name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(LoadOptions{ConfigDir: repoConfigDir, Environ: []string{tt.env}})
			requireProblem(t, err, tt.source, tt.key, tt.reason)
		})
	}
}

func TestEnvProblemsAreAllReported(t *testing.T) {
	t.Parallel()
	_, err := Load(LoadOptions{ConfigDir: repoConfigDir, Environ: []string{
		"TASKER_PGMQ__BATCH_SIZE=x", "TASKER_PGMQ__NOPE=1", "TASKER_LOGGING__LEVEL=debug",
	}})
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Problems, 2)
	require.Equal(t, "TASKER_PGMQ__BATCH_SIZE", verr.Problems[0].Source, "sorted by variable name")
}
