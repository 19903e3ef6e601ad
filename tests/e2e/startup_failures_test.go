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
			// Debug logging: the one line must hold at the most talkative
			// level too (nothing logged before the failure).
			cmd.Env = append(os.Environ(), append([]string{"TASKER_ENV=test", "TASKER_LOGGING__LEVEL=debug"}, tt.env...)...)
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

// TestBinariesHelpAndStampedVersion builds the three binaries as the
// Taskfile and the Dockerfile do (-trimpath, -ldflags -X
// …/internal/buildinfo.Version=…) and checks --version and --help of each
// (exit 0), that a stray argument is exit 2, that the services' help lists
// their subcommands and key environment variables, that every taskerctl
// command and subcommand (walked from the binary's own help) answers --help
// and -h, and that `taskerctl completion bash` loads in bash.
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

		for _, help := range []string{"--help", "-h"} {
			out, err = exec.Command(filepath.Join(dir, bin), help).CombinedOutput()
			require.NoError(t, err, string(out))
			require.Contains(t, string(out), "Usage:")
		}

		for _, stray := range [][]string{{"bogus"}, {"--bogus"}} {
			cmd := exec.Command(filepath.Join(dir, bin), stray...)
			cmd.Env = append(os.Environ(), "DATABASE_URL=")
			out, err = cmd.CombinedOutput()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "%s %v: %v %s", bin, stray, err, out)
			require.Equal(t, 2, ee.ExitCode(), string(out))
			require.Contains(t, string(out), stray[0])
		}
	}
	keyEnv := []string{"DATABASE_URL", "TASKER_ENV", "TASKER_CONFIG_DIR", "TASKER_<SECTION>__<KEY>"}
	out, err = exec.Command(filepath.Join(dir, "tasker-orchestration"), "--help").CombinedOutput()
	require.NoError(t, err)
	for _, want := range append([]string{"serve", "migrate"}, keyEnv...) {
		require.Contains(t, string(out), want)
	}
	out, err = exec.Command(filepath.Join(dir, "tasker-worker"), "--help").CombinedOutput()
	require.NoError(t, err)
	for _, want := range append([]string{"TASKER_WORKER__NAMESPACES"}, keyEnv...) {
		require.Contains(t, string(out), want)
	}

	paths := walkHelp(t, filepath.Join(dir, "taskerctl"), nil)
	require.GreaterOrEqual(t, len(paths), 20, "the command tree: %v", paths)
	for _, want := range []string{"task create", "task list", "step resolve", "template list", "template validate",
		"dlq requeue", "completion bash", "version"} {
		require.Contains(t, paths, want)
	}
	t.Logf("taskerctl: %d commands answer --help and -h: %s", len(paths), strings.Join(paths, ", "))

	for _, args := range [][]string{{"task", "bogus"}, {"task", "create", "--bogus"}, {"task", "get", "a", "b"}} {
		out, err := exec.Command(filepath.Join(dir, "taskerctl"), args...).CombinedOutput()
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "taskerctl %v: %v %s", args, err, out)
		require.Equal(t, 2, ee.ExitCode(), "taskerctl %v: %s", args, out)
	}

	if bash, err := exec.LookPath("bash"); err == nil {
		cmd := exec.Command(bash, "-c", "source <(taskerctl completion bash) && complete -p taskerctl")
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, "complete -o default -F __start_taskerctl taskerctl\n", string(out))
	}
}

// walkHelp runs `bin PATH --help` and `bin PATH -h` for the command at path
// and every subcommand listed in its help ("… Commands:" sections), and
// returns the paths walked ("" is the root). Each must exit 0 with its
// usage on stdout and nothing on stderr.
func walkHelp(t *testing.T, bin string, path []string) []string {
	t.Helper()
	var usage string
	for _, help := range []string{"--help", "-h"} {
		cmd := exec.Command(bin, append(append([]string{}, path...), help)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "taskerctl %v %s: %s", path, help, stderr.String())
		require.Empty(t, stderr.String(), "taskerctl %v %s", path, help)
		require.Contains(t, stdout.String(), "Usage:\n  "+strings.Join(append([]string{"taskerctl"}, path...), " "),
			"taskerctl %v %s names the command", path, help)
		usage = stdout.String()
	}
	walked := []string{strings.Join(path, " ")}
	inCommands := false
	for _, line := range strings.Split(usage, "\n") {
		switch {
		case strings.HasSuffix(line, "ommands:") && !strings.HasPrefix(line, " "):
			inCommands = true
		case inCommands && strings.TrimSpace(line) == "":
			inCommands = false
		case inCommands:
			name := strings.Fields(line)[0]
			if name != "help" {
				walked = append(walked, walkHelp(t, bin, append(append([]string{}, path...), name))...)
			}
		}
	}
	return walked
}

// TestUnstampedVersionFallsBackToBuildInfo: a plain `go build` (no -ldflags
// stamp) reports what the toolchain recorded in the binary — the main
// module's version, else the VCS revision, else "dev" — the same value
// `go version -m` shows, for all three binaries.
func TestUnstampedVersionFallsBackToBuildInfo(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	build.Dir = filepath.Join("..", "..")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	for _, bin := range []string{"taskerctl", "tasker-orchestration", "tasker-worker"} {
		path := filepath.Join(dir, bin)
		meta, err := exec.Command("go", "version", "-m", path).Output()
		require.NoError(t, err)
		want := versionFromBuildInfo(string(meta))
		out, err := exec.Command(path, "--version").CombinedOutput()
		require.NoError(t, err, string(out))
		require.Regexp(t, `^`+bin+` \S+ \(go1\.\d+`, string(out))
		require.Equal(t, want, strings.Fields(string(out))[1], "go version -m:\n%s", meta)
		t.Logf("plain go build: %s", strings.TrimSpace(string(out)))
	}
}

// versionFromBuildInfo reads `go version -m` output the way
// internal/buildinfo reads debug.ReadBuildInfo.
func versionFromBuildInfo(meta string) string {
	var mod, rev string
	dirty := false
	for _, line := range strings.Split(meta, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod" && mod == "":
			mod = f[2]
		case len(f) >= 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			rev = strings.TrimPrefix(f[1], "vcs.revision=")
		case len(f) >= 2 && f[0] == "build" && f[1] == "vcs.modified=true":
			dirty = true
		}
	}
	switch {
	case mod != "" && mod != "(devel)":
		return mod
	case rev == "":
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
