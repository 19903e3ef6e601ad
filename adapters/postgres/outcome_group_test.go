package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestPersistOutcomeGroupCommit: 16 callers persist 240 outcomes at once,
// each outcome twice (a duplicate delivery) and some with a wrong task.
// Every step ends with exactly one persisted outcome, one completion message
// and its step message deleted; wrong-task outcomes fail alone, writing
// nothing; and concurrent outcomes shared transactions (fewer distinct
// xmin values than outcome rows), which is the point of the group commit.
func TestPersistOutcomeGroupCommit(t *testing.T) {
	t.Parallel()
	const steps, callers = 240, 16
	db := newDB(t)
	store := postgres.NewStepStore(db)
	fixtures := make([]outcomeFixture, steps)
	for i := range fixtures {
		fixtures[i] = newOutcomeFixture(t, db, store, "group_ns")
	}
	type job struct {
		f         outcomeFixture
		wrongTask bool
	}
	jobs := make(chan job, 2*steps)
	for i, f := range fixtures {
		jobs <- job{f: f, wrongTask: i%40 == 0}
		jobs <- job{f: f} // duplicate: at most one of the two persists
	}
	close(jobs)
	var mu sync.Mutex
	persisted := map[uuid.UUID]int{}
	wrongTaskErrs := 0
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				o := ports.StepOutcome{TaskUUID: j.f.task.TaskUUID, StepUUID: j.f.step, Result: successResult(j.f.step, `7`),
					Queue: j.f.queue, MsgID: j.f.msgID, WorkerID: "w-group"}
				if j.wrongTask {
					o.TaskUUID = uuid.Must(uuid.NewV7())
				}
				ok, err := store.PersistOutcome(context.Background(), o)
				mu.Lock()
				if j.wrongTask {
					if err != nil && !ok {
						wrongTaskErrs++
					}
				} else if err != nil {
					t.Errorf("persist %s: %v", j.f.step, err)
				} else if ok {
					persisted[j.f.step]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, steps/40, wrongTaskErrs, "every wrong-task outcome rejected")
	require.Len(t, persisted, steps, "every step persisted by its correct outcome")
	for _, f := range fixtures {
		require.Equal(t, 1, persisted[f.step], "exactly one persisted outcome for %s", f.step)
		rows := stepTransitionRows(t, db, f.step)
		requireWellFormedHistory(t, rows)
		require.Equal(t, string(domain.StepComplete), rows[len(rows)-1].ToState)
		require.Len(t, completionMessagesFor(t, f), 1, "one completion message for %s", f.step)
		require.False(t, stepMessageExists(t, f), "step message deleted")
	}
	var rowsN, txs int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT xmin::text) FROM tasker_workflow_step_transitions
		WHERE to_state = 'complete' AND metadata->>'worker_id' = 'w-group'`).Scan(&rowsN, &txs))
	require.Equal(t, steps, rowsN)
	require.Less(t, txs, rowsN, "concurrent outcomes shared transactions")
	t.Logf("%d outcomes committed in %d transactions", rowsN, txs)
}
