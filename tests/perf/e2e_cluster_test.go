package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
)

// Application names that tell the services' PostgreSQL backends apart in
// pg_stat_activity (lib/pq sends application_name as a startup parameter).
const (
	appOrch    = "tasker-orch"
	appWorker  = "tasker-worker"
	appHarness = "tasker-perf-harness"
)

// withParam sets a connection parameter on a DSN in URL or key=value form.
func withParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := neturl.Parse(dsn)
		if err != nil {
			panic(err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// serviceEnv is the environment of a launched binary: the harness's own
// environment without any TASKER_* variable or DATABASE_URL a developer may
// have exported (they would change the tuning under test), plus extra.
func serviceEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TASKER_") || strings.HasPrefix(kv, "DATABASE_URL=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, extra...)
	// TASKER_PERF_SERVICE_ENV adds settings to every service for tuning
	// experiments, e.g. "TASKER_WORKER__MAX_CONCURRENT_STEPS=40"; the
	// figures of the issue are taken without it (production defaults).
	return append(env, strings.Fields(os.Getenv("TASKER_PERF_SERVICE_ENV"))...)
}

// e2eProc is one launched service binary.
type e2eProc struct {
	name string
	cmd  *exec.Cmd
	url  string
	done chan struct{}
	once sync.Once
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 45 s, past the
// production shutdown timeout of 30 s). Safe to call more than once.
func (p *e2eProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(45 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// e2eCluster is orchestrations and workers on one database, run with
// TASKER_ENV=production and no tuning override: only the database URL (with
// an application_name per role), bind addresses, the worker's namespace and
// the orchestration URL the workers call.
type e2eCluster struct {
	dbURL   string
	orchs   []*e2eProc
	workers []*e2eProc
}

func (c *e2eCluster) procs() []*e2eProc {
	return append(append([]*e2eProc{}, c.orchs...), c.workers...)
}

// stop stops the workers first, then the orchestrations.
func (c *e2eCluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.workers {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
	for _, p := range c.orchs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// e2eLogDir is where the services' output goes: TASKER_PERF_LOG_DIR or a
// temporary directory of the test.
func e2eLogDir(t *testing.T) string {
	if d := os.Getenv("TASKER_PERF_LOG_DIR"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

var logSeq struct {
	sync.Mutex
	n int
}

// startProc launches bin with env, its output in a log file, and waits until
// url+readyPath answers 200.
func startProc(t *testing.T, bin, name, addr, readyPath, logDir string, env []string, args ...string) *e2eProc {
	logSeq.Lock()
	logSeq.n++
	logName := fmt.Sprintf("%03d-%s.log", logSeq.n, name)
	logSeq.Unlock()
	f, err := os.Create(filepath.Join(logDir, logName))
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Join("..", "..") // template_dir configs/tasks and config dir configs/tasker are relative
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	p := &e2eProc{name: name, cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	t.Cleanup(p.stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + readyPath)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready (log %s)", name, f.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60s (log %s)", name, f.Name())
		}
	}
}

// startCluster launches nOrch orchestrations, then nWorkers workers (worker i
// calls orchestration i mod nOrch) on dbURL.
func startCluster(t *testing.T, bin, dbURL string, nOrch, nWorkers int) *e2eCluster {
	c := &e2eCluster{dbURL: dbURL}
	logDir := e2eLogDir(t)
	for i := 0; i < nOrch; i++ {
		addr := loopbackAddr(t)
		env := serviceEnv("TASKER_ENV=production", "DATABASE_URL="+withParam(dbURL, "application_name", appOrch),
			"TASKER_ORCHESTRATION__BIND_ADDRESS="+addr)
		if prof := os.Getenv("TASKER_PERF_ORCH_CPU_PROFILE"); prof != "" {
			// e.g. /tmp/orch-%p.pprof: each orchestration writes its CPU profile there on exit.
			env = append(env, "TASKER_CPU_PROFILE="+prof)
		}
		c.orchs = append(c.orchs, startProc(t, filepath.Join(bin, "tasker-orchestration"), fmt.Sprintf("orch%d", i+1),
			addr, "/ready", logDir, env, "serve"))
	}
	c.workers = make([]*e2eProc, nWorkers)
	for i := 0; i < nWorkers; i++ {
		addr := loopbackAddr(t)
		env := serviceEnv("TASKER_ENV=production", "DATABASE_URL="+withParam(dbURL, "application_name", appWorker),
			"TASKER_WORKER__NAMESPACES=examples", "TASKER_WORKER_WEB__BIND_ADDRESS="+addr,
			"TASKER_ORCHESTRATION_API__BASE_URL="+c.orchs[i%nOrch].url)
		// Workers start one after the other: they register the same
		// templates at startup.
		c.workers[i] = startProc(t, filepath.Join(bin, "tasker-worker"), fmt.Sprintf("worker%d", i+1), addr, "/health/ready", logDir, env)
	}
	t.Cleanup(c.stop)
	return c
}

// backendSample is one backend's CPU time: at its first and its last sight.
type backendSample struct {
	role        string
	first, last time.Duration
}

// e2eMeter measures one burst: CPU of the service processes (from /proc) and
// of their PostgreSQL backends (pid set from pg_stat_activity by
// application_name, re-sampled every 200 ms because connections come and go;
// a backend first seen after the start counts from zero, so its startup is
// included; CPU a backend spends between its last sample and its exit is
// lost), commits of the database (pg_stat_database.xact_commit of its row
// only), and the notifications on the global channel pgmq_message_ready.
// The meter's own queries run on a separate database (admin), so they add
// no commit to the measured one.
type e2eMeter struct {
	admin  *sqlx.DB
	dbName string
	cl     *e2eCluster

	procs0 map[*e2eProc]time.Duration
	procs1 map[*e2eProc]time.Duration
	cpuOK  bool

	mu       sync.Mutex
	backends map[int]*backendSample
	peak     int // most service backends seen at once
	stopCh   chan struct{}
	stopped  chan struct{}

	xact0 int64

	listener *pq.Listener
	notifyMu sync.Mutex
	notifyN  int
	notifyBy map[string]int
	frozen   bool
}

// startListener opens the LISTEN connection before the burst, so that its
// own LISTEN commit falls before the baseline.
func startListener(t *testing.T, dbURL string) *e2eMeter {
	m := &e2eMeter{notifyBy: map[string]int{}}
	l := pq.NewListener(withParam(dbURL, "application_name", appHarness+"-listen"), 100*time.Millisecond, time.Second, nil)
	require.NoError(t, l.Listen("pgmq_message_ready"))
	m.listener = l
	go func() {
		for n := range l.Notify {
			if n == nil {
				continue // reconnected: a count may be missing
			}
			var p struct {
				QueueName string `json:"queue_name"`
			}
			_ = json.Unmarshal([]byte(n.Extra), &p)
			m.notifyMu.Lock()
			if !m.frozen {
				m.notifyN++
				m.notifyBy[p.QueueName]++
			}
			m.notifyMu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return m
}

func (m *e2eMeter) sampleBackends() bool {
	var rows []struct {
		PID int    `db:"pid"`
		App string `db:"application_name"`
	}
	if err := m.admin.Select(&rows, `SELECT pid, application_name FROM pg_stat_activity
		WHERE datname = $1 AND application_name IN ($2, $3)`, m.dbName, appOrch, appWorker); err != nil {
		return false
	}
	ok := true
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peak = max(m.peak, len(rows))
	initial := m.backends == nil
	if initial {
		m.backends = map[int]*backendSample{}
	}
	for _, r := range rows {
		cpu, found := procCPU(r.PID)
		if !found {
			if _, err := os.Stat("/proc/self/stat"); err != nil {
				ok = false
			}
			continue // the backend exited between the query and the read
		}
		b := m.backends[r.PID]
		if b == nil {
			b = &backendSample{role: r.App}
			if initial {
				b.first = cpu
			}
			m.backends[r.PID] = b
		}
		b.last = cpu
	}
	return ok && len(rows) > 0
}

// start takes the baselines; the caller records the time of the first POST
// right after.
func (m *e2eMeter) start(t *testing.T, admin *sqlx.DB, dbName string, cl *e2eCluster) {
	m.admin, m.dbName, m.cl = admin, dbName, cl
	require.NoError(t, admin.Get(&m.xact0, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, dbName))
	m.procs0 = map[*e2eProc]time.Duration{}
	m.cpuOK = true
	for _, p := range cl.procs() {
		cpu, ok := procCPU(p.cmd.Process.Pid)
		m.cpuOK = m.cpuOK && ok
		m.procs0[p] = cpu
	}
	m.cpuOK = m.sampleBackends() && m.cpuOK
	m.notifyMu.Lock()
	m.notifyN, m.notifyBy = 0, map[string]int{}
	m.notifyMu.Unlock()
	m.stopCh, m.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stopCh:
				return
			case <-tick.C:
				m.sampleBackends()
			}
		}
	}()
}

// e2eFigures is what one burst measured.
type e2eFigures struct {
	steps                      int
	elapsed                    time.Duration
	orchCPU, workerCPU         time.Duration
	orchPG, workerPG           time.Duration
	cpuOK                      bool
	commits                    int64
	notifications              int
	notifyBy                   map[string]int
	harnessXacts               int64
	firstCreated, lastComplete time.Time
	posted                     time.Duration // submitting the whole burst
	idleCommitsPerSec          float64
	peakBackends               int // service connections seen at once (sampled)
}

func (f e2eFigures) stepsPerSec() float64 { return float64(f.steps) / f.elapsed.Seconds() }

func (f e2eFigures) perStep(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e6 / float64(f.steps)
}

func (f e2eFigures) totalCPU() time.Duration { return f.orchCPU + f.workerCPU + f.orchPG + f.workerPG }

// finish is called when every task is complete: it takes the final CPU
// readings while everything is still connected, stops the notification
// count, stops the services and waits for their backends to exit (a backend
// flushes its statistics when it exits), then reads the commit counter.
// harnessXacts is the number of transactions the harness itself ran on the
// measured database since start; they are subtracted.
func (m *e2eMeter) finish(t *testing.T, harnessXacts int64) e2eFigures {
	close(m.stopCh)
	<-m.stopped
	m.cpuOK = m.sampleBackends() && m.cpuOK
	m.procs1 = map[*e2eProc]time.Duration{}
	for _, p := range m.cl.procs() {
		cpu, ok := procCPU(p.cmd.Process.Pid)
		m.cpuOK = m.cpuOK && ok
		m.procs1[p] = cpu
	}
	time.Sleep(100 * time.Millisecond) // notifications of the last commits in flight
	m.notifyMu.Lock()
	m.frozen = true
	f := e2eFigures{cpuOK: m.cpuOK, notifications: m.notifyN, notifyBy: m.notifyBy, harnessXacts: harnessXacts}
	m.notifyMu.Unlock()
	for _, p := range m.cl.orchs {
		f.orchCPU += m.procs1[p] - m.procs0[p]
	}
	for _, p := range m.cl.workers {
		f.workerCPU += m.procs1[p] - m.procs0[p]
	}
	m.mu.Lock()
	f.peakBackends = m.peak
	for _, b := range m.backends {
		switch b.role {
		case appOrch:
			f.orchPG += b.last - b.first
		case appWorker:
			f.workerPG += b.last - b.first
		}
	}
	m.mu.Unlock()

	m.cl.stop()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, m.admin.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name IN ($2, $3)`,
			m.dbName, appOrch, appWorker))
		return n == 0
	}, 30*time.Second, 20*time.Millisecond, "service backends still connected")
	var x1 int64
	require.NoError(t, m.admin.Get(&x1, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, m.dbName))
	f.commits = x1 - m.xact0 - harnessXacts
	return f
}

// countingDB counts the harness's own transactions on the measured database
// (each autocommit query is one).
type countingDB struct {
	db *sqlx.DB
	mu sync.Mutex
	n  int64
}

func (c *countingDB) get(ctx context.Context, dest any, q string, args ...any) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.db.GetContext(ctx, dest, q, args...)
}

func (c *countingDB) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
