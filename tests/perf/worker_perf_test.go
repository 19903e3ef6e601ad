package perf

import (
	"context"
	"encoding/json"
	"fmt"
	neturl "net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	appworker "github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

const perfNS = "perfworker"

// perfWorker is one in-process worker on its own pool.
type perfWorker struct {
	w    *appworker.Worker
	stop func()
}

// startPerfWorker runs a worker serving perfNS with the handler h; the
// queues must exist (perfTasks creates them).
func startPerfWorker(t testing.TB, url string, h handler.HandlerFunc, listen bool, tune func(*appworker.Config)) *perfWorker {
	t.Helper()
	if os.Getenv("TASKER_PERF_BINARY_PARAMETERS") == "1" {
		url += "&binary_parameters=yes" // lib/pq: one round trip per parameterised query
	}
	if os.Getenv("TASKER_PERF_LOG_STATEMENTS") == "1" {
		// Diagnostic: the server logs every statement of the worker's pool
		// with its duration (log_min_duration_statement=0, superuser only).
		url += "&options=-c%20log_min_duration_statement%3D0"
	}
	if opts := os.Getenv("TASKER_PERF_PG_OPTIONS"); opts != "" {
		// Diagnostic: server options for the worker's sessions, e.g.
		// "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=2".
		url += "&options=" + neturl.QueryEscape(opts)
	}
	pool := 40
	if n, err := strconv.Atoi(os.Getenv("TASKER_PERF_POOL")); err == nil && n > 0 {
		pool = n // diagnostic: worker pool size (MaxOpenConns = MaxIdleConns)
	}
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: pool, MaxIdleConns: pool})
	require.NoError(t, err)
	q := pgmq.New(db)
	reg := handler.NewRegistry()
	require.NoError(t, reg.Register("perf.step", h))
	cfg := appworker.Config{WorkerID: "worker-perf", Environment: "test", Queues: []string{domain.QueueName(perfNS)},
		PollInterval: 500 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	deps := appworker.Deps{Steps: postgres.NewStepStore(db), Queue: q, Bus: eventbus.New(eventbus.Config{}), Handlers: reg}
	var l *pgmq.Listener
	if listen {
		l, err = pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: url,
			Channels: []string{pgmq.NamespaceReadyChannel(perfNS)}}, nil)
		require.NoError(t, err)
		deps.Notifier = l
	}
	w, err := appworker.New(cfg, deps)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	pw := &perfWorker{w: w, stop: func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
			if l != nil {
				_ = l.Close()
			}
			_ = db.Close()
		})
	}}
	t.Cleanup(pw.stop)
	return pw
}

// perfTasks creates n single-step tasks and returns (task, step) pairs.
func perfTasks(t testing.TB, db *sqlx.DB, n int) [][2]uuid.UUID {
	t.Helper()
	spec := testdb.TaskSpec{Namespace: perfNS, Name: "perf", Version: "1.0.0", Context: map[string]any{},
		Steps: []testdb.StepSpec{{Name: "step"}}}
	tmpl := testdb.TemplateFromSpec(spec)
	tmpl.Steps[0].Handler.Callable = "perf.step"
	testdb.RegisterTemplate(t, db, tmpl)
	q := pgmq.New(db)
	for _, name := range []string{domain.QueueName(perfNS), domain.QueueStepResults} {
		require.NoError(t, q.CreateQueue(context.Background(), name))
	}
	out := make([][2]uuid.UUID, n)
	for i := range out {
		ct := testdb.CreateTask(t, db, spec)
		out[i] = [2]uuid.UUID{ct.TaskUUID, ct.Steps["step"]}
	}
	return out
}

// enqueueStep marks the step enqueued and sends its message in one
// transaction, as the orchestration does (§10.2), and returns when committed
// with the time just before the pgmq.send statement.
func enqueueStep(ctx context.Context, db *sqlx.DB, pair [2]uuid.UUID) (time.Time, error) {
	msg, _ := json.Marshal(domain.SimpleStepMessage{TaskUUID: pair[0], StepUUID: pair[1]})
	var sendAt time.Time
	err := postgres.WithTx(ctx, db, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE tasker_workflow_step_transitions SET most_recent = false
			WHERE workflow_step_uuid = $1 AND most_recent`, pair[1]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tasker_workflow_step_transitions
			(workflow_step_uuid, to_state, from_state, metadata, sort_key, most_recent, created_at, updated_at)
			VALUES ($1, 'enqueued', 'pending', '{}', 2, true, NOW(), NOW())`, pair[1]); err != nil {
			return err
		}
		sendAt = time.Now()
		_, err := pgmq.New(tx).Send(ctx, domain.QueueName(perfNS), msg, 0)
		return err
	})
	return sendAt, err
}

// TestWorkerPickupLatency sends step messages one at a time and reports
// the time from send to handler start, with LISTEN/NOTIFY (goal p50 < 5 ms)
// and with LISTEN disabled (polling every 500 ms).
func TestWorkerPickupLatency(t *testing.T) {
	perfEnabled(t)
	for _, listen := range []bool{true, false} {
		name := "worker pickup LISTEN/NOTIFY"
		n := 300
		if !listen {
			name, n = "worker pickup polling only (poll_interval 500ms)", 40
		}
		t.Run(name, func(t *testing.T) {
			url := testdb.URL(t)
			db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 4})
			require.NoError(t, err)
			defer db.Close()
			pairs := perfTasks(t, db, n)
			started := make(chan time.Time, 1)
			startPerfWorker(t, url, func(context.Context, *handler.StepContext) (handler.Success, error) {
				started <- time.Now()
				return handler.Succeed(nil), nil
			}, listen, nil)
			time.Sleep(200 * time.Millisecond) // let the first poll pass so it does not flatter the figures
			fromTx := make([]time.Duration, 0, n)
			fromSend := make([]time.Duration, 0, n)
			fromCommit := make([]time.Duration, 0, n)
			for _, p := range pairs {
				txStart := time.Now()
				sent, err := enqueueStep(context.Background(), db, p)
				require.NoError(t, err)
				committed := time.Now()
				select {
				case at := <-started:
					fromTx = append(fromTx, at.Sub(txStart))
					fromSend = append(fromSend, at.Sub(sent))
					fromCommit = append(fromCommit, at.Sub(committed))
				case <-time.After(10 * time.Second):
					t.Fatal("handler never started")
				}
			}
			report(t, name+" enqueue tx start→handler start", fromTx)
			report(t, name+" pgmq.send→handler start", fromSend)
			report(t, name+" commit→handler start", fromCommit)
		})
	}
}

// BenchmarkWorkerNoopSteps measures worker-side throughput: b.N single-step
// tasks are enqueued up front, then one worker with a no-op handler drains
// them on the local Postgres (goal ≥ 2,000 steps/s on 2 cores). Run with
//
//	go test ./tests/perf -run X -bench WorkerNoopSteps -benchtime 3000x
//
// TASKER_PERF_BINARY_PARAMETERS=1 opens the worker pool with lib/pq's
// binary_parameters=yes (one round trip per parameterised query).
// TASKER_PERF_NO_RESULT_NOTIFY=1 drops the NOTIFY trigger of
// orchestration_step_results first (diagnostic only; the contract requires it).
// TASKER_PERF_ASYNC_COMMIT=1 runs the worker's sessions with
// synchronous_commit=off, a diagnostic that shows how much of the figure is
// WAL flushing (commits that NOTIFY are serialised by PostgreSQL).
func BenchmarkWorkerNoopSteps(b *testing.B) {
	url := testdb.URL(b)
	if os.Getenv("TASKER_PERF_ASYNC_COMMIT") == "1" {
		url += "&options=-c%20synchronous_commit%3Doff"
	}
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 8})
	require.NoError(b, err)
	defer db.Close()
	pairs := perfTasks(b, db, b.N)
	if os.Getenv("TASKER_PERF_NO_RESULT_NOTIFY") == "1" {
		// Diagnostic: without the message-ready trigger on the completion
		// queue, outcome commits no longer serialise on the NOTIFY lock.
		_, err := db.Exec(`DO $$ DECLARE r record; BEGIN
			FOR r IN SELECT tgname FROM pg_trigger WHERE tgrelid = 'pgmq.q_orchestration_step_results'::regclass AND NOT tgisinternal LOOP
				EXECUTE format('DROP TRIGGER %I ON pgmq.q_orchestration_step_results', r.tgname);
			END LOOP; END $$`)
		require.NoError(b, err)
	}
	for _, p := range pairs {
		_, err := enqueueStep(context.Background(), db, p)
		require.NoError(b, err)
	}
	b.ResetTimer()
	if path := os.Getenv("TASKER_PERF_DRAIN_CPUPROFILE"); path != "" {
		// Diagnostic: a CPU profile of the drain only (-test.cpuprofile
		// would be dominated by creating the tasks).
		f, err := os.Create(path)
		require.NoError(b, err)
		require.NoError(b, pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	meter := startCPUMeter(db)
	commits0 := dbCommits(b, db)
	start := time.Now()
	pw := startPerfWorker(b, url, func(context.Context, *handler.StepContext) (handler.Success, error) {
		return handler.Succeed(nil), nil
	}, false, func(c *appworker.Config) {
		c.MaxConcurrentSteps = envInt("TASKER_PERF_STEPS", 40)
		c.BatchSize = envInt("TASKER_PERF_BATCH", 40)
		c.MaxConcurrentCommands = 40
	})
	// firstAt: the first outcome, i.e. the worker is up and its statements
	// prepared; the steady rate counts from there.
	var firstAt time.Time
	for {
		n := pw.w.Status().Processed
		if n >= 1 && firstAt.IsZero() {
			firstAt = time.Now()
		}
		if n >= uint64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	steady := time.Since(firstAt)
	meter.stop()
	b.StopTimer()
	pw.stop()
	// Read after the worker's backends exited: a busy backend reports its
	// counters only when it goes idle, at most once a second.
	commits := dbCommits(b, db) - commits0
	meter.report(b, "worker noop steps", b.N)
	b.ReportMetric(float64(commits)/float64(b.N), "commits/step")
	fmt.Printf("PERF worker noop steps: commits/step %.3f (xact_commit delta %d of this database, worker start to stop)\n", float64(commits)/float64(b.N), commits)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "steps/s")
	fmt.Printf("PERF worker noop steps: n=%d in %s = %.0f steps/s (from worker start)\n", b.N, elapsed.Round(time.Millisecond), float64(b.N)/elapsed.Seconds())
	if b.N > 1 && steady > 0 {
		b.ReportMetric(float64(b.N-1)/steady.Seconds(), "steady_steps/s")
		fmt.Printf("PERF worker noop steps: steady state (first outcome to last) %d in %s = %.0f steps/s\n", b.N-1, steady.Round(time.Millisecond), float64(b.N-1)/steady.Seconds())
	}
	var left int
	require.NoError(b, db.Get(&left, `SELECT count(*) FROM pgmq.q_perfworker_queue`))
	require.Zero(b, left)
}

var _ ports.MessageNotifier = (*pgmq.Listener)(nil)

// dbCommits is pg_stat_database.xact_commit of db's database, read after
// clearing the session's statistics snapshot so it is current.
func dbCommits(tb testing.TB, db *sqlx.DB) int64 {
	tb.Helper()
	conn, err := db.Connx(context.Background())
	require.NoError(tb, err)
	defer conn.Close()
	_, err = conn.ExecContext(context.Background(), `SELECT pg_stat_clear_snapshot()`)
	require.NoError(tb, err)
	var n int64
	require.NoError(tb, conn.GetContext(context.Background(), &n, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`))
	return n
}

// envInt is a diagnostic override of a tuning value.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
