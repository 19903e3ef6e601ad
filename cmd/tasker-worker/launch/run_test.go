package launch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestMain fails the package when a test leaves goroutines behind: the
// worker's loops, listener and web server must all stop with run.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// TestRunExitsZeroOnSIGTERM runs the binary's entry point in-process with
// configuration from the environment, waits until it is ready, sends the
// process SIGTERM and expects a graceful stop with exit code 0. It sets
// environment variables, so it does not run in parallel.
func TestRunExitsZeroOnSIGTERM(t *testing.T) {
	addr := freePort(t)
	t.Setenv("TASKER_ENV", "test")
	t.Setenv("TASKER_CONFIG_DIR", filepath.Join("..", "..", "..", "configs", "tasker"))
	t.Setenv("DATABASE_URL", testdb.URL(t))
	t.Setenv("TASKER_WORKER__NAMESPACES", "examples")
	t.Setenv("TASKER_WORKER__TEMPLATE_DIR", filepath.Join("..", "..", "..", "configs", "tasks", "examples"))
	t.Setenv("TASKER_WORKER_WEB__ENABLED", "true")
	t.Setenv("TASKER_WORKER_WEB__BIND_ADDRESS", addr)
	t.Setenv("TASKER_ORCHESTRATION_API__BASE_URL", orchestrationStub(t))
	t.Setenv("TASKER_LOGGING__LEVEL", "error")
	var errOut bytes.Buffer
	stderr = &errOut
	t.Cleanup(func() { stderr = os.Stderr })

	code := make(chan int, 1)
	go func() { code <- run(nil) }()
	// run installs its signal handler before it starts the web API, so a
	// ready answer means SIGTERM reaches run and not the default action.
	awaitReady(t, "http://"+addr)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case c := <-code:
		require.Equal(t, 0, c, errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop on SIGTERM")
	}
	require.Empty(t, errOut.String(), "a graceful stop prints no error")
}

func TestRunRejectsUnknownFlagsAndStrayArguments(t *testing.T) {
	var errOut bytes.Buffer
	stderr = &errOut
	t.Cleanup(func() { stderr = os.Stderr })
	require.Equal(t, 2, run([]string{"-no-such-flag"}))
	require.Equal(t, 2, run([]string{"bogus"}))
	require.Contains(t, errOut.String(), `tasker-worker: unexpected argument "bogus"`)
}

func TestHelpAndVersion(t *testing.T) {
	var out bytes.Buffer
	stdout = &out
	t.Cleanup(func() { stdout = os.Stdout })
	require.Equal(t, 0, run([]string{"--help"}))
	for _, want := range []string{"Usage:", "--config-dir", "DATABASE_URL", "TASKER_ENV", "TASKER_<SECTION>__<KEY>"} {
		require.Contains(t, out.String(), want)
	}
	out.Reset()
	require.Equal(t, 0, run([]string{"--version"}))
	require.Regexp(t, `^tasker-worker \S+ \(go1\.`, out.String())
}

// TestSleepHandler covers the test-only handler the shutdown e2e tests use.
func TestSleepHandler(t *testing.T) {
	t.Parallel()
	reg := handler.NewRegistry()
	require.NoError(t, registerTestHandlers(reg))
	h, ok := reg.Lookup(TestSleepCallable)
	require.True(t, ok)
	sc := func(ctxJSON string) *handler.StepContext {
		c, err := handler.NewStepContext(domain.StepExecutionEvent{Task: domain.TaskInfo{Context: []byte(ctxJSON)}})
		require.NoError(t, err)
		return c
	}

	s, err := h.Handle(context.Background(), sc(`{"sleep_ms":1}`))
	require.NoError(t, err)
	require.Equal(t, map[string]int{"slept_ms": 1}, s.Result)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Handle(ctx, sc(`{"sleep_ms":60000}`))
	require.ErrorIs(t, err, context.Canceled, "a cancelled step stops sleeping")

	_, err = h.Handle(ctx, sc(`{"sleep_ms":"bad"}`))
	require.ErrorIs(t, err, context.Canceled, "an unusable sleep_ms falls back to the default, still cancellable")

	require.Error(t, registerTestHandlers(reg), "registering twice is refused")
}
