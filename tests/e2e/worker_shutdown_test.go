package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

const shutdownNS = "shutdowntest"

const shutdownTemplate = `name: nap
namespace_name: shutdowntest
version: "1.0.0"
steps:
  - name: nap
    handler: {callable: test.sleep}
`

// buildWorkerBinary compiles cmd/tasker-worker as `task build` does.
func buildWorkerBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/tasker-worker")
	cmd.Dir = filepath.Join("..", "..")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		require.NoError(t, &buildError{err: err, out: out.String()})
	}
	return filepath.Join(dir, "tasker-worker")
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestWorkerBinaryGracefulShutdown sends SIGTERM to the real binary with
// three slow steps (1.5 s) and one longer than the grace period (4 s) in
// flight: the three finish, the long one is persisted as worker_shutdown,
// readiness answers 503 meanwhile, and the process exits 0 within grace.
func TestWorkerBinaryGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the worker binary")
	}
	bin := buildWorkerBinary(t)
	db, url := workerDB(t)
	tplDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(tplDir, "nap.yaml"), []byte(shutdownTemplate), 0o644))
	addr := freeAddr(t)
	const grace = 4 * time.Second

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"TASKER_ENV=test",
		"TASKER_CONFIG_DIR="+filepath.Join("..", "..", "configs", "tasker"),
		"DATABASE_URL="+url,
		"TASKER_WORKER__NAMESPACES="+shutdownNS,
		"TASKER_WORKER__TEMPLATE_DIR="+tplDir,
		"TASKER_WORKER_WEB__BIND_ADDRESS="+addr,
		"TASKER_PGMQ__SHUTDOWN_TIMEOUT_SECONDS=4",
		"TASKER_LOGGING__LEVEL=info",
		"TASKER_WORKER_TEST_HANDLERS=1",
	)
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		if t.Failed() {
			t.Logf("worker output:\n%s", output.String())
		}
	})
	require.Eventually(t, func() bool { return httpStatus("http://"+addr+"/health/ready") == http.StatusOK },
		20*time.Second, 20*time.Millisecond, "worker never became ready")
	assertBreakerInStatus(t, "http://"+addr+"/status")
	require.Eventually(t, func() bool { return strings.Contains(output.String(), "orchestration API") },
		20*time.Second, 50*time.Millisecond, "the start-up health check of the orchestration API is logged")

	spec := testdb.TaskSpec{Namespace: shutdownNS, Name: "nap", Version: "1.0.0", Steps: []testdb.StepSpec{{Name: "nap"}}}
	var fast []testdb.CreatedTask
	for i := 0; i < 3; i++ {
		spec.Context = map[string]any{"sleep_ms": 1500}
		fast = append(fast, testdb.CreateTask(t, db, spec))
	}
	spec.Context = map[string]any{"sleep_ms": 60000}
	slow := testdb.CreateTask(t, db, spec)
	for _, task := range append(fast, slow) {
		enqueue(t, db, shutdownNS+"_queue", task.TaskUUID, task.Steps["nap"])
	}
	for _, task := range append(fast, slow) {
		waitState(t, db, task.Steps["nap"], domain.StepInProgress)
	}

	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return httpStatus("http://"+addr+"/health/ready") == http.StatusServiceUnavailable },
		2*time.Second, 10*time.Millisecond, "readiness is 503 while draining")
	var exitErr error
	select {
	case exitErr = <-exited:
	case <-time.After(grace + 10*time.Second):
		t.Fatal("worker did not exit")
	}
	elapsed := time.Since(start)
	var ee *exec.ExitError
	if errors.As(exitErr, &ee) {
		t.Fatalf("exit code %d", ee.ExitCode())
	}
	require.NoError(t, exitErr)
	require.Less(t, elapsed, grace+3*time.Second, "exit within the grace period (plus persistence)")
	require.GreaterOrEqual(t, elapsed, grace-500*time.Millisecond, "the long step held the worker for the grace period")
	t.Logf("SIGTERM → exit 0 in %s (grace %s)", elapsed.Round(time.Millisecond), grace)

	for _, task := range fast {
		require.Equal(t, domain.StepComplete, stepState(t, db, task.Steps["nap"]), "in-flight step finished during grace")
		require.True(t, stepResults(t, db, task.Steps["nap"]).Success)
	}
	require.Equal(t, domain.StepError, stepState(t, db, slow.Steps["nap"]))
	res := stepResults(t, db, slow.Steps["nap"])
	require.True(t, res.Error.Retryable)
	require.Equal(t, domain.ErrorTypeWorkerShutdown, *res.Error.ErrorType)
	require.Empty(t, testdb.QueueMessages(t, db, shutdownNS+"_queue"), "every step message deleted with its outcome")
	require.Len(t, testdb.QueueMessages(t, db, domain.QueueStepResults), 4)
}

// assertBreakerInStatus checks that /status reports the OrchestrationAPI
// client's circuit breaker, which the bootstrap wires into the web API.
func assertBreakerInStatus(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Configuration struct {
			CircuitBreakerState *string `json:"circuit_breaker_state"`
		} `json:"configuration"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.NotNil(t, body.Configuration.CircuitBreakerState, "breaker state reported")
	require.Contains(t, []string{"closed", "open", "half-open"}, *body.Configuration.CircuitBreakerState)
}
