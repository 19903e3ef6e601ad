package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// BenchmarkClaimAndPersist measures the worker's per-step database cost: the
// claim transaction plus the outcome transaction (transition, results,
// completion send, message delete). It reports steps/s with parallel callers.
func BenchmarkClaimAndPersist(b *testing.B) {
	db := newDB(b)
	store := postgres.NewStepStore(db)
	const ns = "bench_ns"
	queue := domain.QueueName(ns)
	testdb.CreateQueue(b, db, domain.QueueStepResults)

	spec := testdb.TaskSpec{Namespace: ns, Name: "bench"}
	for i := 0; i < 50; i++ {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: "s" + string(rune('A'+i))})
	}
	type work struct {
		task, step uuid.UUID
		msg        int64
	}
	var items []work
	for len(items) < b.N {
		task := testdb.CreateTask(b, db, spec)
		for _, id := range task.Steps {
			items = append(items, work{task.TaskUUID, id, testdb.SendStepMessage(b, db, queue, task.TaskUUID, id)})
		}
	}
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := items[next.Add(1)-1]
			if _, err := store.ClaimStep(ctx, w.step, "bench"); err != nil {
				b.Error(err)
				return
			}
			ok, err := store.PersistOutcome(ctx, ports.StepOutcome{TaskUUID: w.task, StepUUID: w.step,
				Result: successResult(w.step, `1`), Queue: queue, MsgID: w.msg, WorkerID: "bench"})
			if err != nil || !ok {
				b.Errorf("persist %s: ok=%v err=%v", w.step, ok, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
	ids := make([]int64, 0, b.N)
	for _, w := range items[:b.N] {
		ids = append(ids, w.msg)
	}
	var left int
	require.NoError(b, db.Get(&left, `SELECT COUNT(*) FROM pgmq.q_bench_ns_queue WHERE msg_id = ANY($1)`, pq.Array(ids)))
	require.Zero(b, left, "every processed step message deleted")
}
