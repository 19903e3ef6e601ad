// Package perf holds performance harnesses. They print figures and never
// assert on time; run them with TASKER_PERF=1 (they are skipped otherwise
// so the normal suite stays fast).
package perf

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/adapters/web/workerapi"
	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// EnvTarget points the harness at an already running worker (e.g.
// http://127.0.0.1:8081). When unset the harness builds cmd/tasker-worker
// and runs it over a fresh test database; with EnvInProcess=1 it serves
// the API in-process on a real listener instead.
const (
	EnvTarget    = "TASKER_WORKER_WEB_URL"
	EnvInProcess = "TASKER_PERF_INPROCESS"
)

// loadResult summarises one run.
type loadResult struct {
	path               string
	sent, errors, late int64
	p50, p90, p99, max time.Duration
	elapsed            time.Duration
	achievedRate       float64
	statusCounts       map[int]int64
	firstError         string
}

func (r loadResult) String() string {
	return fmt.Sprintf("%-14s sent=%d in %.1fs (%.0f req/s) p50=%s p90=%s p99=%s max=%s errors=%d late_schedules=%d statuses=%v%s",
		r.path, r.sent, r.elapsed.Seconds(), r.achievedRate, r.p50, r.p90, r.p99, r.max, r.errors, r.late, r.statusCounts,
		map[bool]string{true: " first_error=" + r.firstError, false: ""}[r.firstError != ""])
}

// drive sends GET url at rate req/s for d (open loop: requests are
// scheduled on a clock, not after the previous answer) with a bounded
// pool of senders. A schedule slot that finds every sender busy counts as
// late (the server or client could not keep up). An error is a transport
// failure or any status other than 200.
func drive(client *http.Client, url, label string, rate int, d time.Duration) loadResult {
	const senders = 64
	slots := make(chan time.Time, senders)
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, rate*int(d/time.Second)+rate)
		statuses  = map[int]int64{}
		errs      atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
	)
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range slots {
				start := time.Now()
				resp, err := client.Get(url)
				code := 0
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				lat := time.Since(start)
				if err != nil || code != http.StatusOK {
					errs.Add(1)
					if err != nil {
						firstErr.CompareAndSwap(nil, err.Error())
					} else {
						firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", code))
					}
				}
				mu.Lock()
				latencies = append(latencies, lat)
				statuses[code]++
				mu.Unlock()
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	var sent, late int64
	begin := time.Now()
	next := begin
	for time.Since(begin) < d {
		next = next.Add(interval)
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait) // pacing the open-loop schedule, not synchronisation
		}
		select {
		case slots <- next:
			sent++
		default:
			late++
		}
	}
	close(slots)
	wg.Wait()
	elapsed := time.Since(begin)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(float64(len(latencies))*p))]
	}
	r := loadResult{path: label, sent: sent, errors: errs.Load(), late: late, p50: pct(0.50), p90: pct(0.90), p99: pct(0.99),
		elapsed: elapsed, achievedRate: float64(sent) / elapsed.Seconds(), statusCounts: statuses}
	if len(latencies) > 0 {
		r.max = latencies[len(latencies)-1]
	}
	if v := firstErr.Load(); v != nil {
		r.firstError = v.(string)
	}
	return r
}

type registry []string

func (r registry) Callables() []string { return r }

// startInProcess serves the worker API over a real database on a real
// port, with access logging to a file as in production, and a status
// provider whose intake loops tick like a running worker's.
func startInProcess(t testing.TB) string {
	t.Helper()
	url := testdb.URL(t)
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	const ns = "perf"
	testdb.CreateQueue(t, db, ns+"_queue")
	for i := 0; i < 3; i++ {
		testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: ns, Name: fmt.Sprintf("perf_task_%d", i),
			Steps: []testdb.StepSpec{{Name: "square"}, {Name: "double", Deps: []string{"square"}}}})
	}
	status, stopTicks := tickingStatus()
	t.Cleanup(stopTicks)
	q := pgmq.New(db)
	cfg := workerapi.Config{WorkerID: "worker-perf", Version: "perf", Environment: "test", Namespaces: []string{ns},
		MetricsEnabled: true, CORSEnabled: true, HealthCheckInterval: time.Second}
	metrics, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: cfg.Version, WorkerID: cfg.WorkerID, WorkerType: workerapi.WorkerType},
		telemetry.WorkerSources{DBStats: db.Stats, QueueMetrics: telemetry.ServedQueueMetrics(q, cfg.Namespaces), Runtime: status.Snapshot})
	require.NoError(t, err)
	logFile, err := os.Create(t.TempDir() + "/access.log")
	require.NoError(t, err)
	t.Cleanup(func() { _ = logFile.Close() })
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logFile), zap.InfoLevel))
	srv, err := workerapi.New(cfg, workerapi.Deps{Status: status, Health: health.New(health.Config{PollInterval: 500 * time.Millisecond}), Templates: postgres.NewTemplateStore(db), Handlers: registry{"square", "double"},
		DB: db, Queues: q, Metrics: metrics.Handler(), Logger: logger})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return "http://" + ln.Addr().String()
}

// startBinary builds cmd/tasker-worker, runs it over a fresh migrated
// database serving the example templates, and waits until it is ready.
// Its logs (one access line per request, as in production) go to a file.
func startBinary(t *testing.T) string {
	t.Helper()
	root := filepath.Join("..", "..")
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/tasker-worker")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build tasker-worker: %s", out)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cmd := exec.Command(filepath.Join(dir, "tasker-worker"))
	cmd.Env = append(os.Environ(), "TASKER_ENV=test",
		"TASKER_CONFIG_DIR="+filepath.Join(root, "configs", "tasker"),
		"DATABASE_URL="+testdb.URL(t),
		"TASKER_WORKER__NAMESPACES=examples",
		"TASKER_WORKER__TEMPLATE_DIR="+filepath.Join(root, "configs", "tasks"),
		"TASKER_WORKER_WEB__BIND_ADDRESS="+addr,
		"TASKER_LOGGING__LEVEL=info", "TASKER_LOGGING__FORMAT=json")
	logFile, err := os.Create(filepath.Join(dir, "worker.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "tasker-worker never became ready (log: %s)", logFile.Name())
	return base
}

// loadAvg is the 1-minute load average (Linux), printed next to the
// figures because the machine is shared and tails follow its load.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil || len(b) == 0 {
		return "n/a"
	}
	f := strings.Fields(string(b))
	return f[0]
}

// tickingStatus is a running worker's snapshot: the intake loop ticks every
// 100 ms, so readiness exercises the real loop-liveness path.
func tickingStatus() (workerapi.StatusProvider, func()) {
	var ticks atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ticks.Add(1)
			}
		}
	}()
	last := time.Now().UTC()
	return workerapi.StatusFunc(func() domain.WorkerStatus {
			return domain.WorkerStatus{Started: true, PipelineRunning: true, DispatcherRunning: true,
				Processed: 1200, Succeeded: 1190, Failed: 10, AverageDurationMs: 3.2, RatePerSecond: 20, LastProcessedAt: &last,
				Handlers:   []domain.WorkerHandlerStats{{Namespace: "perf", Callable: "square", Success: 600, LastUsed: &last}},
				Namespaces: map[string]domain.WorkerNamespaceStats{"perf": {Processed: 1200, Succeeded: 1190, Failed: 10, LastProcessed: &last}},
				LoopTicks:  map[string]uint64{"intake:perf_queue": ticks.Load()}}
		}), func() {
			close(stop)
			wg.Wait()
		}
}

// TestWorkerWebLoad drives ~1,000 req/s for 10 s at /health/ready and then
// at /status and prints p50/p99 and the error count (goals: p99 < 10 ms,
// 0 errors). It asserts nothing about time.
func TestWorkerWebLoad(t *testing.T) {
	if os.Getenv("TASKER_PERF") != "1" {
		t.Skip("performance harness: set TASKER_PERF=1 to run")
	}
	base := os.Getenv(EnvTarget)
	target := "running worker at " + base
	switch {
	case base != "":
	case os.Getenv(EnvInProcess) == "1":
		base = startInProcess(t)
		target = "in-process server on " + base
	default:
		base = startBinary(t)
		target = "tasker-worker binary on " + base
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}}
	t.Cleanup(client.CloseIdleConnections)
	for _, p := range []string{"/health/ready", "/status"} { // warm up connections and caches
		resp, err := client.Get(base + p)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
	}
	fmt.Printf("worker web load: %s, 1000 req/s for 10 s per route (after 1 s warm-up), 64 senders\n", target)
	for _, p := range []string{"/health/ready", "/status"} {
		drive(client, base+p, p, 1000, time.Second) // warm-up: open the 64 connections, grow buffers
		r := drive(client, base+p, p, 1000, 10*time.Second)
		fmt.Printf("%s loadavg=%s\n", r, loadAvg())
		t.Log(r)
	}
}

// BenchmarkWorkerWebUnderLoad measures /health/ready and /status latency
// over a real listener with parallel clients (b.RunParallel, GOMAXPROCS ×
// 8 goroutines) and reports p50/p99 in milliseconds and requests/s.
func BenchmarkWorkerWebUnderLoad(b *testing.B) {
	base := startInProcess(b)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}}
	b.Cleanup(client.CloseIdleConnections)
	for _, path := range []string{"/health/ready", "/status"} {
		b.Run(strings.TrimPrefix(strings.ReplaceAll(path, "/", "_"), "_"), func(b *testing.B) {
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			var failures atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					resp, err := client.Get(base + path)
					if err != nil {
						failures.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failures.Add(1)
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) == 0 {
				b.Fatal("no successful request")
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(failures.Load()), "errors")
		})
	}
}
