package perf

// TestE2EThroughput is issue 11's must-show list, measured on the real
// binaries with production defaults (TASKER_ENV=production, no tuning
// override) on isolated databases:
//
//	burst    bursts of linear and diamond tasks (1 orchestration, 2 workers, empty database)
//	seeded   the same bursts on a database pre-seeded with completed steps
//	scale    one burst shape over workers × orchestrations
//	latency  linear tasks sent one at a time (next POST after the previous task completed)
//	create   task creation alone: a burst of POSTs to 1 orchestration, no worker running
//
// Run everything (long; the default sizes are the issue's):
//
//	TASKER_PERF=1 go test -count=1 -run TestE2EThroughput -v -timeout 60m ./tests/perf/
//
// Knobs (environment):
//
//	TASKER_PERF_E2E_PARTS        burst,seeded,scale,latency,create (default all but create)
//	TASKER_PERF_E2E_TASKS        tasks per burst (2000)
//	TASKER_PERF_E2E_RUNS         runs per burst shape in burst and seeded (3)
//	TASKER_PERF_E2E_CLIENTS      concurrent POST clients (32)
//	TASKER_PERF_E2E_SEED_STEPS   completed steps in the seeded database (1000000; 4 per task, half linear half diamond)
//	TASKER_PERF_E2E_SCALE        cells workers x orchestrations (1x1,2x1,4x1,1x2,2x2,4x2)
//	TASKER_PERF_E2E_SCALE_SHAPE  burst shape of the scale part (diamond)
//	TASKER_PERF_E2E_SCALE_RUNS   runs per scale cell (1)
//	TASKER_PERF_E2E_LATENCY_TASKS tasks of the latency part (200)
//	TASKER_PERF_E2E_TIMEOUT      how long one burst may take to complete (10m)
//	TASKER_PERF_LOG_DIR          keep the services' logs there
//	TASKER_PERF_SERVICE_ENV      extra settings for every service (tuning experiments only)
//
// Figures are printed on lines starting with "PERF e2e"; nothing is
// asserted about time. Correctness is asserted: every task of a burst
// complete, 4 steps each, every step's current state complete.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

type e2eConfig struct {
	parts        map[string]bool
	tasks        int
	runs         int
	clients      int
	seedSteps    int
	scale        [][2]int // workers, orchestrations
	scaleShape   string
	scaleRuns    int
	latencyTasks int
	timeout      time.Duration
}

func e2eEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	require.NoError(t, err, name)
	require.Positive(t, n, name)
	return n
}

func e2eConfigFromEnv(t *testing.T) e2eConfig {
	c := e2eConfig{parts: map[string]bool{}, tasks: e2eEnvInt(t, "TASKER_PERF_E2E_TASKS", 2000),
		runs: e2eEnvInt(t, "TASKER_PERF_E2E_RUNS", 3), clients: e2eEnvInt(t, "TASKER_PERF_E2E_CLIENTS", 32),
		seedSteps: e2eEnvInt(t, "TASKER_PERF_E2E_SEED_STEPS", 1_000_000), scaleShape: "diamond",
		scaleRuns: e2eEnvInt(t, "TASKER_PERF_E2E_SCALE_RUNS", 1), latencyTasks: e2eEnvInt(t, "TASKER_PERF_E2E_LATENCY_TASKS", 200),
		timeout: 10 * time.Minute}
	parts := os.Getenv("TASKER_PERF_E2E_PARTS")
	if parts == "" {
		parts = "burst,seeded,scale,latency"
	}
	for _, p := range strings.Split(parts, ",") {
		p = strings.TrimSpace(p)
		require.Contains(t, []string{"burst", "seeded", "scale", "latency", "create"}, p, "TASKER_PERF_E2E_PARTS")
		c.parts[p] = true
	}
	if s := os.Getenv("TASKER_PERF_E2E_SCALE_SHAPE"); s != "" {
		c.scaleShape = s
	}
	require.Contains(t, e2eShapes, c.scaleShape, "TASKER_PERF_E2E_SCALE_SHAPE")
	scale := os.Getenv("TASKER_PERF_E2E_SCALE")
	if scale == "" {
		scale = "1x1,2x1,4x1,1x2,2x2,4x2"
	}
	for _, cell := range strings.Split(scale, ",") {
		var w, o int
		_, err := fmt.Sscanf(strings.TrimSpace(cell), "%dx%d", &w, &o)
		require.NoError(t, err, "TASKER_PERF_E2E_SCALE cell %q (workers x orchestrations)", cell)
		c.scale = append(c.scale, [2]int{w, o})
	}
	if d := os.Getenv("TASKER_PERF_E2E_TIMEOUT"); d != "" {
		var err error
		c.timeout, err = time.ParseDuration(d)
		require.NoError(t, err, "TASKER_PERF_E2E_TIMEOUT")
	}
	return c
}

// e2eShapes maps a burst shape to its example template (configs/tasks/examples).
var e2eShapes = map[string]string{"linear": "linear_workflow", "diamond": "diamond_workflow"}

const e2eStepsPerTask = 4

func TestE2EThroughput(t *testing.T) {
	perfEnabled(t)
	cfg := e2eConfigFromEnv(t)
	bin := binaries(t)
	// The meter's queries (pg_stat_activity, pg_stat_database) run on a
	// database of their own, so they never count as commits of a measured one.
	admin, err := sqlx.Open("postgres", withParam(testdb.EmptyURL(t), "application_name", appHarness+"-admin"))
	require.NoError(t, err)
	admin.SetMaxOpenConns(2)
	t.Cleanup(func() { _ = admin.Close() })
	e2eServerNotes(t, admin)

	empty := map[string][]e2eFigures{}
	if cfg.parts["burst"] {
		t.Run("burst", func(t *testing.T) {
			for _, shape := range []string{"linear", "diamond"} {
				for r := 1; r <= cfg.runs; r++ {
					t.Run(fmt.Sprintf("%s-%d", shape, r), func(t *testing.T) {
						f := runBurst(t, bin, testdb.URL(t), admin, cfg, shape, 1, 2)
						printFigures(fmt.Sprintf("burst %s run %d/%d (1 orch, 2 workers, empty db)", shape, r, cfg.runs), f)
						empty[shape] = append(empty[shape], f)
					})
				}
				printMedians(fmt.Sprintf("burst %s MEDIAN of %d (1 orch, 2 workers, empty db)", shape, len(empty[shape])), empty[shape])
			}
		})
	}
	if cfg.parts["seeded"] {
		t.Run("seeded", func(t *testing.T) {
			seedURL, seedName := seedDatabase(t, bin, cfg.seedSteps)
			for _, shape := range []string{"linear", "diamond"} {
				var seeded []e2eFigures
				for r := 1; r <= cfg.runs; r++ {
					t.Run(fmt.Sprintf("%s-%d", shape, r), func(t *testing.T) {
						waitNoSessions(t, admin, seedName)
						f := runBurst(t, bin, testdb.CloneURL(t, seedURL), admin, cfg, shape, 1, 2)
						printFigures(fmt.Sprintf("seeded %s run %d/%d (1 orch, 2 workers, %d completed steps seeded)", shape, r, cfg.runs, cfg.seedSteps), f)
						seeded = append(seeded, f)
					})
				}
				label := fmt.Sprintf("seeded %s MEDIAN of %d (%d completed steps seeded)", shape, len(seeded), cfg.seedSteps)
				printMedians(label, seeded)
				if len(empty[shape]) > 0 && len(seeded) > 0 {
					e, s := medianOf(empty[shape], e2eFigures.stepsPerSec), medianOf(seeded, e2eFigures.stepsPerSec)
					eCPU := medianOf(empty[shape], func(f e2eFigures) float64 { return f.perStep(f.totalCPU()) })
					sCPU := medianOf(seeded, func(f e2eFigures) float64 { return f.perStep(f.totalCPU()) })
					e2ePrint("seeded vs empty %s: steps/s %.1f (seeded) vs %.1f (empty) = ratio %.3f; total CPU ms/step %.3f vs %.3f = ratio %.3f",
						shape, s, e, s/e, sCPU, eCPU, sCPU/eCPU)
				}
			}
		})
	}
	if cfg.parts["scale"] {
		t.Run("scale", func(t *testing.T) {
			type cell struct{ sps, cpu []float64 }
			cells := map[[2]int]*cell{}
			for _, wo := range cfg.scale {
				c := &cell{}
				cells[wo] = c
				for r := 1; r <= cfg.scaleRuns; r++ {
					t.Run(fmt.Sprintf("%dw-%do-%d", wo[0], wo[1], r), func(t *testing.T) {
						f := runBurst(t, bin, testdb.URL(t), admin, cfg, cfg.scaleShape, wo[1], wo[0])
						printFigures(fmt.Sprintf("scale %s %d workers x %d orch run %d/%d", cfg.scaleShape, wo[0], wo[1], r, cfg.scaleRuns), f)
						c.sps = append(c.sps, f.stepsPerSec())
						c.cpu = append(c.cpu, f.perStep(f.totalCPU()))
					})
				}
			}
			e2ePrint("scale-out table: %s burst of %d tasks, steps/s (median of %d run(s) per cell; total CPU ms/step in brackets)",
				cfg.scaleShape, cfg.tasks, cfg.scaleRuns)
			orchCounts, workerCounts := map[int]bool{}, map[int]bool{}
			for _, wo := range cfg.scale {
				workerCounts[wo[0]], orchCounts[wo[1]] = true, true
			}
			orchList, workerList := sortedKeys(orchCounts), sortedKeys(workerCounts)
			head := fmt.Sprintf("%-10s", "workers")
			for _, o := range orchList {
				head += fmt.Sprintf(" | %-22s", fmt.Sprintf("%d orch", o))
			}
			e2ePrint("scale %s", head)
			for _, w := range workerList {
				row := fmt.Sprintf("%-10d", w)
				for _, o := range orchList {
					c := cells[[2]int{w, o}]
					if c == nil || len(c.sps) == 0 {
						row += fmt.Sprintf(" | %-22s", "-")
						continue
					}
					row += fmt.Sprintf(" | %-22s", fmt.Sprintf("%.1f [%.3f]", median(c.sps), median(c.cpu)))
				}
				e2ePrint("scale %s", row)
			}
		})
	}
	if cfg.parts["latency"] {
		t.Run("latency", func(t *testing.T) { runLatency(t, bin, cfg) })
	}
	if cfg.parts["create"] {
		for r := 1; r <= cfg.runs; r++ {
			t.Run(fmt.Sprintf("create-%d", r), func(t *testing.T) { runCreateBurst(t, bin, testdb.URL(t), admin, cfg) })
		}
	}
}

// e2eServerNotes prints the server settings that shape the figures.
func e2eServerNotes(t *testing.T, admin *sqlx.DB) {
	var s struct {
		Version    string `db:"v"`
		Autovacuum string `db:"av"`
		MaxConn    int    `db:"mc"`
		SyncCommit string `db:"sc"`
	}
	require.NoError(t, admin.Get(&s, `SELECT current_setting('server_version') AS v, current_setting('autovacuum') AS av,
		current_setting('max_connections')::int AS mc, current_setting('synchronous_commit') AS sc`))
	load, _ := os.ReadFile("/proc/loadavg")
	e2ePrint("server: PostgreSQL %s, autovacuum=%s, synchronous_commit=%s, max_connections=%d; load average %s",
		s.Version, s.Autovacuum, s.SyncCommit, s.MaxConn, strings.Join(strings.Fields(string(load))[:3], " "))
}

func e2ePrint(format string, args ...any) {
	fmt.Println("PERF e2e " + fmt.Sprintf(format, args...))
}

// runBurst runs one burst of cfg.tasks tasks of shape on a fresh cluster of
// nOrch orchestrations and nWorkers workers on dbURL, and checks that every
// task completed with all its steps.
func runBurst(t *testing.T, bin, dbURL string, admin *sqlx.DB, cfg e2eConfig, shape string, nOrch, nWorkers int) e2eFigures {
	cl := startCluster(t, bin, dbURL, nOrch, nWorkers)
	hdb, err := sqlx.Open("postgres", withParam(dbURL, "application_name", appHarness))
	require.NoError(t, err)
	hdb.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = hdb.Close() })
	var dbName string
	require.NoError(t, hdb.Get(&dbName, `SELECT current_database()`))
	m := startListener(t, dbURL)
	time.Sleep(2 * time.Second) // let the startup's statistics reach pg_stat_database (backends flush about every second)
	// The idle services' own commit rate (polling, cycles), which the
	// burst's commits/step includes for as long as the burst lasts.
	var xa, xb int64
	require.NoError(t, admin.Get(&xa, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, dbName))
	time.Sleep(3 * time.Second)
	require.NoError(t, admin.Get(&xb, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, dbName))

	cdb := &countingDB{db: hdb}
	m.start(t, admin, dbName, cl)
	var t0 time.Time
	require.NoError(t, admin.Get(&t0, `SELECT clock_timestamp() AT TIME ZONE 'UTC'`))
	postStart := time.Now()
	ids := postBurst(t, cl, e2eShapes[shape], cfg.tasks, cfg.clients)
	posted := time.Since(postStart)

	ctx := context.Background()
	deadline := time.Now().Add(cfg.timeout)
	for {
		var open int
		require.NoError(t, cdb.get(ctx, &open, `SELECT count(*) FROM tasker_tasks WHERE NOT complete`))
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			m.finish(t, cdb.count())
			t.Fatalf("%d of %d tasks still incomplete after %s", open, cfg.tasks, cfg.timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f := m.finish(t, cdb.count())

	// Correctness, after the measurement.
	var tasks struct {
		N        int       `db:"n"`
		Complete int       `db:"complete"`
		First    time.Time `db:"first"`
		Last     time.Time `db:"last"`
	}
	require.NoError(t, hdb.Get(&tasks, `SELECT count(*) AS n, count(*) FILTER (WHERE complete) AS complete,
		min(created_at) AS first, max(completed_at) AS last FROM tasker_tasks WHERE task_uuid = ANY($1)`, pq.Array(ids)))
	require.Equal(t, cfg.tasks, tasks.N, "tasks created")
	require.Equal(t, cfg.tasks, tasks.Complete, "tasks complete")
	var steps struct {
		N        int `db:"n"`
		Complete int `db:"complete"`
	}
	require.NoError(t, hdb.Get(&steps, `SELECT count(*) AS n, count(*) FILTER (WHERE tr.to_state = 'complete') AS complete
		FROM tasker_workflow_steps ws
		LEFT JOIN tasker_workflow_step_transitions tr ON tr.workflow_step_uuid = ws.workflow_step_uuid AND tr.most_recent
		WHERE ws.task_uuid = ANY($1)`, pq.Array(ids)))
	require.Equal(t, e2eStepsPerTask*cfg.tasks, steps.N, "steps")
	require.Equal(t, e2eStepsPerTask*cfg.tasks, steps.Complete, "steps whose current state is complete")
	f.steps = steps.N
	f.firstCreated, f.lastComplete = tasks.First, tasks.Last
	f.elapsed = tasks.Last.Sub(t0)
	f.posted = posted
	f.idleCommitsPerSec = float64(xb-xa) / 3
	return f
}

// postBurst POSTs n tasks of the template name with the given number of
// concurrent clients, spread round robin over the orchestrations; it returns
// the task UUIDs and fails the test on any non-200 answer.
func postBurst(t *testing.T, cl *e2eCluster, name string, n, clients int) []string {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxIdleConns: 2 * clients},
		Timeout: 2 * time.Minute}
	defer client.CloseIdleConnections()
	ids := make([]string, n)
	var next atomic.Int64
	var failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				id, err := postTask(client, cl.orchs[i%len(cl.orchs)].url, name)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failures.Load(), "failed POSTs, first: %v", firstErr.Load())
	return ids
}

func postTask(client *http.Client, orch, name string) (string, error) {
	body := fmt.Sprintf(`{"name":%q,"namespace":"examples","version":"1.0.0","context":{"even_number":2}}`, name)
	resp, err := client.Post(orch+"/v1/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /v1/tasks: HTTP %d", resp.StatusCode)
	}
	var out struct {
		TaskUUID string `json:"task_uuid"`
	}
	if err := decode(resp, &out); err != nil {
		return "", err
	}
	return out.TaskUUID, nil
}

func printFigures(label string, f e2eFigures) {
	e2ePrint("%s: %d steps in %s (first POST → last completed_at; the POSTs took %s) = %.1f steps/s",
		label, f.steps, f.elapsed.Round(time.Millisecond), f.posted.Round(time.Millisecond), f.stepsPerSec())
	if f.cpuOK {
		e2ePrint("%s: CPU ms/step: orchestration process %.3f, worker processes %.3f, orchestration PG backends %.3f, worker PG backends %.3f, total %.3f",
			label, f.perStep(f.orchCPU), f.perStep(f.workerCPU), f.perStep(f.orchPG), f.perStep(f.workerPG), f.perStep(f.totalCPU()))
		e2ePrint("%s: peak service connections (sampled every 200 ms): %d", label, f.peakBackends)
	} else {
		e2ePrint("%s: CPU per step not available (server not on this host or /proc unreadable)", label)
	}
	e2ePrint("%s: commits/step %.3f (xact_commit delta %d of this database, %d harness queries subtracted); notifications/step on pgmq_message_ready %.3f (upper bound of NOTIFY-issuing commits/step)",
		label, float64(f.commits)/float64(f.steps), f.commits, f.harnessXacts, float64(f.notifications)/float64(f.steps))
	queues := make([]string, 0, len(f.notifyBy))
	for q := range f.notifyBy {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	var parts []string
	for _, q := range queues {
		parts = append(parts, fmt.Sprintf("%s %.3f", q, float64(f.notifyBy[q])/float64(f.steps)))
	}
	e2ePrint("%s: notifications/step by queue: %s; idle services before the burst: %.1f commits/s (included in commits/step while the burst lasts)",
		label, strings.Join(parts, ", "), f.idleCommitsPerSec)
}

func printMedians(label string, fs []e2eFigures) {
	if len(fs) == 0 {
		return
	}
	ms := func(pick func(e2eFigures) time.Duration) float64 {
		return medianOf(fs, func(f e2eFigures) float64 { return f.perStep(pick(f)) })
	}
	e2ePrint("%s: %.1f steps/s", label, medianOf(fs, e2eFigures.stepsPerSec))
	if fs[0].cpuOK {
		e2ePrint("%s: CPU ms/step: orchestration process %.3f, worker processes %.3f, orchestration PG backends %.3f, worker PG backends %.3f, total %.3f",
			label, ms(func(f e2eFigures) time.Duration { return f.orchCPU }), ms(func(f e2eFigures) time.Duration { return f.workerCPU }),
			ms(func(f e2eFigures) time.Duration { return f.orchPG }), ms(func(f e2eFigures) time.Duration { return f.workerPG }),
			ms(e2eFigures.totalCPU))
	}
	e2ePrint("%s: commits/step %.3f; notifications/step %.3f (upper bound of NOTIFY-issuing commits/step)", label,
		medianOf(fs, func(f e2eFigures) float64 { return float64(f.commits) / float64(f.steps) }),
		medianOf(fs, func(f e2eFigures) float64 { return float64(f.notifications) / float64(f.steps) }))
}

func medianOf(fs []e2eFigures, pick func(e2eFigures) float64) float64 {
	xs := make([]float64, len(fs))
	for i, f := range fs {
		xs[i] = pick(f)
	}
	return median(xs)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// runLatency sends linear tasks one at a time to 1 orchestration + 2
// workers and prints two latencies per task: created_at → completed_at from
// the database (server clock only), and POST sent → completed_at (client
// clock against the server's completed_at: valid when both run on this host).
func runLatency(t *testing.T, bin string, cfg e2eConfig) {
	dbURL := testdb.URL(t)
	cl := startCluster(t, bin, dbURL, 1, 2)
	hdb, err := sqlx.Open("postgres", withParam(dbURL, "application_name", appHarness))
	require.NoError(t, err)
	t.Cleanup(func() { _ = hdb.Close() })
	client := &http.Client{Timeout: time.Minute}
	var dbLat, postLat []time.Duration
	for i := 0; i < cfg.latencyTasks; i++ {
		sent := time.Now().UTC()
		id, err := postTask(client, cl.orchs[0].url, e2eShapes["linear"])
		require.NoError(t, err)
		var row struct {
			Created   time.Time `db:"created_at"`
			Completed time.Time `db:"completed_at"`
		}
		deadline := time.Now().Add(time.Minute)
		for {
			err := hdb.Get(&row, `SELECT created_at, completed_at FROM tasker_tasks WHERE task_uuid = $1 AND complete`, id)
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "task %s not complete after 1m: %v", id, err)
			time.Sleep(5 * time.Millisecond)
		}
		dbLat = append(dbLat, row.Completed.Sub(row.Created))
		postLat = append(postLat, time.Date(row.Completed.Year(), row.Completed.Month(), row.Completed.Day(), row.Completed.Hour(),
			row.Completed.Minute(), row.Completed.Second(), row.Completed.Nanosecond(), time.UTC).Sub(sent))
	}
	report(t, fmt.Sprintf("e2e latency linear 4-step, one at a time (1 orch, 2 workers), DB created_at→completed_at, %d tasks", cfg.latencyTasks), dbLat)
	report(t, fmt.Sprintf("e2e latency linear 4-step, one at a time (1 orch, 2 workers), client POST sent→DB completed_at (same host clock), %d tasks", cfg.latencyTasks), postLat)
}
