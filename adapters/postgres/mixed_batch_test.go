package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestMixedBatchClaimsAndOutcomesShareOneTransaction: a batch holding claims
// and outcomes commits them in one transaction, and each keeps its own
// compare-and-set: a claim of a fresh step wins; an outcome persists with its
// completion message and message delete; a claim of the step whose outcome
// is in the same batch (a duplicate message of a step in flight) loses to
// in_progress (claims run first) while the outcome still persists.
func TestMixedBatchClaimsAndOutcomesShareOneTransaction(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	ctx := context.Background()
	ns := "mixed_ns"
	done := newOutcomeFixture(t, db, store, ns)
	dup := newOutcomeFixture(t, db, store, ns)
	fresh := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: ns, Steps: []testdb.StepSpec{{Name: "a"}}})
	freshStep := fresh.Steps["a"]
	testdb.SetStepState(t, db, freshStep, domain.StepEnqueued)
	out := func(f outcomeFixture) ports.StepOutcome {
		return ports.StepOutcome{TaskUUID: f.task.TaskUUID, StepUUID: f.step, Result: successResult(f.step, `5`),
			Queue: f.queue, MsgID: f.msgID, WorkerID: "w-mixed"}
	}

	claimed, claimErrs, persisted, outErrs := store.MixedBatchForTest(ctx,
		[]postgres.BatchClaim{{Step: freshStep, Task: &fresh.TaskUUID, NS: &ns}, {Step: dup.step, Task: &dup.task.TaskUUID, NS: &ns}},
		[]ports.StepOutcome{out(done), out(dup)}, "w-mixed")
	require.Equal(t, []error{nil, nil}, claimErrs)
	require.Equal(t, []error{nil, nil}, outErrs)
	require.Equal(t, []bool{true, false}, claimed, "the fresh step is claimed; the step in flight is not")
	require.Equal(t, []bool{true, true}, persisted)

	rows := stepTransitionRows(t, db, freshStep)
	requireWellFormedHistory(t, rows)
	require.Equal(t, "in_progress", rows[len(rows)-1].ToState)
	for _, f := range []outcomeFixture{done, dup} {
		rows := stepTransitionRows(t, db, f.step)
		requireWellFormedHistory(t, rows)
		require.Equal(t, "complete", rows[len(rows)-1].ToState)
		require.Len(t, completionMessagesFor(t, f), 1)
		require.False(t, stepMessageExists(t, f))
	}
	var txs int
	require.NoError(t, db.Get(&txs, `SELECT COUNT(DISTINCT xmin::text) FROM tasker_workflow_step_transitions
		WHERE most_recent AND workflow_step_uuid = ANY($1::uuid[])`,
		[]string{freshStep.String(), done.step.String(), dup.step.String()}))
	require.Equal(t, 1, txs, "claims and outcomes of the batch commit in one transaction")
}

// TestConcurrentClaimsAndOutcomesShareTransactions: claims and outcomes
// submitted concurrently through the public methods are group-committed
// together: some claim's in_progress row and some outcome's complete row
// carry the same xmin, and every claim and outcome got its own answer.
func TestConcurrentClaimsAndOutcomesShareTransactions(t *testing.T) {
	t.Parallel()
	const n = 60
	db := newDB(t)
	store := postgres.NewStepStore(db)
	ctx := context.Background()
	ns := "mixedc_ns"
	fixtures := make([]outcomeFixture, n)
	fresh := make([]uuid.UUID, n)
	freshTasks := make([]uuid.UUID, n)
	for i := range fixtures {
		fixtures[i] = newOutcomeFixture(t, db, store, ns)
		task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: ns, Steps: []testdb.StepSpec{{Name: "a"}}})
		fresh[i], freshTasks[i] = task.Steps["a"], task.TaskUUID
		testdb.SetStepState(t, db, fresh[i], domain.StepEnqueued)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, claimed, err := store.LoadAndClaim(ctx, fresh[i], freshTasks[i], ns, "w-mixedc")
			if err == nil && !claimed {
				err = errNotClaimed
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			f := fixtures[i]
			ok, err := store.PersistOutcome(ctx, ports.StepOutcome{TaskUUID: f.task.TaskUUID, StepUUID: f.step,
				Result: successResult(f.step, `1`), Queue: f.queue, MsgID: f.msgID, WorkerID: "w-mixedc"})
			if err == nil && !ok {
				err = errNotClaimed
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	claimIDs, outIDs := make([]string, n), make([]string, n)
	for i := range fixtures {
		claimIDs[i], outIDs[i] = fresh[i].String(), fixtures[i].step.String()
	}
	var shared int
	require.NoError(t, db.Get(&shared, `SELECT COUNT(*) FROM tasker_workflow_step_transitions c
		JOIN tasker_workflow_step_transitions o ON o.xmin::text = c.xmin::text
		WHERE c.most_recent AND c.to_state = 'in_progress' AND c.workflow_step_uuid = ANY($1::uuid[])
		  AND o.most_recent AND o.to_state = 'complete' AND o.workflow_step_uuid = ANY($2::uuid[])`, claimIDs, outIDs))
	require.Positive(t, shared, "some claims committed with some outcomes")
}

var errNotClaimed = errNotApplied("not claimed or not persisted")

type errNotApplied string

func (e errNotApplied) Error() string { return string(e) }
