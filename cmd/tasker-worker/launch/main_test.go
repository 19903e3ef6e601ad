package launch

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// Startup failures exit 1 with one clear line naming the cause. The cases
// set process environment variables, so they run sequentially.
func TestStartupFailuresExitNonZeroWithOneLine(t *testing.T) {
	badTemplates := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(badTemplates, "broken.yaml"), []byte("name: x\n"), 0o644))
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
		{"invalid template", map[string]string{"TASKER_WORKER__TEMPLATE_DIR": badTemplates, "DATABASE_URL": "<testdb>"},
			"broken.yaml: invalid task template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TASKER_ENV", "test")
			t.Setenv("TASKER_CONFIG_DIR", filepath.Join("..", "..", "..", "configs", "tasker"))
			t.Setenv("TASKER_WORKER__NAMESPACES", "examples")
			t.Setenv("TASKER_WORKER_WEB__ENABLED", "false")
			t.Setenv("TASKER_LOGGING__LEVEL", "error")
			for k, v := range tt.env {
				if v == "<testdb>" {
					v = testdb.URL(t)
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
