package chaos

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

const napTemplate = `name: nap
namespace_name: %NS%
version: "1.0.0"
steps:
  - name: nap
    handler: {callable: test.sleep}
`

func napFor(ns string) string {
	out := []byte{}
	for i := 0; i < len(napTemplate); i++ {
		if i+4 <= len(napTemplate) && napTemplate[i:i+4] == "%NS%" {
			out = append(out, ns...)
			i += 3
			continue
		}
		out = append(out, napTemplate[i])
	}
	return string(out)
}

// EnvLong enables the long runs of this package: the rescue timing below
// (about 70 s) and the 10,000-step chaos run.
const EnvLong = "TASKER_CHAOS_LONG"

// A worker killed with -9 five seconds into a 20 s handler, with the default
// claim timeout (300 s) and a 10 s visibility timeout: its step runs again
// within two visibility timeouts, because the message it stopped extending
// becomes visible and proves it gone. Meanwhile a 60 s handler on a live
// worker, with a second live worker reading the same queue, runs exactly once.
func TestLostWorkerRescuedWithinTwoVisibilityTimeouts(t *testing.T) {
	if os.Getenv(EnvLong) != "1" {
		t.Skip("about 70 s; run with " + EnvLong + "=1")
	}
	const vt = 10
	dbURL := testdb.URL(t)
	db := open(t, dbURL)
	dir := writeTemplates(t, db, map[string]string{"rescue": napFor("rescue"), "slowlive": napFor("slowlive")})
	orch := startOrchestration(t, dbURL)
	workerEnv := []string{"TASKER_PGMQ__VISIBILITY_TIMEOUT_SECONDS=10", "TASKER_WORKER__STEP_CLAIM_TIMEOUT_SECONDS=300"}
	victim := startWorker(t, dbURL, orch.URL, "rescue", dir, workerEnv...)
	startWorker(t, dbURL, orch.URL, "slowlive", dir, workerEnv...)
	startWorker(t, dbURL, orch.URL, "slowlive", dir, workerEnv...)

	slow := createTask(t, orch.URL, `{"name":"nap","namespace":"slowlive","version":"1.0.0","context":{"sleep_ms":60000}}`)
	lost := createTask(t, orch.URL, `{"name":"nap","namespace":"rescue","version":"1.0.0","context":{"sleep_ms":20000}}`)
	claims := func(step any) int {
		var n int
		require.NoError(t, db.Get(&n, `SELECT COUNT(*) FROM tasker_workflow_step_transitions WHERE workflow_step_uuid = $1 AND to_state = 'in_progress'`, step))
		return n
	}
	require.Eventually(t, func() bool { return claims(lost.StepMapping["nap"]) == 1 }, 20*time.Second, 20*time.Millisecond)
	time.Sleep(5 * time.Second)
	victim.Kill()
	killed := time.Now()
	startWorker(t, dbURL, orch.URL, "rescue", dir, workerEnv...)
	require.Eventually(t, func() bool { return claims(lost.StepMapping["nap"]) == 2 }, 3*vt*time.Second, 50*time.Millisecond)
	again := time.Since(killed)
	t.Logf("kill -9 5 s into a 20 s handler (vt %d s, claim timeout 300 s): step ran again %s after the kill (goal ≤ %d s)",
		vt, again.Round(10*time.Millisecond), 2*vt)
	require.LessOrEqual(t, again, 2*vt*time.Second)
	var errType string
	require.NoError(t, db.Get(&errType, `SELECT metadata->>'event' FROM tasker_workflow_step_transitions
		WHERE workflow_step_uuid = $1 AND to_state = 'error'`, lost.StepMapping["nap"]))
	require.Contains(t, errType, "stopped extending")

	require.Eventually(t, func() bool { return taskState(t, db, slow.TaskUUID) == "complete" }, 90*time.Second, 100*time.Millisecond)
	require.Equal(t, 1, claims(slow.StepMapping["nap"]), "the 60 s handler on a live worker ran once")
	var attempts int
	require.NoError(t, db.Get(&attempts, `SELECT attempts FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, slow.StepMapping["nap"]))
	require.Equal(t, 1, attempts)
	t.Logf("60 s handler on a live worker (two workers reading its queue, vt %d s): 1 claim, 1 attempt, task complete", vt)
	require.Eventually(t, func() bool { return taskState(t, db, lost.TaskUUID) == "complete" }, 40*time.Second, 100*time.Millisecond)
}
