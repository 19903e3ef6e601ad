package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestFourWorkersRunEachStepExactlyOnce races four in-process workers (each
// with its own pool) over 1,000 single-step tasks on one database. Every
// step message is sent twice (a duplicate delivery), so workers really race
// on claims; vt and claim timeout are short so duplicates of running steps
// come back quickly and are deleted once the step is complete.
func TestFourWorkersRunEachStepExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-worker run skipped in -short mode")
	}
	const tasks, workers = 1000, 4
	db, url := workerDB(t)
	spec := registerFailTemplate(t, db, "ok_step")
	var counter countingHandlers
	for i := 0; i < workers; i++ {
		r := handler.NewRegistry()
		require.NoError(t, r.Register("ok_step", counter.handler(func(context.Context, *handler.StepContext) (handler.Success, error) {
			return handler.Succeed("done"), nil
		})))
		startWorker(t, url, workerOpts{namespaces: []string{failNS}, handlers: r, poolSize: 8, tune: func(c *engine.Config) {
			c.VisibilityTimeoutSeconds = 2
			c.StepClaimTimeout = 3 * time.Second
		}})
	}

	steps := make([]uuid.UUID, 0, tasks)
	for i := 0; i < tasks; i++ {
		task := testdb.CreateTask(t, db, spec)
		steps = append(steps, task.Steps["ok_step"])
		enqueue(t, db, failNS+"_queue", task.TaskUUID, task.Steps["ok_step"])
		testdb.SendStepMessage(t, db, failNS+"_queue", task.TaskUUID, task.Steps["ok_step"])
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM tasker_workflow_step_transitions WHERE most_recent AND to_state = 'complete'`))
		return n == tasks
	}, 5*time.Minute, 50*time.Millisecond)

	calls := counter.snapshot()
	require.Len(t, calls, tasks)
	for _, id := range steps {
		require.Equal(t, 1, calls[id], "handler of step %s invoked exactly once", id)
	}
	require.Eventually(t, func() bool { return len(testdb.QueueMessages(t, db, failNS+"_queue")) == 0 }, 30*time.Second, 50*time.Millisecond,
		"no step message left (duplicates deleted as stale)")
	require.Len(t, testdb.QueueMessages(t, db, domain.QueueStepResults), tasks, "one completion per step")
	var archived int
	require.NoError(t, db.Get(&archived, `SELECT count(*) FROM pgmq.a_failcases_queue`))
	require.Zero(t, archived)
}
