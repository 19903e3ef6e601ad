package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/app/worker/engine"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestWorkerRunsExampleWorkflowsEnqueuedInDependencyOrder plays the
// orchestration (mark enqueued + send per ready step) against a real
// worker on Postgres and checks results, completion messages and queues.
func TestWorkerRunsExampleWorkflowsEnqueuedInDependencyOrder(t *testing.T) {
	db, url := workerDB(t)
	startWorker(t, url, workerOpts{})
	tests := []struct {
		template  string
		finalStep string
		want      string
	}{
		{"diamond_workflow", "diamond_end", pow(2, 8)},
		{"mixed_dag_workflow", "dag_finalize", pow(2, 24)},
		{"tree_workflow", "tree_final_convergence", pow(2, 32)},
		{"linear_workflow", "linear_step_4", pow(2, 16)},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			spec := exampleSpec(t, tt.template, 2)
			task := testdb.CreateTask(t, db, spec)
			runTaskAsOrchestration(t, db, spec, task, 30*time.Second)

			for name, id := range task.Steps {
				res := stepResults(t, db, id)
				require.True(t, res.Success, name)
				require.Equal(t, domain.ResultStatusCompleted, res.Status)
				require.Equal(t, id, res.StepUUID)
				require.NotNil(t, res.Metadata.WorkerID)
			}
			require.Equal(t, tt.want, string(stepResults(t, db, task.Steps[tt.finalStep]).Result))

			completions := messagesFor(t, db, domain.QueueStepResults, task.TaskUUID)
			require.Len(t, completions, len(task.Steps), "one completion message per step")
			seen := map[string]bool{}
			for _, c := range completions {
				require.False(t, seen[c.StepUUID.String()], "duplicate completion for %s", c.StepUUID)
				seen[c.StepUUID.String()] = true
			}
			require.Empty(t, messagesFor(t, db, "examples_queue", task.TaskUUID), "no step message left")
		})
	}
}

// TestWorkerPicksUpByNotification runs a worker whose polling fallback is
// 30 s: a step enqueued after start completes within seconds only because
// the message-ready NOTIFY on pgmq_message_ready.examples woke intake.
func TestWorkerPicksUpByNotification(t *testing.T) {
	db, url := workerDB(t)
	startWorker(t, url, workerOpts{
		notifier: func(t testing.TB) ports.MessageNotifier {
			l, err := pgmq.NewListener(context.Background(), pgmq.ListenerConfig{DSN: url,
				Channels: []string{pgmq.NamespaceReadyChannel("examples")}}, nil)
			require.NoError(t, err)
			return l
		},
		tune: func(c *engine.Config) { c.PollInterval = 30 * time.Second },
	})
	spec := exampleSpec(t, "linear_workflow", 4)
	task := testdb.CreateTask(t, db, spec)
	// Step 1 may be taken by the reader's first, immediate read; once it is
	// done the reader is certainly waiting on its 30 s poll timer.
	enqueue(t, db, "examples_queue", task.TaskUUID, task.Steps["linear_step_1"])
	require.Eventually(t, func() bool { return stepState(t, db, task.Steps["linear_step_1"]) == domain.StepComplete },
		10*time.Second, 5*time.Millisecond)
	start := time.Now()
	enqueue(t, db, "examples_queue", task.TaskUUID, task.Steps["linear_step_2"])
	require.Eventually(t, func() bool { return stepState(t, db, task.Steps["linear_step_2"]) == domain.StepComplete },
		5*time.Second, 5*time.Millisecond, "picked up long before the 30 s poll")
	t.Logf("enqueue → complete by notification in %s", time.Since(start).Round(time.Millisecond))
	require.Equal(t, "256", string(stepResults(t, db, task.Steps["linear_step_2"]).Result))
}
