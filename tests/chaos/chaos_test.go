package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// Environment of the chaos run.
const (
	// EnvPGRestart adds a PostgreSQL restart to the faults. The cluster is
	// TASKER_CHAOS_PG_CLUSTER ("<version> <name>" for pg_ctlcluster), which
	// must not be the shared server: point TASKER_TEST_DATABASE_URL at it.
	EnvPGRestart = "TASKER_CHAOS_PG_RESTART"
	EnvPGCluster = "TASKER_CHAOS_PG_CLUSTER"
	// EnvSeed fixes the fault order (default: time based, printed).
	EnvSeed = "TASKER_CHAOS_SEED"
)

// chaosPlan sizes one run.
type chaosPlan struct {
	steps, workers, orchestrations int
	chainSleepMs                   int
	// submitWindow spreads task creation so faults hit work in flight.
	submitWindow time.Duration
	blackout     time.Duration
	faults       []string
	restart      bool
}

func shortPlan() chaosPlan {
	return chaosPlan{steps: 1000, workers: 2, orchestrations: 2, chainSleepMs: 1000, submitWindow: 12 * time.Second, blackout: 10 * time.Second,
		faults: []string{"kill_worker", "purge_backends", "kill_orchestration", "blackout", "kill_worker", "kill_orchestration"}}
}

func longPlan() chaosPlan {
	p := chaosPlan{steps: 10000, workers: 4, orchestrations: 2, chainSleepMs: 300, submitWindow: 60 * time.Second, blackout: 10 * time.Second}
	for range 3 {
		p.faults = append(p.faults, "kill_worker", "kill_worker", "kill_orchestration", "purge_backends")
	}
	p.faults = append(p.faults, "blackout")
	return p
}

const chainTemplate = `name: slow_chain
namespace_name: chaos
version: "1.0.0"
steps:
  - name: nap_1
    handler: {callable: test.sleep}
  - name: nap_2
    dependencies: [nap_1]
    handler: {callable: test.sleep}
  - name: nap_3
    dependencies: [nap_2]
    handler: {callable: test.sleep}
  - name: nap_4
    dependencies: [nap_3]
    handler: {callable: test.sleep}
`

// cluster is the set of running services, restarted as they are killed.
type cluster struct {
	t       *testing.T
	dbURL   string
	tplDir  string
	mu      sync.Mutex
	orchs   []*proc
	workers []*proc
}

func (c *cluster) orchURLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.orchs))
	for i, o := range c.orchs {
		out[i] = o.URL
	}
	return out
}

func (c *cluster) startWorker(i int) {
	urls := c.orchURLs()
	w := startWorker(c.t, c.dbURL, urls[i%len(urls)], "chaos,examples", c.tplDir)
	c.mu.Lock()
	c.workers[i] = w
	c.mu.Unlock()
}

func (c *cluster) startOrch(i int) {
	o := startOrchestration(c.t, c.dbURL)
	c.mu.Lock()
	c.orchs[i] = o
	c.mu.Unlock()
}

// figures are what a run prints.
type figures struct {
	tasks, steps          int
	kills                 map[string]int
	purges, terminated    int
	blackouts, restarts   int
	createAttempts        atomic.Int64
	lastCreated           atomic.Int64 // UnixNano of the last successful create
	stepsInDB, stepsDone  int
	lost, duplicates      int
	doubleCompletions     int
	messagesLeft, dlqLeft int
	drain                 time.Duration
	total                 time.Duration
}

func TestChaosShort(t *testing.T) {
	runChaos(t, shortPlan())
}

func TestChaosLong(t *testing.T) {
	if os.Getenv(EnvLong) != "1" {
		t.Skip("10,000 steps, 4 workers, 2 orchestrations; run with " + EnvLong + "=1 (task chaos)")
	}
	p := longPlan()
	if os.Getenv(EnvPGRestart) == "1" {
		p.restart = true
		p.faults = append(p.faults, "pg_restart")
	}
	runChaos(t, p)
}

func runChaos(t *testing.T, plan chaosPlan) {
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(EnvSeed); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rng.Shuffle(len(plan.faults), func(i, j int) { plan.faults[i], plan.faults[j] = plan.faults[j], plan.faults[i] })
	if plan.restart {
		require.NotEmpty(t, os.Getenv(EnvPGCluster), EnvPGCluster+" names the cluster to restart")
	}
	t.Logf("CHAOS seed=%d plan: %d steps, %d workers, %d orchestrations, faults %v", seed, plan.steps, plan.workers, plan.orchestrations, plan.faults)

	dbURL := testdb.URL(t)
	if plan.restart {
		require.NotContains(t, dbURL, ":5432/", "never restart the shared server on 5432")
	}
	db := open(t, dbURL)
	examples, err := os.ReadDir(filepath.Join("..", "..", "configs", "tasks", "examples"))
	require.NoError(t, err)
	files := map[string]string{"slow_chain": chainTemplate}
	for _, e := range examples {
		b, err := os.ReadFile(filepath.Join("..", "..", "configs", "tasks", "examples", e.Name()))
		require.NoError(t, err)
		files[strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))] = string(b)
	}
	c := &cluster{t: t, dbURL: dbURL, tplDir: writeTemplates(t, db, files),
		orchs: make([]*proc, plan.orchestrations), workers: make([]*proc, plan.workers)}
	for i := range plan.orchestrations {
		c.startOrch(i)
	}
	for i := range plan.workers {
		c.startWorker(i)
	}

	fig := &figures{kills: map[string]int{}}
	fig.tasks = plan.steps / 4
	fig.steps = fig.tasks * 4
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// Submit every task while the faults run: each logical create has one
	// Idempotency-Key, kept across retries and across orchestrations.
	var submitted sync.WaitGroup
	next := atomic.Int64{}
	submitStart := time.Now()
	for range 4 {
		submitted.Add(1)
		go func() {
			defer submitted.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= fig.tasks {
					return
				}
				if due := submitStart.Add(plan.submitWindow * time.Duration(i) / time.Duration(fig.tasks)); time.Until(due) > 0 {
					time.Sleep(time.Until(due))
				}
				submit(ctx, t, c, fig, i, plan.chainSleepMs)
			}
		}()
	}
	inFlight := func() int {
		var n int
		if err := db.Get(&n, `SELECT COUNT(*) FROM tasker_tasks WHERE NOT complete`); err != nil {
			return -1 // the test's own connection was just terminated
		}
		return n
	}

	admin := adminDB(t, dbURL)
	dbName := databaseName(t, dbURL)
	var lastFault time.Time
	for _, f := range plan.faults {
		time.Sleep(time.Duration(1000+rng.IntN(1000)) * time.Millisecond)
		switch f {
		case "kill_worker":
			i := rng.IntN(plan.workers)
			c.mu.Lock()
			w := c.workers[i]
			c.mu.Unlock()
			w.Kill()
			fig.kills["worker"]++
			c.startWorker(i)
		case "kill_orchestration":
			i := rng.IntN(plan.orchestrations)
			c.mu.Lock()
			o := c.orchs[i]
			c.mu.Unlock()
			o.Kill()
			fig.kills["orchestration"]++
			c.startOrch(i)
		case "purge_backends":
			fig.terminated += terminateBackends(t, admin, dbName)
			fig.purges++
		case "blackout":
			_, err := admin.Exec(`ALTER DATABASE ` + pqIdent(dbName) + ` ALLOW_CONNECTIONS false`)
			require.NoError(t, err)
			fig.terminated += terminateBackends(t, admin, dbName)
			time.Sleep(plan.blackout)
			_, err = admin.Exec(`ALTER DATABASE ` + pqIdent(dbName) + ` ALLOW_CONNECTIONS true`)
			require.NoError(t, err)
			fig.blackouts++
		case "pg_restart":
			out, err := exec.Command("pg_ctlcluster", append(strings.Fields(os.Getenv(EnvPGCluster)), "restart")...).CombinedOutput()
			require.NoError(t, err, string(out))
			fig.restarts++
		}
		lastFault = time.Now()
		t.Logf("CHAOS fault %s at +%s (%d tasks not complete)", f, time.Since(began).Round(100*time.Millisecond), inFlight())
	}
	submitted.Wait()
	require.NoError(t, ctx.Err(), "every task submitted")

	// Drain: every task terminal.
	require.Eventually(t, func() bool {
		var open int
		if err := db.Get(&open, `SELECT COUNT(*) FROM tasker_tasks t WHERE NOT EXISTS (SELECT 1 FROM tasker_task_transitions tt
			WHERE tt.task_uuid = t.task_uuid AND tt.most_recent AND tt.to_state IN ('complete','error','cancelled','resolved_manually'))`); err != nil {
			return false
		}
		return open == 0
	}, 10*time.Minute, 200*time.Millisecond, "every task terminal")
	fig.drain = time.Since(lastFault)
	drainAfterSubmit := time.Since(time.Unix(0, fig.lastCreated.Load()))

	var created int
	require.NoError(t, db.Get(&created, `SELECT COUNT(*) FROM tasker_tasks`))
	fig.duplicates = created - fig.tasks
	var states []string
	require.NoError(t, db.Select(&states, `SELECT DISTINCT to_state FROM tasker_task_transitions WHERE most_recent`))
	require.NoError(t, db.Get(&fig.lost, `SELECT COUNT(*) FROM tasker_tasks t JOIN tasker_task_transitions tt
		ON tt.task_uuid = t.task_uuid AND tt.most_recent WHERE tt.to_state <> 'complete'`))
	require.NoError(t, db.Get(&fig.stepsInDB, `SELECT COUNT(*) FROM tasker_workflow_steps`))
	require.NoError(t, db.Get(&fig.stepsDone, `SELECT COUNT(*) FROM tasker_workflow_step_transitions WHERE most_recent AND to_state = 'complete'`))
	require.NoError(t, db.Get(&fig.doubleCompletions, `SELECT COUNT(*) FROM (SELECT workflow_step_uuid FROM tasker_workflow_step_transitions
		WHERE to_state = 'complete' GROUP BY workflow_step_uuid HAVING COUNT(*) > 1) x`))
	// Messages: wait for stale duplicates to be read and dropped (one vt).
	countMessages := func() int {
		n := 0
		for _, q := range []string{"chaos_queue", "examples_queue", domain.QueueStepResults, domain.QueueTaskRequests, domain.QueueTaskFinalizations} {
			var k int
			if err := db.Get(&k, `SELECT COUNT(*) FROM pgmq.`+pqIdent("q_"+q)); err == nil {
				n += k
			}
		}
		return n
	}
	require.Eventually(t, func() bool { fig.messagesLeft = countMessages(); return fig.messagesLeft == 0 }, 60*time.Second, 250*time.Millisecond,
		"no message left")
	require.NoError(t, db.Get(&fig.dlqLeft, `SELECT COUNT(*) FROM tasker_go_dlq_entries`))
	fig.total = time.Since(began)

	t.Logf("CHAOS figures: tasks=%d steps=%d (in db %d, complete %d) create_attempts=%d kills{worker=%d orchestration=%d} backend_purges=%d backends_terminated=%d "+
		"connection_blackouts=%d (%s each) pg_restarts=%d | lost=%d duplicates=%d double_completions=%d messages_left=%d dlq_entries=%d | "+
		"drain_after_last_fault=%s (after_last_create=%s) total=%s final_states=%v",
		fig.tasks, fig.steps, fig.stepsInDB, fig.stepsDone, fig.createAttempts.Load(), fig.kills["worker"], fig.kills["orchestration"], fig.purges, fig.terminated,
		fig.blackouts, plan.blackout, fig.restarts, fig.lost, fig.duplicates, fig.doubleCompletions, fig.messagesLeft, fig.dlqLeft,
		fig.drain.Round(100*time.Millisecond), drainAfterSubmit.Round(100*time.Millisecond), fig.total.Round(100*time.Millisecond), states)
	require.Equal(t, []string{"complete"}, states, "every task complete")
	require.Zero(t, fig.lost)
	require.Equal(t, fig.steps, fig.stepsInDB, "every step of every task exists")
	require.Equal(t, fig.steps, fig.stepsDone, "every step complete")
	require.Zero(t, fig.duplicates, "one task per logical create")
	require.Zero(t, fig.doubleCompletions, "no step completed twice")
	require.Zero(t, fig.dlqLeft, "DLQ empty")
}

// submit creates task i (a slow chain or a diamond) until it succeeds,
// against any orchestration, with one Idempotency-Key.
func submit(ctx context.Context, t *testing.T, c *cluster, fig *figures, i, sleepMs int) {
	req := domain.TaskRequest{Name: "diamond_workflow", Namespace: "examples", Version: "1.0.0",
		Context: []byte(fmt.Sprintf(`{"even_number":%d}`, 2+2*(i%5)))}
	if i%2 == 0 {
		req = domain.TaskRequest{Name: "slow_chain", Namespace: "chaos", Version: "1.0.0",
			Context: []byte(fmt.Sprintf(`{"sleep_ms":%d,"n":%d}`, sleepMs, i))}
	} else {
		req.Context = []byte(fmt.Sprintf(`{"even_number":%d,"n":%d}`, 2+2*(i%5), i))
	}
	kctx := httpclient.WithIdempotencyKey(ctx, "chaos-"+uuid.NewString())
	for attempt := 0; ctx.Err() == nil; attempt++ {
		urls := c.orchURLs()
		cfg := httpclient.DefaultConfig()
		cfg.BaseURL = urls[(i+attempt)%len(urls)]
		cfg.Timeout = 5 * time.Second
		cfg.MaxRetries = 2
		cfg.Backoff.Initial = 100 * time.Millisecond
		cfg.Breaker.Enabled = false
		client, err := httpclient.New(cfg)
		require.NoError(t, err)
		fig.createAttempts.Add(1)
		_, err = client.CreateTask(kctx, req)
		client.CloseIdleConnections()
		if err == nil {
			for now := time.Now().UnixNano(); ; {
				if last := fig.lastCreated.Load(); last >= now || fig.lastCreated.CompareAndSwap(last, now) {
					break
				}
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// adminDB connects to the server's postgres database, which the blackout
// leaves reachable.
func adminDB(t *testing.T, dbURL string) *sqlx.DB {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.Path = "/postgres"
	return open(t, u.String())
}

func databaseName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	return strings.TrimPrefix(u.Path, "/")
}

// terminateBackends ends every backend connected to the test database (the
// services' pools and LISTEN connections, and the test's own).
func terminateBackends(t *testing.T, admin *sqlx.DB, dbName string) int {
	t.Helper()
	var n int
	require.NoError(t, admin.Get(&n, `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()) x`, dbName))
	return n
}

func pqIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
