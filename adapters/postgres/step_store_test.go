package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func TestClaimStep(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	cases := []struct {
		name        string
		setup       []domain.StepState
		parentState domain.StepState // "" = no parent
		wantErr     bool
		wantCurrent domain.StepState
		wantDeps    bool
	}{
		{name: "pending without parents", wantCurrent: domain.StepPending},
		{name: "pending with complete parent", parentState: domain.StepComplete},
		{name: "enqueued", setup: []domain.StepState{domain.StepEnqueued}},
		{name: "enqueued with pending parent (enqueued is trusted)", setup: []domain.StepState{domain.StepEnqueued}, parentState: domain.StepPending},
		{name: "pending with pending parent", parentState: domain.StepPending, wantErr: true, wantCurrent: domain.StepPending, wantDeps: false},
		{name: "in_progress", setup: []domain.StepState{domain.StepInProgress}, wantErr: true, wantCurrent: domain.StepInProgress, wantDeps: true},
		{name: "complete", setup: []domain.StepState{domain.StepComplete}, wantErr: true, wantCurrent: domain.StepComplete, wantDeps: true},
		{name: "error", setup: []domain.StepState{domain.StepError}, wantErr: true, wantCurrent: domain.StepError, wantDeps: true},
		{name: "cancelled", setup: []domain.StepState{domain.StepCancelled}, wantErr: true, wantCurrent: domain.StepCancelled, wantDeps: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := []testdb.StepSpec{{Name: "a"}}
			if tc.parentState != "" {
				steps = []testdb.StepSpec{{Name: "p"}, {Name: "a", Deps: []string{"p"}}}
			}
			task := testdb.CreateTask(t, db, testdb.TaskSpec{Steps: steps})
			if tc.parentState != "" && tc.parentState != domain.StepPending {
				testdb.SetStepState(t, db, task.Steps["p"], tc.parentState)
			}
			id := task.Steps["a"]
			for _, s := range tc.setup {
				testdb.SetStepState(t, db, id, s)
			}
			rowsBefore := stepTransitionRows(t, db, id)
			colsBefore := readStepColumns(t, db, id)

			snap, err := store.ClaimStep(context.Background(), id, "worker-7")
			if tc.wantErr {
				var nc *domain.NotClaimableError
				require.ErrorAs(t, err, &nc)
				require.Equal(t, tc.wantCurrent, nc.Current)
				require.Equal(t, tc.wantDeps, nc.DependenciesSatisfied)
				require.Equal(t, id.String(), nc.StepUUID)
				require.Equal(t, rowsBefore, stepTransitionRows(t, db, id), "loser writes nothing")
				require.Equal(t, colsBefore, readStepColumns(t, db, id), "loser writes nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, domain.StepInProgress, snap.State)
			require.Equal(t, colsBefore.Attempts+1, snap.Step.Attempts, "snapshot shows post-claim attempts")
			require.NotNil(t, snap.LastAttemptedAt)
			rows := stepTransitionRows(t, db, id)
			require.Len(t, rows, len(rowsBefore)+1)
			requireWellFormedHistory(t, rows)
			meta := decodeEventMetadata(t, rows[len(rows)-1].Metadata)
			require.Equal(t, map[string]any{"type": "Start"}, meta.Decoded)
			require.Equal(t, "worker-7", meta.WorkerID)
			require.True(t, readStepColumns(t, db, id).InProcess)
		})
	}
}

// TestClaimStepRace: 8 goroutines race on each of 200 steps, half through
// ClaimStep and half through LoadAndClaim. Exactly one wins per step; every
// loser gets NotClaimableError (or claimed = false) with the state
// in_progress; the database ends with one most_recent row per step and
// contiguous sort_keys; and concurrent claims shared transactions (group
// commit: fewer distinct xmin values than claims).
func TestClaimStepRace(t *testing.T) {
	t.Parallel()
	const steps, racers = 200, 8
	db := newDB(t)
	store := postgres.NewStepStore(db)
	spec := testdb.TaskSpec{Name: "race_task"}
	for i := 0; i < 20; i++ {
		spec.Steps = append(spec.Steps, testdb.StepSpec{Name: "s" + string(rune('a'+i))})
	}
	var ids []uuid.UUID
	var taskUUIDs []uuid.UUID
	taskOf := map[uuid.UUID]uuid.UUID{}
	for len(ids) < steps {
		task := testdb.CreateTask(t, db, spec)
		taskUUIDs = append(taskUUIDs, task.TaskUUID)
		i := 0
		for _, id := range task.Steps {
			taskOf[id] = task.TaskUUID
			if i%2 == 0 {
				testdb.SetStepState(t, db, id, domain.StepEnqueued) // half enqueued, half pending
			}
			ids = append(ids, id)
			i++
		}
	}
	require.Len(t, ids, steps)

	type outcome struct {
		step uuid.UUID
		won  bool
		err  error
	}
	results := make(chan outcome, steps*racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, id := range ids {
		for r := 0; r < racers; r++ {
			wg.Add(1)
			go func(id uuid.UUID, r int) {
				defer wg.Done()
				<-start
				if r%2 == 1 {
					snap, claimed, err := store.LoadAndClaim(context.Background(), id, taskOf[id], "test_ns", "racer")
					if err == nil && !claimed {
						err = &domain.NotClaimableError{StepUUID: id.String(), Current: snap.State}
					}
					results <- outcome{step: id, won: claimed, err: err}
					return
				}
				_, err := store.ClaimStep(context.Background(), id, "racer")
				results <- outcome{step: id, won: err == nil, err: err}
			}(id, r)
		}
	}
	close(start)
	wg.Wait()
	close(results)

	winners := map[uuid.UUID]int{}
	for o := range results {
		if o.won {
			winners[o.step]++
			continue
		}
		var nc *domain.NotClaimableError
		require.ErrorAs(t, o.err, &nc, "loser error for %s", o.step)
		require.Equal(t, domain.StepInProgress, nc.Current)
	}
	require.Len(t, winners, steps, "every step has a winner")
	for id, n := range winners {
		require.Equal(t, 1, n, "exactly one winner for %s", id)
	}

	var bad []struct {
		Step       uuid.UUID `db:"workflow_step_uuid"`
		MostRecent int       `db:"most_recent"`
		Rows       int       `db:"rows"`
		MaxKey     int       `db:"max_key"`
		Distinct   int       `db:"distinct_keys"`
		Attempts   int       `db:"attempts"`
	}
	require.NoError(t, db.Select(&bad, `
		SELECT s.workflow_step_uuid,
		       COUNT(*) FILTER (WHERE t.most_recent) AS most_recent, COUNT(*) AS rows,
		       MAX(t.sort_key) AS max_key, COUNT(DISTINCT t.sort_key) AS distinct_keys,
		       COALESCE(s.attempts, 0) AS attempts
		FROM tasker_workflow_steps s
		JOIN tasker_workflow_step_transitions t ON t.workflow_step_uuid = s.workflow_step_uuid
		WHERE s.task_uuid = ANY($1)
		GROUP BY s.workflow_step_uuid, s.attempts
		HAVING COUNT(*) FILTER (WHERE t.most_recent) <> 1
		    OR MIN(t.sort_key) <> 1 OR MAX(t.sort_key) <> COUNT(*) OR COUNT(DISTINCT t.sort_key) <> COUNT(*)
		    OR COALESCE(s.attempts, 0) <> 1
		    OR bool_or(t.most_recent AND (t.to_state <> 'in_progress' OR t.sort_key <> (SELECT MAX(sort_key)
		         FROM tasker_workflow_step_transitions x WHERE x.workflow_step_uuid = s.workflow_step_uuid)))`,
		uuidArray(taskUUIDs)))
	require.Empty(t, bad, "steps violating one-current-row / contiguous sort_keys / one attempt")
	var total int
	require.NoError(t, db.Get(&total, `SELECT COUNT(*) FROM tasker_workflow_steps WHERE task_uuid = ANY($1)`, uuidArray(taskUUIDs)))
	require.Equal(t, steps, total)
	var txs int
	require.NoError(t, db.Get(&txs, `SELECT COUNT(DISTINCT t.xmin::text) FROM tasker_workflow_step_transitions t
		JOIN tasker_workflow_steps s ON s.workflow_step_uuid = t.workflow_step_uuid
		WHERE s.task_uuid = ANY($1) AND t.to_state = 'in_progress'`, uuidArray(taskUUIDs)))
	require.Less(t, txs, steps, "concurrent claims shared transactions")
	t.Logf("%d claims committed in %d transactions", steps, txs)
}

func uuidArray(ids []uuid.UUID) any {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return pq.Array(s)
}
