package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

// buildBinaries compiles tasker-orchestration and taskerctl with the same
// command as `task build` (go build -o DIR/ ./cmd/...), into a directory
// removed when the test ends.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/tasker-orchestration", "./cmd/taskerctl")
	cmd.Dir = filepath.Join("..", "..")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		require.NoError(t, &buildError{err: err, out: out.String()})
	}
	return dir
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// freeAddr returns a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// orchestrationProcess is a running `tasker-orchestration serve`.
type orchestrationProcess struct {
	URL    string
	cmd    *exec.Cmd
	output *syncBuffer
}

// startOrchestrationBinary runs the real binary on dbURL and a free port and
// waits until GET /health answers; at cleanup it sends SIGTERM and requires
// a clean exit.
func startOrchestrationBinary(t *testing.T, binDir, dbURL string) *orchestrationProcess {
	t.Helper()
	bin := filepath.Join(binDir, "tasker-orchestration")
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"TASKER_ENV=test",
		"TASKER_CONFIG_DIR="+filepath.Join("..", "..", "configs", "tasker"),
		"TASKER_ORCHESTRATION__BIND_ADDRESS="+addr,
		"TASKER_ORCHESTRATION__CYCLE_INTERVAL_MS=50",
	)
	p := &orchestrationProcess{URL: "http://" + addr, cmd: cmd, output: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			require.NoError(t, err, "orchestration exit after SIGTERM; output:\n%s", p.output.String())
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("orchestration did not stop within 40s of SIGTERM; output:\n%s", p.output.String())
		}
	})

	cfg := httpclient.DefaultConfig()
	cfg.BaseURL, cfg.MaxRetries, cfg.Timeout = p.URL, 0, time.Second
	client, err := httpclient.New(cfg)
	require.NoError(t, err)
	defer client.CloseIdleConnections()
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			exited <- err
			return true
		default:
		}
		return client.Health(context.Background()) == nil
	}, 30*time.Second, 50*time.Millisecond)
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("orchestration exited at start (%v); output:\n%s", err, p.output.String())
	default:
	}
	return p
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ctlResult is one taskerctl run.
type ctlResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// taskerctl runs the built taskerctl binary with args against url.
func taskerctl(t *testing.T, binDir, url string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "taskerctl"), args...)
	cmd.Env = append(os.Environ(), "TASKER_ORCHESTRATION_API__BASE_URL="+url)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := ctlResult{stdout: out.String(), stderr: errOut.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}
