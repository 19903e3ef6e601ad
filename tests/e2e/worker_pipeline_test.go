package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
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
