package livetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tasker-systems/tasker-go/app/worker/health"
	"github.com/tasker-systems/tasker-go/domain"

	"github.com/jmoiron/sqlx"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/adapters/web/workerapi"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

func post(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

func failingChecks(t *testing.T, body []byte) map[string]workerapi.HealthCheck {
	t.Helper()
	var e workerapi.ErrorResponse
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.Equal(t, "service_unavailable", e.Error)
	return e.Checks
}

func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)
	return fams
}

func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, m := range fams[name].GetMetric() {
		match := true
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
				match = false
			}
		}
		if match {
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// setConnections toggles whether the test database accepts connections and,
// when closing it, terminates every other backend on it: to the worker this
// is a database outage. admin is connected to another (empty) test
// database, because a database cannot lock itself out.
func setConnections(t *testing.T, admin *sqlx.DB, dbName string, allow bool) {
	t.Helper()
	ctx := context.Background()
	_, err := admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS %t`, dbName, allow))
	require.NoError(t, err)
	if !allow {
		_, err = admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1`, dbName)
		require.NoError(t, err)
	}
}

// TestLiveWorker_ReadinessMetricsOutageShutdown is the end-to-end proof of
// issue 5: readiness 200 with a live pipeline; counters move as steps are
// processed; 503 naming database while the database refuses connections
// (liveness stays 200); 200 after recovery; 503 naming command_processor
// during shutdown.
func TestLiveWorker_ReadinessMetricsOutageShutdown(t *testing.T) {
	url := testdb.URL(t)
	db := openPool(t, url)
	ctx := context.Background()
	const ns = "live"
	queues := []string{ns + "_queue"}
	testdb.CreateQueue(t, db, queues[0])
	testdb.CreateQueue(t, db, "orchestration_step_results")

	var dbName string
	require.NoError(t, db.GetContext(ctx, &dbName, `SELECT current_database()`))
	admin, err := sqlx.Open("postgres", testdb.EmptyURL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close() })

	q := pgmq.New(db)
	var rw *runningWorker
	status := workerapi.StatusFunc(func() domain.WorkerStatus { return rw.w.Status() })
	cfg := workerapi.Config{WorkerID: "worker-live", Version: "test", Environment: "test", Namespaces: []string{ns},
		MetricsEnabled: true, HealthCheckInterval: 10 * time.Second}
	policy := health.New(health.Config{PollInterval: 50 * time.Millisecond, DispatcherStallAfter: 3 * time.Second,
		LivenessStallAfter: time.Nanosecond}) // liveness at the strict 3 × poll threshold
	metrics, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{Version: "test", WorkerID: cfg.WorkerID, WorkerType: workerapi.WorkerType},
		telemetry.WorkerSources{DBStats: db.Stats, QueueMetrics: telemetry.ServedQueueMetrics(q, cfg.Namespaces), Runtime: status.Snapshot})
	require.NoError(t, err)
	steps := metrics.InstrumentStepStore(postgres.NewStepStore(db))
	bus := metrics.InstrumentEventBus(eventbus.New(eventbus.Config{}))
	reg := handlers(t)
	rw = startWorker(t, steps, q, bus, reg, queues, cfg.WorkerID)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			rw.stop(t)
		}
	})
	base := startServer(t, cfg, workerapi.Deps{Status: status, Health: policy, Templates: postgres.NewTemplateStore(db), Handlers: reg,
		DB: db, Queues: q, Metrics: metrics.Handler(), Logger: zap.NewNop()})

	// 1. Ready with a live pipeline.
	require.Eventually(t, func() bool { c, _ := get(t, base+"/health/ready"); return c == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	before := scrape(t, base)
	require.Equal(t, -1.0, value(before, "tasker_worker_steps_total", map[string]string{"namespace": ns}), "no outcome yet")

	// 2. Process steps: 6 succeed, 2 fail; counters move.
	for i := 0; i < 8; i++ {
		name := "square"
		if i%4 == 3 {
			name = "fails"
		}
		task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: ns, Name: "live_" + name, Steps: []testdb.StepSpec{{Name: name}}})
		testdb.SendStepMessage(t, db, queues[0], task.TaskUUID, task.Steps[name])
	}
	require.Eventually(t, func() bool {
		f := scrape(t, base)
		return value(f, "tasker_worker_steps_total", map[string]string{"namespace": ns, "outcome": "success"}) == 6 &&
			value(f, "tasker_worker_steps_total", map[string]string{"namespace": ns, "outcome": "failure"}) == 2
	}, 20*time.Second, 50*time.Millisecond)
	after := scrape(t, base)
	require.Equal(t, 6.0, value(after, "tasker_worker_steps_claimed_total", map[string]string{"namespace": ns, "handler": "square"}))
	require.Equal(t, 2.0, value(after, "tasker_worker_steps_claimed_total", map[string]string{"namespace": ns, "handler": "fails"}))
	require.Equal(t, 6.0, value(after, "tasker_worker_steps_completed_total", map[string]string{"namespace": ns, "handler": "square"}))
	require.Equal(t, 2.0, value(after, "tasker_worker_steps_failed_total", map[string]string{"namespace": ns, "handler": "fails"}))
	require.Equal(t, 8.0, value(after, "tasker_worker_claim_duration_seconds", map[string]string{"result": "claimed"}))
	require.Equal(t, 6.0, value(after, "tasker_worker_step_duration_seconds", map[string]string{"namespace": ns, "outcome": "success"}))
	require.Equal(t, 10.0, value(after, "tasker_worker_event_bus_published_total", map[string]string{"event": "execution"})+
		value(after, "tasker_worker_event_bus_published_total", map[string]string{"event": "completion"})-6)
	require.Equal(t, 0.0, value(after, "tasker_worker_queue_depth", map[string]string{"namespace": ns}))
	require.Equal(t, -1.0, value(after, "tasker_worker_queue_oldest_message_age_seconds", map[string]string{"namespace": ns}), "empty: omitted")
	require.Greater(t, value(after, "tasker_worker_db_pool_size", nil), 0.0)

	code, body := get(t, base+"/status")
	require.Equal(t, http.StatusOK, code)
	var st workerapi.WorkerStatusResponse
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, uint64(8), st.PerformanceMetrics.StepsProcessedTotal)
	require.Equal(t, uint64(2), st.PerformanceMetrics.StepsProcessedFailed)
	require.Len(t, st.PerformanceMetrics.ErrorDetails, 2)
	require.Equal(t, "validation", st.PerformanceMetrics.ErrorDetails[0].ErrorType)
	code, body = get(t, base+"/handlers")
	require.Equal(t, http.StatusOK, code)
	var hs []workerapi.RegisteredHandler
	require.NoError(t, json.Unmarshal(body, &hs))
	require.Len(t, hs, 2)
	require.Equal(t, workerapi.RegisteredHandler{Namespace: ns, HandlerClass: "fails", Version: "1.0.0", LastUsed: hs[0].LastUsed, FailureCount: 2}, hs[0])
	require.Equal(t, uint64(6), hs[1].SuccessCount)

	// A %00 in a template route is a 400 naming the parameter, not a
	// database_error 500 (issue 13 defect 1).
	code, body = post(t, base+"/templates/examples/%00/1.0.0/validate")
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Contains(t, string(body), "name must not contain NUL")
	t.Logf("POST /templates/examples/%%00/1.0.0/validate → %d %s", code, body)

	// 3. Database outage: the very next readiness probe is 503 naming
	// database although the background check runs only every 10 s
	// (issue 13 defect 4: it was a 10 s cache); liveness stays 200;
	// namespaces say unknown.
	setConnections(t, admin, dbName, false)
	outageAt := time.Now()
	code, body = get(t, base+"/health/ready")
	require.Equal(t, http.StatusServiceUnavailable, code, string(body))
	t.Logf("database refusing connections: first GET /health/ready %s after the cut → %d %s", time.Since(outageAt).Round(time.Millisecond), code, body)
	outage := failingChecks(t, body)
	require.Contains(t, outage, "database")
	code, body = get(t, base+"/status/namespaces")
	require.Equal(t, http.StatusOK, code)
	var nsHealth []workerapi.NamespaceHealth
	require.NoError(t, json.Unmarshal(body, &nsHealth))
	require.Equal(t, "unknown", nsHealth[0].HealthStatus, "depth is unknown while the database is down")
	t.Logf("database refusing connections: GET /status/namespaces → %d %s", code, body)
	// The data routes are 503 (FATAL 55000 from a fresh connection used to
	// be a 500 database_error, issue 13 defect 3).
	for _, path := range []string{"/templates", "/templates/live/live_square/1.0.0"} {
		code, body = get(t, base+path)
		t.Logf("database refusing connections: GET %s → %d %s", path, code, body)
		require.Equal(t, http.StatusServiceUnavailable, code, "%s: %s", path, body)
	}
	require.Equal(t, "unhealthy", outage["database"].Status)
	require.NotContains(t, outage, "command_processor", "the pipeline keeps running through an outage")
	for i := 0; i < 10; i++ { // across 1 s, i.e. many 150 ms stall windows
		c, b := get(t, base+"/health/live")
		require.Equal(t, http.StatusOK, c, "liveness never fails because the database is down: %s", b)
		time.Sleep(100 * time.Millisecond) // spacing samples in time, not synchronising
	}

	// 4. Recovery: the very next probe is ready again.
	setConnections(t, admin, dbName, true)
	recoveredAt := time.Now()
	code, body = get(t, base+"/health/ready")
	require.Equal(t, http.StatusOK, code, string(body))
	t.Logf("database accepting connections again: first GET /health/ready %s after → %d", time.Since(recoveredAt).Round(time.Millisecond), code)

	// 5. Shutdown: not ready, naming command_processor.
	rw.stop(t)
	stopped = true
	code, body = get(t, base+"/health/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	checks := failingChecks(t, body)
	require.Contains(t, checks, "command_processor")
	require.Contains(t, *checks["command_processor"].Message, "shutting down")
	code, body = get(t, base+"/status")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, "stopping", st.Status)
}
