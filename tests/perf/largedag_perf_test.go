package perf

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/tests/e2e"
)

// largeDAGYAML is the DAG of adapters/web/orchestration's
// TestLargeDAGCreationIsLinear: step i depends on steps i-1, i-2 and i/2
// (up to three parents), ~3n edges; every handler is examples.square, so
// with even_number 0 every result is 0 and the fake worker's numbers stay
// small.
func largeDAGYAML(name string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nnamespace_name: examples\nversion: \"1.0.0\"\nsteps:\n", name)
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%d\n    handler: {callable: examples.square}\n", i)
		var deps []string
		seen := map[int]bool{}
		for _, d := range []int{i - 1, i - 2, i / 2} {
			if d >= 0 && d < i && !seen[d] {
				seen[d] = true
				deps = append(deps, fmt.Sprintf("s%d", d))
			}
		}
		if len(deps) > 0 {
			fmt.Fprintf(&b, "    dependencies: [%s]\n", strings.Join(deps, ", "))
		}
	}
	return b.String()
}

// TestLargeDAGExecutionRate is issue 13 risk 7's run-time half: a task of
// a 3,100-step template ran at 13 steps/s. It creates one task of a 300-
// (and a 1,000-, the limit) step template through the API, runs it to
// completion with the fake worker and prints creation time and steps/s.
// The DAG is a chain (step i needs step i-1), so this is a latency-bound
// rate: one orchestration round trip per step. TASKER_PERF_DAG_SIZES
// (e.g. "30,100,300") replaces the sizes.
func TestLargeDAGExecutionRate(t *testing.T) {
	perfEnabled(t)
	db, url := e2e.OrchDB(t)
	o := e2e.StartOrchestrator(t, db, url)
	e2e.NewFakeWorker(db, "perf-worker").Start(t, 8)
	store := postgres.NewTemplateStore(db)
	sizes := []int{300, 1000}
	if v := os.Getenv("TASKER_PERF_DAG_SIZES"); v != "" { // e.g. 30,100,300
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(t, err, "TASKER_PERF_DAG_SIZES")
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		name := fmt.Sprintf("perf_dag_%d", n)
		tmpl, err := domain.ParseTemplateYAML([]byte(largeDAGYAML(name, n)))
		require.NoError(t, err)
		require.NoError(t, tmpl.Validate())
		cfg, err := tmpl.ConfigurationJSON()
		require.NoError(t, err)
		_, err = store.RegisterTemplate(context.Background(), tmpl, cfg)
		require.NoError(t, err)

		start := time.Now()
		created := o.CreateTask(t, name, 0)
		creation := time.Since(start)
		require.Equal(t, n, created.StepCount)
		require.Equal(t, "complete", o.WaitStatus(t, created.TaskUUID, 10*time.Minute))
		elapsed := time.Since(start)
		var done int
		require.NoError(t, db.Get(&done, `SELECT COUNT(*) FROM tasker_workflow_steps WHERE task_uuid = $1 AND processed`, created.TaskUUID))
		require.Equal(t, n, done)
		var edges int
		require.NoError(t, db.Get(&edges, `SELECT COUNT(*) FROM tasker_workflow_step_edges e
			JOIN tasker_workflow_steps s ON s.workflow_step_uuid = e.to_step_uuid WHERE s.task_uuid = $1`, created.TaskUUID))
		line := fmt.Sprintf("%d-step template (%d edges, chain-shaped DAG): POST /v1/tasks answered %d in %s (%.0f steps/s created); task complete in %s = %.1f steps/s executed (1 orchestration, fake worker x8)",
			n, edges, http.StatusOK, creation.Round(time.Millisecond), float64(n)/creation.Seconds(), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
		t.Log(line)
		fmt.Println("PERF", line)
	}
}
