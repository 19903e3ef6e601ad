package perf

import (
	"bytes"
	"context"
	"fmt"
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
	_ "github.com/lib/pq" // driver for the figures' queries
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// binaries builds tasker-orchestration and tasker-worker into a temp dir.
func binaries(t *testing.T) string {
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/tasker-orchestration", "./cmd/tasker-worker")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return dir
}

func loopbackAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// launch starts a binary and waits for readyPath; SIGTERM at cleanup.
func launch(t *testing.T, bin, addr, readyPath string, env []string, args ...string) string {
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if dir := os.Getenv("TASKER_PERF_LOG_DIR"); dir != "" {
			mu.Lock()
			defer mu.Unlock()
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(bin)+".log"), out.Bytes(), 0o644)
		}
	})
	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + readyPath)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 50*time.Millisecond, "%s not ready", bin)
	return url
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// startBinaries runs one orchestration and one worker on a fresh database.
func startBinaries(t *testing.T) (string, *sqlx.DB) {
	bin := binaries(t)
	dbURL := testdb.URL(t)
	binURL := dbURL
	if os.Getenv("TASKER_PERF_LOG_STATEMENTS") == "1" {
		// Both binaries log every statement with its duration to the server
		// log (log_min_duration_statement=0, superuser only).
		binURL += "&options=-c%20log_min_duration_statement%3D0"
	}
	if o := os.Getenv("TASKER_PERF_PG_OPTIONS"); o != "" {
		// Extra server settings for both binaries' sessions, URL-encoded
		// (e.g. auto_explain: -c%20session_preload_libraries%3Dauto_explain…).
		binURL += "&options=" + o
	}
	env := []string{"DATABASE_URL=" + binURL, "TASKER_ENV=test"}
	oAddr, wAddr := loopbackAddr(t), loopbackAddr(t)
	orch := launch(t, filepath.Join(bin, "tasker-orchestration"), oAddr, "/ready",
		append(env, "TASKER_ORCHESTRATION__BIND_ADDRESS="+oAddr), "serve")
	launch(t, filepath.Join(bin, "tasker-worker"), wAddr, "/health/ready",
		append(env, "TASKER_WORKER__NAMESPACES=examples", "TASKER_WORKER_WEB__BIND_ADDRESS="+wAddr,
			"TASKER_ORCHESTRATION_API__BASE_URL="+orch))
	db, err := sqlx.Open("postgres", dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return orch, db
}

func post(t *testing.T, orch, name string) string {
	body := fmt.Sprintf(`{"name":%q,"namespace":"examples","version":"1.0.0","context":{"even_number":2}}`, name)
	resp, err := http.Post(orch+"/v1/tasks", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, 200, resp.StatusCode)
	var out struct {
		TaskUUID string `json:"task_uuid"`
	}
	require.NoError(t, decode(resp, &out))
	return out.TaskUUID
}

// TestOrchestrationBinariesLinearLatency: linear 4-step tasks one at a time
// through the real binaries; created_at → completed_at from the database.
func TestOrchestrationBinariesLinearLatency(t *testing.T) {
	perfEnabled(t)
	orch, db := startBinaries(t)
	var lat []time.Duration
	for i := 0; i < 100; i++ {
		id := post(t, orch, "linear_workflow")
		var d float64
		require.Eventually(t, func() bool {
			err := db.Get(&d, `SELECT EXTRACT(EPOCH FROM completed_at - created_at) FROM tasker_tasks WHERE task_uuid = $1 AND complete`, id)
			return err == nil
		}, 30*time.Second, 2*time.Millisecond)
		lat = append(lat, time.Duration(d*float64(time.Second)))
	}
	report(t, "linear 4-step end-to-end latency, real binaries (created_at→completed_at, 100 tasks)", lat)
	hopBreakdown(t, db)
}

// hopBreakdownSQL splits every linear task's latency into hops from the
// transition timestamps (created_at is NOW(), the start of the writing
// transaction): task created → step 1 enqueued; per step enqueued → claimed
// (worker pickup), claimed → outcome (handler and outcome transaction), and
// outcome → next step enqueued or task completed (the result hop).
const hopBreakdownSQL = `
WITH per AS (
	SELECT ws.task_uuid,
	       MAX(tr.created_at) FILTER (WHERE tr.to_state = 'enqueued') AS enq,
	       MAX(tr.created_at) FILTER (WHERE tr.to_state = 'in_progress') AS claim,
	       MAX(tr.created_at) FILTER (WHERE tr.to_state = 'complete') AS done
	FROM tasker_workflow_steps ws
	JOIN tasker_workflow_step_transitions tr ON tr.workflow_step_uuid = ws.workflow_step_uuid
	GROUP BY ws.task_uuid, ws.workflow_step_uuid
),
ord AS (
	SELECT p.*, t.created_at AS task_created, t.completed_at,
	       LEAD(p.enq) OVER (PARTITION BY p.task_uuid ORDER BY p.enq) AS next_enq
	FROM per p JOIN tasker_tasks t ON t.task_uuid = p.task_uuid
)
SELECT hop, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, AVG(ms) AS mean
FROM (
	SELECT '0 created→first enqueued' AS hop, EXTRACT(EPOCH FROM MIN(enq) - MIN(task_created)) * 1000 AS ms FROM ord GROUP BY task_uuid
	UNION ALL SELECT '1 enqueued→claimed', EXTRACT(EPOCH FROM claim - enq) * 1000 FROM ord
	UNION ALL SELECT '2 claimed→outcome', EXTRACT(EPOCH FROM done - claim) * 1000 FROM ord
	UNION ALL SELECT '3 outcome→next enqueued', EXTRACT(EPOCH FROM next_enq - done) * 1000 FROM ord WHERE next_enq IS NOT NULL
	UNION ALL SELECT '4 last outcome→completed_at', EXTRACT(EPOCH FROM completed_at - done) * 1000 FROM ord WHERE next_enq IS NULL
) h GROUP BY hop ORDER BY hop`

// hopBreakdown prints hopBreakdownSQL's medians and means.
func hopBreakdown(t *testing.T, db *sqlx.DB) {
	var rows []struct {
		Hop  string  `db:"hop"`
		P50  float64 `db:"p50"`
		Mean float64 `db:"mean"`
	}
	require.NoError(t, db.Select(&rows, hopBreakdownSQL))
	for _, r := range rows {
		line := fmt.Sprintf("linear hop %-30s p50=%.2fms mean=%.2fms", r.Hop, r.P50, r.Mean)
		t.Log(line)
		fmt.Println("PERF", line)
	}
}

// TestOrchestrationBinariesDiamondThroughput: 500 diamond tasks through one
// orchestration and one worker binary.
func TestOrchestrationBinariesDiamondThroughput(t *testing.T) {
	perfEnabled(t)
	orch, db := startBinaries(t)
	const tasks = 500
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < tasks; i += 4 {
				post(t, orch, "diamond_workflow")
			}
		}()
	}
	wg.Wait()
	created := time.Since(start)
	if os.Getenv("TASKER_PERF_ANALYZE") == "1" {
		// Diagnostic: plans with statistics of the loaded tables, as a
		// database past its first autovacuum would have them.
		_, err := db.Exec(`ANALYZE`)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		var done int
		require.NoError(t, db.GetContext(context.Background(), &done, `SELECT COUNT(*) FROM tasker_tasks WHERE complete`))
		return done == tasks
	}, 10*time.Minute, 50*time.Millisecond)
	elapsed := time.Since(start)
	line := fmt.Sprintf("500 diamond tasks, real binaries (1 orchestration, 1 worker): created in %s, all complete in %s: %.1f tasks/s, %.1f steps/s",
		created.Round(time.Millisecond), elapsed.Round(time.Millisecond), tasks/elapsed.Seconds(), 4*tasks/elapsed.Seconds())
	t.Log(line)
	fmt.Println("PERF", line)
}
