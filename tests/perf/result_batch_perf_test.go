package perf

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestResultBatchCPU measures the orchestration's result processing alone
// (OrchestrationStore.ProcessTasks on batches of completion messages), in
// CPU per result of this process and of its PostgreSQL backends: half the
// results complete their task's last step (finalization), half complete a
// first step (the next one is enqueued), mixed in every batch as in a burst.
// The e2e harness's figures include task creation and the workers, and on
// a shared machine its wall clock follows everyone's load; this one counts
// only the result path.
//
//	TASKER_PERF=1 go test ./tests/perf/ -run TestResultBatchCPU -v -count=1
func TestResultBatchCPU(t *testing.T) {
	perfEnabled(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, testdb.URL(t), postgres.PoolConfig{MaxOpenConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	testdb.CreateQueue(t, db, "perf_ns_queue")
	testdb.CreateQueue(t, db, domain.QueueStepResults)

	const tasks, warmup = 560, 80
	ok, err := json.Marshal(domain.StepExecutionResult{Success: true, Result: json.RawMessage(`{"value":1}`),
		Status: domain.ResultStatusCompleted, Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 5, CompletedAt: time.Now().UTC()}})
	require.NoError(t, err)
	var results []ports.ResultItem
	spec := testdb.TaskSpec{Namespace: "perf_ns", Name: "linear", Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}}
	for i := range tasks {
		task := testdb.CreateTask(t, db, spec)
		testdb.SetTaskState(t, db, task.TaskUUID, domain.TaskInProgress)
		last := "a"
		if i%2 == 1 {
			last = "b"
		}
		for _, name := range []string{"a", "b"} {
			step := task.Steps[name]
			testdb.SetStepState(t, db, step, domain.StepEnqueued)
			testdb.SetStepState(t, db, step, domain.StepInProgress)
			testdb.SetStepState(t, db, step, domain.StepComplete)
			testdb.SetStepResults(t, db, step, ok)
			if name == last {
				break
			}
		}
		id := testdb.SendStepMessage(t, db, domain.QueueStepResults, task.TaskUUID, task.Steps[last])
		results = append(results, ports.ResultItem{MsgID: id, StepUUID: task.Steps[last]})
	}
	store := postgres.NewOrchestrationStore(db)
	run := func(items []ports.ResultItem, batch int) {
		for len(items) > 0 {
			n := min(batch, len(items))
			_, err := store.ProcessTasks(ctx, ports.TaskBatch{Queue: domain.QueueStepResults, Results: items[:n],
				Bookkeeping: func(ports.StepResultView) ports.ResultBookkeeping { return ports.ResultBookkeeping{} }})
			require.NoError(t, err)
			items = items[n:]
		}
	}
	run(results[:warmup], 10) // prepares the statements on both connections
	rest := results[warmup:]
	for i, batch := range []int{10, 40} {
		measured := rest[i*len(rest)/2 : (i+1)*len(rest)/2]
		meter := startCPUMeter(db)
		start := time.Now()
		run(measured, batch)
		elapsed := time.Since(start)
		meter.stop()
		meter.report(t, fmt.Sprintf("result batches of %d (half finalize, half enqueue)", batch), len(measured))
		line := fmt.Sprintf("PERF result batches of %d: %d results in %s", batch, len(measured), elapsed.Round(time.Millisecond))
		t.Log(line)
		_, _ = os.Stdout.WriteString(line + "\n")
	}
	var left int
	require.NoError(t, db.Get(&left, `SELECT COUNT(*) FROM pgmq.q_orchestration_step_results`))
	require.Zero(t, left, "every result message consumed")
	var sent int
	require.NoError(t, db.Get(&sent, `SELECT COUNT(*) FROM pgmq.q_perf_ns_queue`))
	require.Equal(t, tasks/2, sent, "every first step's task had its next step enqueued")
}
