package postgres_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// BenchmarkOrchestrationHop measures the orchestration's share of one step
// hop of a linear workflow: FinalizeAndEnqueue after the parent completed
// (lock the task, read it, re-check under the step lock, Enqueue + send,
// commit). Setup (task creation, the worker's transitions) is untimed. It
// reports p50/p90 of the hop in ms besides the mean.
func BenchmarkOrchestrationHop(b *testing.B) {
	// As tasker-orchestration connects: lib/pq binary_parameters, so an
	// unprepared parameterised query is one round trip, not two.
	db, err := postgres.Open(context.Background(), testdb.URL(b)+"&binary_parameters=yes", postgres.PoolConfig{MaxOpenConns: 8})
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	store := postgres.NewOrchestrationStore(db)
	testdb.CreateQueue(b, db, "bench_orch_queue")
	spec := testdb.TaskSpec{Namespace: "bench_orch", Name: "pair",
		Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		task := testdb.CreateTask(b, db, spec)
		_, enq, err := store.FinalizeAndEnqueue(ctx, task.TaskUUID, ports.ConsumedMessages{})
		require.NoError(b, err)
		require.Equal(b, 1, enq.StepsEnqueued)
		testdb.SetStepState(b, db, task.Steps["a"], domain.StepInProgress)
		testdb.SetStepState(b, db, task.Steps["a"], domain.StepComplete)
		b.StartTimer()
		start := time.Now()
		_, enq, err = store.FinalizeAndEnqueue(ctx, task.TaskUUID, ports.ConsumedMessages{})
		lat = append(lat, time.Since(start))
		require.NoError(b, err)
		require.Equal(b, 1, enq.StepsEnqueued)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
