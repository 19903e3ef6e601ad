// Package chaos runs the real binaries (tasker-orchestration, tasker-worker,
// taskerctl) against PostgreSQL and breaks things while they work: kill -9 of
// workers and orchestrations, pg_terminate_backend of every service backend,
// a connection blackout (ALTER DATABASE … ALLOW_CONNECTIONS false), and with
// TASKER_CHAOS_PG_RESTART=1 a restart of the PostgreSQL cluster given by
// TASKER_CHAOS_PG_CLUSTER. It also holds the end-to-end checks of the
// dead-letter queue, poison messages and lost-worker rescue.
package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/app/worker/registry"
	"github.com/tasker-systems/tasker-go/domain"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the three binaries once per test binary run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tasker-chaos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = &buildError{err: err, out: string(out)}
			return
		}
		binDir = dir
	})
	require.NoError(t, buildErr)
	return binDir
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// proc is a running service binary that can be stopped or killed.
type proc struct {
	name   string
	URL    string
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan error
	once   sync.Once
}

// Kill sends SIGKILL (kill -9) and waits for the process to go.
func (p *proc) Kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// Stop sends SIGTERM and waits up to 40 s.
func (p *proc) Stop(t *testing.T) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(40 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop within 40 s of SIGTERM", p.name)
		}
	})
}

// start runs binDir/name with env until ready answers 200 on readyPath.
func start(t *testing.T, name, addr, readyPath string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), name), args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, URL: "http://" + addr, cmd: cmd, output: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	require.NoError(t, cmd.Start())
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(p.Kill)
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("%s exited at start (%v); output:\n%s", name, err, p.output.String())
		default:
		}
		if resp, err := client.Get(p.URL + readyPath); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready; output:\n%s", name, p.output.String())
	return nil
}

// startOrchestration runs `tasker-orchestration serve` with env overrides.
func startOrchestration(t *testing.T, dbURL string, env ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	return start(t, "tasker-orchestration", addr, "/ready", append([]string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test",
		"TASKER_ORCHESTRATION__BIND_ADDRESS=" + addr, "TASKER_LOGGING__LEVEL=warn"}, env...), "serve")
}

// startWorker runs a tasker-worker for namespaces with the test handlers on.
func startWorker(t *testing.T, dbURL, orchURL, namespaces, templateDir string, env ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	return start(t, "tasker-worker", addr, "/health/ready", append([]string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test",
		"TASKER_WORKER__NAMESPACES=" + namespaces, "TASKER_WORKER__TEMPLATE_DIR=" + templateDir,
		"TASKER_WORKER_TEST_HANDLERS=1", "TASKER_WORKER_WEB__BIND_ADDRESS=" + addr,
		"TASKER_ORCHESTRATION_API__BASE_URL=" + orchURL, "TASKER_LOGGING__LEVEL=warn"}, env...))
}

// ctl runs taskerctl against url and returns exit code and output.
func ctl(t *testing.T, url string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "taskerctl"), args...)
	cmd.Env = append(os.Environ(), "TASKER_ORCHESTRATION_API__BASE_URL="+url)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	require.NoError(t, err)
	return 0, string(out)
}

// writeTemplates writes name → YAML into a new directory and registers each
// template in db (as a worker would), so tasks can be created before any
// worker for the namespace runs.
func writeTemplates(t *testing.T, db *sqlx.DB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	store := postgres.NewTemplateStore(db)
	for name, body := range files {
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
		tmpl, err := registry.LoadFile(path)
		require.NoError(t, err)
		conf, err := tmpl.ConfigurationJSON()
		require.NoError(t, err)
		_, err = store.RegisterTemplate(context.Background(), tmpl, conf)
		require.NoError(t, err)
	}
	return dir
}

// createTask posts a task request and returns the creation response.
func createTask(t *testing.T, url, body string) domain.TaskCreationResponse {
	t.Helper()
	resp, err := http.Post(url+"/v1/tasks", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	var out domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func open(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func taskState(t *testing.T, db *sqlx.DB, id any) string {
	t.Helper()
	var s string
	require.NoError(t, db.Get(&s, `SELECT COALESCE((SELECT to_state FROM tasker_task_transitions WHERE task_uuid = $1 AND most_recent), 'pending')`, id))
	return s
}

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
