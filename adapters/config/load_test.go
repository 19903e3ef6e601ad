package config

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// repoConfigDir is configs/tasker seen from this package's directory.
const repoConfigDir = "../../configs/tasker"

// writeTree creates a config dir from "relative/path.toml" → content.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

func requireProblem(t *testing.T, err error, source, key, reasonPart string) {
	t.Helper()
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	for _, p := range verr.Problems {
		if p.Key == key && (source == "" || p.Source == source) {
			require.Contains(t, p.Reason, reasonPart, "problem for %s", key)
			return
		}
	}
	require.Failf(t, "problem not reported", "want %s %s in %v", source, key, verr.Problems)
}

func TestLoadRepoConfigPerEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env        string
		level      string
		format     string
		pollMs     int
		jitter     bool
		namespaces []string
	}{
		{EnvDevelopment, "debug", "console", 500, true, []string{"examples"}},
		{EnvTest, "warn", "console", 50, false, []string{"examples"}},
		{EnvProduction, "info", "json", 500, true, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(LoadOptions{ConfigDir: repoConfigDir, Environ: []string{"TASKER_ENV=" + tt.env}})
			require.NoError(t, err)
			require.Equal(t, tt.env, cfg.Environment)
			require.Equal(t, repoConfigDir, cfg.Source)
			require.Equal(t, tt.level, cfg.Logging.Level)
			require.Equal(t, tt.format, cfg.Logging.Format)
			require.Equal(t, tt.pollMs, cfg.Pgmq.PollIntervalMs)
			require.Equal(t, tt.jitter, cfg.Orchestration.Backoff.JitterEnabled)
			require.Equal(t, tt.namespaces, cfg.Worker.Namespaces)
		})
	}
}

// The base files must spell out every key (so operators read the defaults
// there) with exactly the built-in values.
func TestBaseFilesMirrorBuiltInDefaults(t *testing.T) {
	t.Parallel()
	for _, env := range []string{EnvDevelopment, EnvTest, EnvProduction} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(filepath.Join(dir, "base"), os.DirFS(filepath.Join(repoConfigDir, "base"))))
			cfg, err := Load(LoadOptions{ConfigDir: dir, Environment: env, Environ: []string{}})
			require.NoError(t, err)
			want := Defaults(env)
			want.Source = dir
			require.Equal(t, want, *cfg)
		})
	}
}

func TestBaseFilesSetEveryKey(t *testing.T) {
	t.Parallel()
	var set []string
	for key := range configSchema.leaves {
		set = append(set, key)
	}
	seen := fileKeys(t, os.DirFS(filepath.Join(repoConfigDir, "base")))
	for _, key := range set {
		if key == "logging.format" {
			continue // environment-dependent default, set per environment
		}
		require.Contains(t, seen, key, "base files should set %s", key)
	}
}

func TestMergeOrderDefaultsBaseEnvironmentEnvVars(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/pgmq.toml":              "[pgmq]\nbatch_size = 20\npoll_interval_ms = 100\nvisibility_timeout_seconds = 7\n",
		"environments/test/pgmq.toml": "[pgmq]\nbatch_size = 30\npoll_interval_ms = 200\n",
	})
	cfg, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{"TASKER_ENV=test", "TASKER_PGMQ__BATCH_SIZE=40"}})
	require.NoError(t, err)
	require.Equal(t, 40, cfg.Pgmq.BatchSize, "env var beats environment file")
	require.Equal(t, 200, cfg.Pgmq.PollIntervalMs, "environment file beats base")
	require.Equal(t, 7, cfg.Pgmq.VisibilityTimeoutSeconds, "base beats built-in default")
	require.Equal(t, DefaultMaxReceiveCount, cfg.Pgmq.MaxReceiveCount, "built-in default when nothing sets it")
}

func TestOtherEnvironmentDirectoriesAreIgnored(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/pgmq.toml":                    "[pgmq]\nbatch_size = 20\n",
		"environments/production/pgmq.toml": "[pgmq]\nbatch_size = 99\n",
	})
	cfg, err := Load(LoadOptions{ConfigDir: dir, Environment: EnvTest, Environ: []string{}})
	require.NoError(t, err)
	require.Equal(t, 20, cfg.Pgmq.BatchSize)
}

func TestFilesInOneDirectoryMergeInNameOrder(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/b.toml":        "[pgmq]\nbatch_size = 2\n",
		"base/a.toml":        "[pgmq]\nbatch_size = 1\npoll_interval_ms = 11\n",
		"base/c.txt":         "not toml, ignored",
		"base/README":        "ignored",
		"base/nested/x.toml": "[pgmq]\nbatch_size = 500\n",
	})
	cfg, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{}})
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Pgmq.BatchSize, "b.toml merges after a.toml; subdirectories are not read")
	require.Equal(t, 11, cfg.Pgmq.PollIntervalMs)
}

func TestArraysReplaceInsteadOfAppending(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/worker.toml":                     "[worker]\nnamespaces = [\"a\", \"b\", \"c\"]\n",
		"base/orch.toml":                       "[orchestration.auth]\nprotected_routes = [\"POST /v1/tasks\"]\n",
		"environments/development/worker.toml": "[worker]\nnamespaces = [\"d\"]\n",
	})
	cfg, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{}})
	require.NoError(t, err)
	require.Equal(t, []string{"d"}, cfg.Worker.Namespaces)
	require.Equal(t, []string{"POST /v1/tasks"}, cfg.Orchestration.Auth.ProtectedRoutes, "file list replaces the built-in default list")
}

func TestTablesMergeKeyByKey(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/api.toml": "[orchestration_api.circuit_breaker]\nfailure_threshold = 9\n",
		"environments/development/api.toml": "[orchestration_api.circuit_breaker]\ntimeout_seconds = 7\n" +
			"[orchestration_api]\nmax_retries = 1\n",
	})
	cfg, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{}})
	require.NoError(t, err)
	cb := cfg.OrchestrationAPI.CircuitBreaker
	require.Equal(t, 9, cb.FailureThreshold, "base key survives the environment table")
	require.Equal(t, 7, cb.TimeoutSeconds)
	require.Equal(t, DefaultCircuitBreakerHalfOpenRequests, cb.HalfOpenMaxRequests, "default key survives both")
	require.Equal(t, 1, cfg.OrchestrationAPI.MaxRetries)
	require.Equal(t, DefaultOrchestrationAPIBaseURL, cfg.OrchestrationAPI.BaseURL)
}

func TestFileProblemsNameFileAndKey(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/pgmq.toml": "[pgmq]\nbatchsize = 5\nbatch_size = 10.5\n[pgmq.extra]\nx = 1\n",
		"base/web.toml":  "[worker_web]\nenabled = \"yes\"\ntokens = [1, 2]\n",
		"base/log.toml":  "logging = \"debug\"\n",
		"base/top.toml":  "unknown_section = 1\n\"pgmq.batch_size\" = 5\n",
	})
	_, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{}})
	src := func(f string) string { return filepath.ToSlash(filepath.Join(dir, "base", f)) }
	requireProblem(t, err, src("pgmq.toml"), "pgmq.batchsize", "unknown key")
	requireProblem(t, err, src("pgmq.toml"), "pgmq.batch_size", "must be an integer")
	requireProblem(t, err, src("pgmq.toml"), "pgmq.extra", "unknown key")
	requireProblem(t, err, src("web.toml"), "worker_web.enabled", "must be a boolean")
	requireProblem(t, err, src("web.toml"), "worker_web.tokens", "must be a list of strings")
	requireProblem(t, err, src("log.toml"), "logging", "must be a table")
	requireProblem(t, err, src("top.toml"), "unknown_section", "unknown key")
	requireProblem(t, err, src("top.toml"), "pgmq.batch_size", "quoted keys")
}

func TestTOMLSyntaxErrorNamesFileAndLine(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"base/pgmq.toml": "[pgmq]\nbatch_size = = 3\n"})
	_, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{}})
	require.ErrorContains(t, err, "pgmq.toml: line 2 column")
}

func TestLoadValidatesMergedResult(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"base/pgmq.toml":             "[pgmq]\nbatch_size = 0\n",
		"base/web.toml":              "[worker_web]\nbind_address = \"8081\"\n",
		"environments/test/log.toml": "[logging]\nlevel = \"verbose\"\n",
	})
	cfg, err := Load(LoadOptions{ConfigDir: dir, Environment: EnvTest, Environ: []string{}})
	require.Nil(t, cfg)
	requireProblem(t, err, "", "pgmq.batch_size", "must be between 1 and 1000")
	requireProblem(t, err, "", "worker_web.bind_address", "must be host:port")
	requireProblem(t, err, "", "logging.level", "must be one of debug, info, warn, error")
}

func TestConfigDirResolution(t *testing.T) {
	t.Parallel()
	good := writeTree(t, map[string]string{"base/pgmq.toml": "[pgmq]\nbatch_size = 77\n"})
	missing := filepath.Join(t.TempDir(), "nope")
	embedded := fstest.MapFS{"base/pgmq.toml": {Data: []byte("[pgmq]\nbatch_size = 55\n")}}

	t.Run("TASKER_CONFIG_DIR is used", func(t *testing.T) {
		cfg, err := Load(LoadOptions{Environ: []string{"TASKER_CONFIG_DIR=" + good}, Embedded: embedded})
		require.NoError(t, err)
		require.Equal(t, 77, cfg.Pgmq.BatchSize)
		require.Equal(t, good, cfg.Source)
	})
	t.Run("option beats TASKER_CONFIG_DIR", func(t *testing.T) {
		cfg, err := Load(LoadOptions{ConfigDir: good, Environ: []string{"TASKER_CONFIG_DIR=" + missing}})
		require.NoError(t, err)
		require.Equal(t, 77, cfg.Pgmq.BatchSize)
	})
	t.Run("explicit missing dir fails instead of falling back", func(t *testing.T) {
		_, err := Load(LoadOptions{Environ: []string{"TASKER_CONFIG_DIR=" + missing}, Embedded: embedded})
		require.ErrorIs(t, err, os.ErrNotExist)
		require.ErrorContains(t, err, missing)
		_, err = Load(LoadOptions{ConfigDir: missing, Environ: []string{}, Embedded: embedded})
		require.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("implicit default dir missing falls back to Embedded", func(t *testing.T) {
		// The test's working directory (adapters/config) has no configs/tasker.
		cfg, err := Load(LoadOptions{Environ: []string{}, Embedded: embedded})
		require.NoError(t, err)
		require.Equal(t, 55, cfg.Pgmq.BatchSize)
		require.Equal(t, "embedded", cfg.Source)
	})
	t.Run("nil Embedded means the compiled-in defaults", func(t *testing.T) {
		cfg, err := Load(LoadOptions{Environ: []string{"TASKER_ENV=production"}})
		require.NoError(t, err)
		require.Equal(t, "embedded", cfg.Source)
		require.Equal(t, "json", cfg.Logging.Format)
	})
	t.Run("dir without base is rejected", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"environments/test/pgmq.toml": "[pgmq]\n"})
		_, err := Load(LoadOptions{ConfigDir: dir, Environ: []string{}})
		require.ErrorContains(t, err, "base")
	})
}

// The embedded tree is configs/tasker itself (package configs), not a copy.
func TestEmbeddedFilesAreTheConfigDir(t *testing.T) {
	t.Parallel()
	repo := readTree(t, os.DirFS(repoConfigDir))
	embedded := readTree(t, EmbeddedFiles())
	require.NotEmpty(t, repo)
	require.Equal(t, repo, embedded)
}

func TestLoadRejectsUnknownEnvironment(t *testing.T) {
	t.Parallel()
	_, err := Load(LoadOptions{ConfigDir: repoConfigDir, Environ: []string{"TASKER_ENV=staging"}})
	require.ErrorIs(t, err, ErrUnknownEnvironment)
	require.ErrorContains(t, err, `"staging" (from TASKER_ENV)`)
	_, err = Load(LoadOptions{ConfigDir: repoConfigDir, Environment: "qa", Environ: []string{}})
	require.ErrorIs(t, err, ErrUnknownEnvironment)
}

func TestDetectEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    string
	}{
		{"nothing set", nil, EnvDevelopment},
		{"TASKER_ENV first", []string{"APP_ENV=development", "RACK_ENV=development", "RAILS_ENV=development", "TASKER_ENV=production"}, EnvProduction},
		{"RAILS_ENV before RACK_ENV and APP_ENV", []string{"APP_ENV=development", "RACK_ENV=development", "RAILS_ENV=test"}, EnvTest},
		{"RACK_ENV before APP_ENV", []string{"APP_ENV=development", "RACK_ENV=production"}, EnvProduction},
		{"APP_ENV last", []string{"APP_ENV=test"}, EnvTest},
		{"lower-cased", []string{"TASKER_ENV=Production"}, EnvProduction},
		{"empty counts as unset", []string{"TASKER_ENV=", "RAILS_ENV=test"}, EnvTest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DetectEnvironment(tt.environ)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := DetectEnvironment([]string{"RACK_ENV=staging"})
	require.ErrorIs(t, err, ErrUnknownEnvironment)
	require.ErrorContains(t, err, "RACK_ENV")
}
