// Package perf prints performance figures of the services on a real
// database. It never asserts on time: figures depend on the machine. Run with
//
//	TASKER_PERF=1 go test ./tests/perf/ -run Orchestration -v -count=1
package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/tests/e2e"
)

func perfEnabled(t *testing.T) {
	if os.Getenv("TASKER_PERF") != "1" {
		t.Skip("set TASKER_PERF=1 to run performance figures")
	}
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func report(t *testing.T, name string, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	line := fmt.Sprintf("%s: n=%d p50=%s p90=%s p99=%s max=%s", name, len(d),
		percentile(d, 50).Round(10*time.Microsecond), percentile(d, 90).Round(10*time.Microsecond),
		percentile(d, 99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
	t.Log(line)
	fmt.Println("PERF", line)
}

// TestOrchestrationTaskCreationLatency posts 1,000 linear tasks one after the
// other and reports the HTTP round-trip latency.
func TestOrchestrationTaskCreationLatency(t *testing.T) {
	perfEnabled(t)
	db, url := e2e.OrchDB(t)
	o := e2e.StartOrchestrator(t, db, url)
	body := `{"name":"linear_workflow","namespace":"examples","version":"1.0.0","context":{"even_number":2}}`
	client := &http.Client{}
	var lat []time.Duration
	for i := 0; i < 1000; i++ {
		start := time.Now()
		resp, err := client.Post(o.URL()+"/v1/tasks", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		_ = resp.Body.Close()
		lat = append(lat, time.Since(start))
	}
	report(t, "task creation latency (POST /v1/tasks, 1000 sequential)", lat)
}

// TestOrchestrationLinearEndToEndLatency runs linear 4-step tasks one at a
// time with the scripted worker and reports created_at → completed_at as
// recorded by the database (no polling granularity).
func TestOrchestrationLinearEndToEndLatency(t *testing.T) {
	perfEnabled(t)
	db, url := e2e.OrchDB(t)
	o := e2e.StartOrchestrator(t, db, url)
	e2e.NewFakeWorker(db, "perf-worker").Start(t, 4)
	var lat []time.Duration
	for i := 0; i < 100; i++ {
		id := o.CreateTask(t, "linear_workflow", 2).TaskUUID
		require.Equal(t, "complete", o.WaitStatus(t, id, 30*time.Second))
		var d float64
		require.NoError(t, db.Get(&d, `SELECT EXTRACT(EPOCH FROM completed_at - created_at) FROM tasker_tasks WHERE task_uuid = $1`, id))
		lat = append(lat, time.Duration(d*float64(time.Second)))
	}
	report(t, "linear 4-step end-to-end latency (created_at→completed_at, 100 tasks)", lat)
}

// TestOrchestrationDiamondThroughput creates 500 diamond tasks concurrently
// and reports tasks/s and steps/s until the last one completes.
func TestOrchestrationDiamondThroughput(t *testing.T) {
	perfEnabled(t)
	const tasks = 500
	db, url := e2e.OrchDB(t)
	o := e2e.StartOrchestrator(t, db, url)
	e2e.NewFakeWorker(db, "perf-worker").Start(t, 8)
	start := time.Now()
	ids := make([]uuid.UUID, tasks)
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < tasks; i += 4 {
				ids[i] = o.CreateTask(t, "diamond_workflow", 2).TaskUUID
			}
		}()
	}
	wg.Wait()
	created := time.Since(start)
	require.Eventually(t, func() bool {
		var done int
		require.NoError(t, db.GetContext(context.Background(), &done, `SELECT COUNT(*) FROM tasker_tasks WHERE complete`))
		return done == tasks
	}, 10*time.Minute, 50*time.Millisecond)
	elapsed := time.Since(start)
	line := fmt.Sprintf("500 diamond tasks (1 orchestrator, 1 worker x8): created in %s, all complete in %s: %.1f tasks/s, %.1f steps/s",
		created.Round(time.Millisecond), elapsed.Round(time.Millisecond), tasks/elapsed.Seconds(), 4*tasks/elapsed.Seconds())
	t.Log(line)
	fmt.Println("PERF", line)
}

func decode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
