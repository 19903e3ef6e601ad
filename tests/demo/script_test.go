package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeGo stands in for the go command when tests/demo.sh runs: it names two
// compiled packages on stderr like `go build -v`, then either fails with a
// compiler message ($FAKE_GO_FAIL) or waits until the script has printed a
// progress line (so the test needs no timing) and writes a bin/demo that
// echoes its start time and arguments.
const fakeGo = `#!/usr/bin/env bash
out=""
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
echo example.com/a >&2
echo example.com/b >&2
if [ -n "${FAKE_GO_FAIL:-}" ]; then
  echo "# example.com/b" >&2
  echo "b/b.go:3:1: syntax error: unexpected }" >&2
  exit 1
fi
for _ in $(seq 600); do grep -q 'packages compiled, latest' "$FAKE_GO_WATCH" && break; sleep 0.1; done
printf '#!/bin/sh\necho "demo ran started=$TASKER_DEMO_STARTED args=$*"\n' > "$out"
chmod +x "$out"
`

// runDemoScript runs a copy of tests/demo.sh in a scratch tree (so bin/ of
// the repository is untouched) with the fake go first on PATH, and returns
// its stdout, stderr and exit code.
func runDemoScript(t *testing.T, env ...string) (stdout, stderr string, code int) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	root := t.TempDir()
	script, err := os.ReadFile(filepath.Join("..", "demo.sh"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "tests"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "tests", "demo.sh"), script, 0o755))
	fakeBin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(fakeBin, "go"), []byte(fakeGo), 0o755))
	outFile := filepath.Join(t.TempDir(), "stdout")
	out, err := os.Create(outFile)
	require.NoError(t, err)
	defer func() { _ = out.Close() }()
	errFile := filepath.Join(t.TempDir(), "stderr")
	errOut, err := os.Create(errFile)
	require.NoError(t, err)
	defer func() { _ = errOut.Close() }()

	cmd := exec.Command(bash, filepath.Join(root, "tests", "demo.sh"), "--flag-for-the-demo")
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + fakeBin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"FAKE_GO_WATCH=" + outFile}, env...)...)
	cmd.Stdout, cmd.Stderr = out, errOut
	runErr := cmd.Run()
	var ee *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &ee):
		code = ee.ExitCode()
	default:
		require.NoError(t, runErr)
	}
	o, err := os.ReadFile(outFile)
	require.NoError(t, err)
	e, err := os.ReadFile(errFile)
	require.NoError(t, err)
	return string(o), string(e), code
}

// TestDemoScriptReportsCompileProgress: the first step of the README's demo
// command is not silent while the demo program compiles — it names what is
// built, prints the package count and the latest package every 5 s, ends
// with the count, and then runs the program with the start time (for the
// total wall time) and the script's arguments.
func TestDemoScriptReportsCompileProgress(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runDemoScript(t)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Contains(t, stdout, "== 0/6 compile the demo program: go build -trimpath -o bin/demo ./tests/demo\n")
	require.Regexp(t, `(?m)^    … \d+s: 2 packages compiled, latest example\.com/b$`, stdout)
	require.Regexp(t, `(?m)^    ok \(\d+s, 2 packages compiled, the rest from the build cache\)$`, stdout)
	require.Regexp(t, `(?m)^demo ran started=\d{10,} args=--flag-for-the-demo$`, stdout)
	require.Empty(t, stderr, "package lines are counted, not printed")
	t.Logf("tests/demo.sh with a slow fake go:\n%s", stdout)
}

// TestDemoScriptShowsCompileErrors: when the demo does not compile, the
// compiler's messages (not the package lines) reach stderr and the script
// exits with go's status without running anything.
func TestDemoScriptShowsCompileErrors(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runDemoScript(t, "FAKE_GO_FAIL=1")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	require.Equal(t, "# example.com/b\nb/b.go:3:1: syntax error: unexpected }\n"+
		"demo failed: go build ./tests/demo exited 1\n", stderr)
	require.NotContains(t, stdout, "demo ran")
	require.False(t, regexp.MustCompile(`(?m)^    ok `).MatchString(stdout), stdout)
}
