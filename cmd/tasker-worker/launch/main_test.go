package launch

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/adapters/config"

	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/sdk/worker"
)

// Startup failures exit 1 with one clear line naming the cause. The cases
// set process environment variables, so they run sequentially.
func TestStartupFailuresExitNonZeroWithOneLine(t *testing.T) {
	badTemplates := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(badTemplates, "broken.yaml"), []byte("name: x\n"), 0o644))
	unhandled := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(unhandled, "charge.yaml"), []byte(unhandledTemplate), 0o644))
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing database url", map[string]string{"DATABASE_URL": ""}, "database.url"},
		{"invalid namespace", map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x_test", "TASKER_WORKER__NAMESPACES": "Bad-NS"},
			"worker.namespaces[0]"},
		{"database unreachable", map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x_test?sslmode=disable&connect_timeout=2"},
			"database: "},
		{"invalid template with skip_invalid_templates off", map[string]string{"TASKER_WORKER__TEMPLATE_DIR": badTemplates,
			"DATABASE_URL": "<testdb>", "TASKER_WORKER__SKIP_INVALID_TEMPLATES": "false"}, "broken.yaml: invalid task template"},
		{"port in use", map[string]string{"DATABASE_URL": "<testdb>", "TASKER_WORKER__TEMPLATE_DIR": "../../../configs/tasks/examples",
			"TASKER_WORKER_WEB__ENABLED": "true", "TASKER_WORKER_WEB__BIND_ADDRESS": "<busy>"}, "address already in use"},
		{"missing handler", map[string]string{"TASKER_WORKER__TEMPLATE_DIR": unhandled, "DATABASE_URL": "<testdb>", "TASKER_WORKER__NAMESPACES": "billing"},
			`worker.require_handlers: namespace billing template charge/1.0.0 step handler.callable "Billing::Charge" has no registered handler`},
		{"unknown trace exporter", map[string]string{"DATABASE_URL": "<testdb>", "OTEL_TRACES_EXPORTER": "zipkin"},
			`OTEL_TRACES_EXPORTER "zipkin": must be none, otlp or console`},
		{"namespace without templates", map[string]string{"DATABASE_URL": "<testdb>", "TASKER_WORKER__NAMESPACES": "examples,nobody_home",
			"TASKER_WORKER__TEMPLATE_DIR": filepath.Join("..", "..", "..", "configs", "tasks")},
			"worker.require_handlers: namespace nobody_home has no task template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TASKER_ENV", "test")
			t.Setenv("TASKER_CONFIG_DIR", filepath.Join("..", "..", "..", "configs", "tasker"))
			t.Setenv("TASKER_WORKER__NAMESPACES", "examples")
			t.Setenv("TASKER_WORKER_WEB__ENABLED", "false")
			t.Setenv("TASKER_LOGGING__LEVEL", "error")
			for k, v := range tt.env {
				switch v {
				case "<testdb>":
					v = testdb.URL(t)
				case "<busy>":
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					require.NoError(t, err)
					t.Cleanup(func() { _ = ln.Close() })
					v = ln.Addr().String()
				}
				t.Setenv(k, v)
			}
			var buf bytes.Buffer
			stderr = &buf
			defer func() { stderr = os.Stderr }()
			code := run(nil)
			require.Equal(t, 1, code)
			out := strings.TrimRight(buf.String(), "\n")
			require.NotContains(t, out, "\n", "exactly one line")
			require.True(t, strings.HasPrefix(out, "tasker-worker: "), out)
			require.Contains(t, out, tt.want)
		})
	}
}

// unhandledTemplate names a callable no handler is registered for.
const unhandledTemplate = `name: charge
namespace_name: billing
version: 1.0.0
steps:
  - name: charge_card
    handler: {callable: "Billing::Charge"}
`

// With worker.require_handlers = false the same worker starts (and is
// stopped by the test's SIGTERM-free context): the gap is only a WARN.
func TestMissingHandlerIsAWarningWhenNotRequired(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "charge.yaml"), []byte(unhandledTemplate), 0o644))
	t.Setenv("TASKER_ENV", "test")
	t.Setenv("TASKER_CONFIG_DIR", filepath.Join("..", "..", "..", "configs", "tasker"))
	t.Setenv("TASKER_WORKER__NAMESPACES", "billing")
	t.Setenv("TASKER_WORKER__TEMPLATE_DIR", dir)
	t.Setenv("TASKER_WORKER__REQUIRE_HANDLERS", "false")
	t.Setenv("TASKER_WORKER_WEB__ENABLED", "false")
	t.Setenv("DATABASE_URL", testdb.URL(t))
	cfg, err := config.Load(config.LoadOptions{})
	require.NoError(t, err)
	require.False(t, cfg.Worker.RequireHandlers)
	_, err = cfg.Worker.EnsureID()
	require.NoError(t, err)
	core, logs := observer.New(zapcore.WarnLevel)
	handlers, err := defaultHandlers(zap.NewNop())
	require.NoError(t, err)
	svc, err := worker.New(context.Background(), cfg, worker.WithLogger(zap.New(core)), worker.WithHandlers(handlers))
	require.NoError(t, err)
	svc.Close()
	warned := logs.FilterMessageSnippet("cannot run").All()
	require.Len(t, warned, 1)
	require.Equal(t, "Billing::Charge", warned[0].ContextMap()["callable"])
}
