package perf

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
)

// runCreateBurst measures task creation alone on the real binaries: one
// orchestration, and one worker that registers the templates and is stopped
// before the burst, so nothing but creation and the enqueue of the new tasks'
// root steps runs. It POSTs cfg.tasks linear tasks with cfg.clients
// concurrent clients and waits until every task has been started (its root
// step enqueued), then prints per task: the POST phase's wall clock, the CPU
// of the orchestration process and of its PostgreSQL backends, and commits.
func runCreateBurst(t *testing.T, bin, dbURL string, admin *sqlx.DB, cfg e2eConfig) {
	full := startCluster(t, bin, dbURL, 1, 1)
	full.workers[0].stop()
	cl := &e2eCluster{dbURL: dbURL, orchs: full.orchs}
	hdb, err := sqlx.Open("postgres", withParam(dbURL, "application_name", appHarness))
	require.NoError(t, err)
	hdb.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = hdb.Close() })
	var dbName string
	require.NoError(t, hdb.Get(&dbName, `SELECT current_database()`))
	m := startListener(t, dbURL)
	time.Sleep(2 * time.Second) // startup statistics reach pg_stat_database

	cdb := &countingDB{db: hdb}
	m.start(t, admin, dbName, cl)
	start := time.Now()
	ids := postBurst(t, cl, e2eShapes["linear"], cfg.tasks, cfg.clients)
	posted := time.Since(start)
	ctx := context.Background()
	deadline := time.Now().Add(cfg.timeout)
	for {
		var started int
		require.NoError(t, cdb.get(ctx, &started, `SELECT count(*) FROM tasker_task_transitions
			WHERE most_recent AND to_state = 'in_progress'`))
		if started == len(ids) {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d tasks started after %s", started, len(ids), cfg.timeout)
		time.Sleep(20 * time.Millisecond)
	}
	all := time.Since(start)
	f := m.finish(t, cdb.count())
	n := float64(len(ids))
	label := fmt.Sprintf("create linear (1 orch, no worker, %d clients)", cfg.clients)
	e2ePrint("%s: %d tasks POSTed in %s = %.1f tasks/s; all started (root step enqueued) after %s",
		label, len(ids), posted.Round(time.Millisecond), n/posted.Seconds(), all.Round(time.Millisecond))
	if f.cpuOK {
		e2ePrint("%s: CPU ms/task: orchestration process %.3f, orchestration PG backends %.3f, total %.3f",
			label, ms(f.orchCPU)/n, ms(f.orchPG)/n, ms(f.orchCPU+f.orchPG)/n)
	}
	e2ePrint("%s: commits/task %.3f (xact_commit delta %d, %d harness queries subtracted); notifications/task %.3f",
		label, float64(f.commits)/n, f.commits, f.harnessXacts, float64(f.notifications)/n)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
