package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestStartupFailuresAreOneLineExit1 runs the real binaries into the
// ordinary start-up failures (database unreachable, port in use, bad
// configuration) and requires exit 1 and exactly one line on stderr with
// no stack trace; a connection error names host:port.
func TestStartupFailuresAreOneLineExit1(t *testing.T) {
	bins := buildBinaries(t)
	dbURL := testdb.URL(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = busy.Close() })
	busyAddr := busy.Addr().String()
	badConfig := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(badConfig, "base"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(badConfig, "base", "pgmq.toml"), []byte("[pgmq]\nbatch_size = 0\n"), 0o644))
	unreachable := "postgres://postgres@127.0.0.1:1/tasker?sslmode=disable&connect_timeout=2"
	workerEnv := []string{"TASKER_WORKER__NAMESPACES=examples", "TASKER_WORKER_WEB__BIND_ADDRESS=" + freeAddr(t)}

	tests := []struct {
		name   string
		binary string
		args   []string
		env    []string
		want   string
	}{
		{"orchestration: database unreachable", "tasker-orchestration", []string{"serve", "--bind", freeAddr(t)},
			[]string{"DATABASE_URL=" + unreachable}, "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"orchestration: port in use", "tasker-orchestration", []string{"serve", "--bind", busyAddr},
			[]string{"DATABASE_URL=" + dbURL}, "listen on " + busyAddr + ": listen tcp " + busyAddr + ": bind: address already in use"},
		{"orchestration: bad config", "tasker-orchestration", []string{"serve", "--config-dir", badConfig},
			[]string{"DATABASE_URL=" + dbURL}, "pgmq.batch_size"},
		{"orchestration migrate: database unreachable", "tasker-orchestration", []string{"migrate"},
			[]string{"DATABASE_URL=" + unreachable}, "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"worker: database unreachable", "tasker-worker", nil,
			append([]string{"DATABASE_URL=" + unreachable}, workerEnv...), "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"worker: port in use", "tasker-worker", nil,
			[]string{"DATABASE_URL=" + dbURL, "TASKER_WORKER__NAMESPACES=examples", "TASKER_WORKER_WEB__BIND_ADDRESS=" + busyAddr},
			busyAddr + ": bind: address already in use"},
		{"worker: bad config", "tasker-worker", []string{"--config-dir", badConfig},
			append([]string{"DATABASE_URL=" + dbURL}, workerEnv...), "pgmq.batch_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bins, tt.binary), tt.args...)
			cmd.Dir = filepath.Join("..", "..")
			cmd.Env = append(os.Environ(), append([]string{"TASKER_ENV=test", "TASKER_LOGGING__LEVEL=error"}, tt.env...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "%s should fail: %v\nstdout: %s\nstderr: %s", tt.binary, err, stdout.String(), stderr.String())
			require.Equal(t, 1, ee.ExitCode(), stderr.String())
			line := strings.TrimRight(stderr.String(), "\n")
			require.NotContains(t, line, "\n", "exactly one line on stderr: %q", stderr.String())
			require.NotContains(t, line, "goroutine")
			require.NotRegexp(t, `\.go:\d+`, line, "no stack trace")
			require.Contains(t, line, tt.want)
			require.True(t, strings.HasPrefix(line, tt.binary), line)
			t.Logf("%s %s -> exit %d: %s", tt.binary, strings.Join(tt.args, " "), ee.ExitCode(), line)
		})
	}
}

// TestBinariesHelpAndStampedVersion builds the three binaries with the
// release stamp (-ldflags -X …/internal/buildinfo.Version=…) and checks
// --version and --help of each (exit 0), and that a stray argument is exit 2.
func TestBinariesHelpAndStampedVersion(t *testing.T) {
	dir := t.TempDir()
	const stamp = "v9.8.7-e2e"
	build := exec.Command("go", "build", "-trimpath", "-ldflags",
		"-X github.com/tasker-systems/tasker-go/internal/buildinfo.Version="+stamp, "-o", dir+string(filepath.Separator), "./cmd/...")
	build.Dir = filepath.Join("..", "..")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	for _, bin := range []string{"taskerctl", "tasker-orchestration", "tasker-worker"} {
		out, err := exec.Command(filepath.Join(dir, bin), "--version").CombinedOutput()
		require.NoError(t, err, string(out))
		require.Regexp(t, `^`+bin+` `+stamp+` \(go1\.\d+`, string(out))
		t.Logf("%s --version: %s", bin, strings.TrimSpace(string(out)))

		out, err = exec.Command(filepath.Join(dir, bin), "--help").CombinedOutput()
		require.NoError(t, err, string(out))
		require.Contains(t, string(out), "Usage:")

		cmd := exec.Command(filepath.Join(dir, bin), "bogus")
		cmd.Env = append(os.Environ(), "DATABASE_URL=")
		out, err = cmd.CombinedOutput()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%s bogus: %v %s", bin, err, out)
		require.Equal(t, 2, ee.ExitCode(), string(out))
		require.Contains(t, string(out), `"bogus"`)
	}
	out, err = exec.Command(filepath.Join(dir, "tasker-orchestration"), "--help").CombinedOutput()
	require.NoError(t, err)
	for _, want := range []string{"serve", "migrate", "DATABASE_URL", "TASKER_ENV", "TASKER_CONFIG_DIR"} {
		require.Contains(t, string(out), want)
	}
}
