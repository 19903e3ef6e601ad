package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/postgres/stepstoretest"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestLoadAndClaim: the one-transaction load+claim claims only a claimable
// step of the message's task and namespace; otherwise it writes nothing and
// returns the current state for the decision table.
func TestLoadAndClaim(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	cases := stepstoretest.LoadAndClaimCases
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			task := testdb.CreateTask(t, db, testdb.TaskSpec{Namespace: "lc_ns", Steps: []testdb.StepSpec{{Name: "a"}}})
			id := task.Steps["a"]
			if tc.State != "" {
				testdb.SetStepState(t, db, id, tc.State)
			}
			owner := task.TaskUUID
			if tc.OtherTask {
				owner = uuid.Must(uuid.NewV7())
			}
			rowsBefore := stepTransitionRows(t, db, id)
			colsBefore := readStepColumns(t, db, id)

			snap, claimed, err := store.LoadAndClaim(context.Background(), id, owner, tc.Namespace, "worker-9")
			require.NoError(t, err)
			require.Equal(t, tc.WantClaimed, claimed)
			require.Equal(t, tc.WantState, snap.State)
			require.Equal(t, task.TaskUUID, snap.Step.TaskUUID, "snapshot shows the step's real task")
			require.Equal(t, "lc_ns", snap.Task.NamespaceName)
			require.NotEmpty(t, snap.Configuration)
			if !tc.WantClaimed {
				require.Equal(t, rowsBefore, stepTransitionRows(t, db, id), "nothing written")
				require.Equal(t, colsBefore, readStepColumns(t, db, id), "nothing written")
				return
			}
			require.Equal(t, colsBefore.Attempts+1, snap.Step.Attempts, "post-claim attempts")
			require.NotNil(t, snap.LastAttemptedAt)
			rows := stepTransitionRows(t, db, id)
			require.Len(t, rows, len(rowsBefore)+1)
			requireWellFormedHistory(t, rows)
			last := rows[len(rows)-1]
			require.Equal(t, "in_progress", last.ToState)
			wantFrom := "pending"
			if tc.State != "" {
				wantFrom = string(tc.State)
			}
			require.Equal(t, wantFrom, last.FromState.String)
			meta := decodeEventMetadata(t, last.Metadata)
			require.Equal(t, map[string]any{"type": "Start"}, meta.Decoded)
			require.Equal(t, "worker-9", meta.WorkerID)
			require.True(t, readStepColumns(t, db, id).InProcess)
		})
	}

	t.Run("missing step", func(t *testing.T) {
		_, _, err := store.LoadAndClaim(context.Background(), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), "lc_ns", "w")
		require.ErrorIs(t, err, ports.ErrNotFound)
	})
}

// TestClaimReturnsDependencyResults: a winning claim (LoadAndClaim,
// ClaimStep, or one of a group-commit batch) carries the step's dependency
// results, equal to what DependencyResults returns (transitive, processed
// with results only, unwrapped per D-r), so the handler payload needs no
// further round trip; a root step gets an empty map, a lost claim none.
// TestClaimReturnsDependencyResults: claims that share one batch statement
// each carry their own step's dependency results. A claim alone is covered
// by the StepStore contract suite (stepstoretest, WinningClaimCarriesDependencyResults).
func TestClaimReturnsDependencyResults(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	store := postgres.NewStepStore(db)
	ctx := context.Background()
	requireDeps := func(t *testing.T, got map[string]json.RawMessage, want map[string]string) {
		t.Helper()
		require.NotNil(t, got)
		require.Len(t, got, len(want))
		for name, v := range want {
			require.JSONEq(t, v, string(got[name]), name)
		}
	}
	t1, t2 := stepstoretest.DAGTask(t, db, "dr_ns"), stepstoretest.DAGTask(t, db, "dr_ns")
	testdb.SetStepResults(t, db, t2.Steps["root"], json.RawMessage(`"second"`))
	snaps, claimed, errs := store.ClaimBatchForTest(ctx, []postgres.BatchClaim{
		{Step: t1.Steps["final"]}, {Step: t2.Steps["final"]}, {Step: t2.Steps["left"]},
	}, "w")
	for i := range snaps {
		require.NoError(t, errs[i])
	}
	require.True(t, claimed[0])
	require.True(t, claimed[1])
	requireDeps(t, snaps[0].DependencyResults, stepstoretest.DAGWant)
	requireDeps(t, snaps[1].DependencyResults, map[string]string{"root": `"second"`, "left": `{"v":16}`, "leaf": `{"result_of_leaf":256}`})
	require.False(t, claimed[2], "left is complete")
	require.Nil(t, snaps[2].DependencyResults)
}
