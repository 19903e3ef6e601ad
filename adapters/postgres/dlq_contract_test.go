package postgres_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/postgres/dlqtest"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// TestDLQContract runs the dead-letter ports' contract suite against the
// DLQStore, each subtest on a database of its own.
func TestDLQContract(t *testing.T) {
	dlqtest.Run(t, func(t *testing.T) dlqtest.Subject {
		db := newDB(t)
		return dlqtest.Subject{
			Store: postgres.NewDLQStore(db),
			World: dlqWorld(db),
			MakeUnavailable: func(t *testing.T) {
				_, err := db.Exec(`DROP TABLE ` + postgres.DLQTable)
				require.NoError(t, err)
			},
		}
	})
}

// dlqWorld makes and reads the suite's work with the testdb factories.
func dlqWorld(db *sqlx.DB) dlqtest.World {
	return dlqtest.World{
		EnqueuedStep: func(t *testing.T, namespace string, stale bool) (uuid.UUID, uuid.UUID) {
			tk := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: namespace, Steps: []testdb.StepSpec{{Name: "a"}, {Name: "b", Deps: []string{"a"}}}})
			testdb.SetTaskState(t, db, tk.TaskUUID, domain.TaskInProgress)
			testdb.SetStepState(t, db, tk.Steps["a"], domain.StepEnqueued)
			if stale {
				backdate(t, db, tk.TaskUUID)
			}
			return tk.TaskUUID, tk.Steps["a"]
		},
		SetAttempts: func(t *testing.T, step uuid.UUID, n int) {
			_, err := db.Exec(`UPDATE tasker_workflow_steps SET attempts = $2 WHERE workflow_step_uuid = $1`, step, n)
			require.NoError(t, err)
		},
		Attempts: func(t *testing.T, step uuid.UUID) int {
			var n int
			require.NoError(t, db.Get(&n, `SELECT attempts FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, step))
			return n
		},
		StepState:   func(t *testing.T, step uuid.UUID) domain.StepState { return currentStepState(t, db, step) },
		TaskState:   func(t *testing.T, task uuid.UUID) domain.TaskState { return currentTaskState(t, db, task) },
		CreateQueue: func(t *testing.T, queue string) { testdb.CreateQueue(t, db, queue) },
		QueueLength: func(t *testing.T, queue string) int { return len(testdb.QueueMessages(t, db, queue)) },
	}
}
