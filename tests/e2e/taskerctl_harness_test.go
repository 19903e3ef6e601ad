package e2e

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildBinaries compiles the three binaries with the same command as
// `task build` (go build -o DIR/ ./cmd/...), into a directory removed when
// the test ends.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
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

// process is a running service binary.
type process struct {
	name   string
	URL    string
	output *syncBuffer
	// Stop sends SIGTERM and requires exit 0 within 40 s (both services'
	// shutdown timeouts are 30 s); it runs once, at the latest at cleanup.
	Stop func()
}

// startProcess runs binDir/name with env (listening on addr) and waits until
// readyPath answers 200.
func startProcess(t *testing.T, binDir, name, addr, readyPath string, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = filepath.Join("..", "..") // the worker finds configs/tasks here
	cmd.Env = append(os.Environ(), env...)
	p := &process{name: name, URL: "http://" + addr, output: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	p.Stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				require.NoError(t, err, "%s exit after SIGTERM; output:\n%s", name, p.output.String())
			case <-time.After(40 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				t.Errorf("%s did not stop within 40s of SIGTERM; output:\n%s", name, p.output.String())
			}
		})
	}
	t.Cleanup(p.Stop)

	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	var died error
	ready := func() bool {
		select {
		case died = <-exited:
			exited <- died
			return true
		default:
		}
		resp, err := client.Get(p.URL + readyPath)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	require.Eventually(t, ready, 30*time.Second, 50*time.Millisecond, "%s not ready; output:\n%s", name, p.output.String())
	if died != nil {
		t.Fatalf("%s exited at start (%v); output:\n%s", name, died, p.output.String())
	}
	return p
}

// startOrchestration runs `tasker-orchestration serve` on dbURL and addr.
func startOrchestration(t *testing.T, binDir, dbURL, addr string) *process {
	t.Helper()
	return startProcess(t, binDir, "tasker-orchestration", addr, "/ready",
		[]string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test", "TASKER_ORCHESTRATION__BIND_ADDRESS=" + addr,
			"TASKER_ORCHESTRATION__CYCLE_INTERVAL_MS=50"}, "serve")
}

// startServices runs `tasker-orchestration serve` and one `tasker-worker`
// for namespace examples on dbURL, each on a free loopback port.
func startServices(t *testing.T, binDir, dbURL string) (orch, worker *process) {
	t.Helper()
	common := []string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test"}
	orch = startOrchestration(t, binDir, dbURL, freeAddr(t))
	workerAddr := freeAddr(t)
	worker = startProcess(t, binDir, "tasker-worker", workerAddr, "/health/ready",
		append(common, "TASKER_WORKER__NAMESPACES=examples", "TASKER_WORKER_WEB__BIND_ADDRESS="+workerAddr,
			"TASKER_ORCHESTRATION_API__BASE_URL="+orch.URL))
	return orch, worker
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
