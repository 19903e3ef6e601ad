package chaos

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/internal/testdb"
)

const lonelyTemplate = `name: lonely_chain
namespace_name: lonely
version: "1.0.0"
steps:
  - name: first
    handler: {callable: examples.square}
  - name: second
    dependencies: [first]
    handler: {callable: examples.square}
`

type dlqListJSON struct {
	Entries []struct {
		EntryUUID string  `json:"entry_uuid"`
		TaskUUID  *string `json:"task_uuid"`
		StepUUID  *string `json:"step_uuid"`
		Namespace string  `json:"namespace"`
		Reason    string  `json:"reason"`
		Status    string  `json:"status"`
	} `json:"entries"`
}

// A task for a namespace no worker serves: with the threshold shortened by
// environment it is in GET /v1/dlq (taskerctl dlq list) and in error within
// the threshold; after a worker for the namespace starts, `taskerctl dlq
// requeue` makes it complete.
func TestNamespaceNobodyServesIsDeadLetteredThenRequeued(t *testing.T) {
	dbURL := testdb.URL(t)
	db := open(t, dbURL)
	dir := writeTemplates(t, db, map[string]string{"lonely": lonelyTemplate})
	orch := startOrchestration(t, dbURL, "TASKER_ORCHESTRATION__STALENESS__ENQUEUED_TIMEOUT_SECONDS=3",
		"TASKER_ORCHESTRATION__STALENESS__CHECK_INTERVAL_SECONDS=1")
	created := createTask(t, orch.URL, `{"name":"lonely_chain","namespace":"lonely","version":"1.0.0","context":{"even_number":4}}`)
	start := time.Now()
	var list dlqListJSON
	require.Eventually(t, func() bool {
		code, out := ctl(t, orch.URL, "dlq", "list", "--namespace", "lonely", "-o", "json")
		require.Equal(t, 0, code, out)
		require.NoError(t, json.Unmarshal([]byte(out), &list))
		return len(list.Entries) == 1
	}, 30*time.Second, 250*time.Millisecond)
	seen := time.Since(start)
	e := list.Entries[0]
	require.Equal(t, created.TaskUUID.String(), *e.TaskUUID)
	require.Equal(t, created.StepMapping["first"].String(), *e.StepUUID)
	require.Equal(t, "enqueued_timeout", e.Reason)
	require.Equal(t, "error", taskState(t, db, created.TaskUUID))
	t.Logf("threshold 3 s, check every 1 s: entry %s in GET /v1/dlq and task in error %s after creation", e.EntryUUID, seen.Round(10*time.Millisecond))
	require.Less(t, seen, 3*time.Second+5*time.Second, "within the threshold plus a check interval and slack")
	code, out := ctl(t, orch.URL, "dlq", "show", e.EntryUUID)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "does any worker serve namespace lonely")

	startWorker(t, dbURL, orch.URL, "lonely", dir)
	code, out = ctl(t, orch.URL, "dlq", "requeue", e.EntryUUID)
	require.Equal(t, 0, code, out)
	requeued := time.Now()
	require.Contains(t, out, "requeued")
	require.Eventually(t, func() bool { return taskState(t, db, created.TaskUUID) == "complete" }, 30*time.Second, 50*time.Millisecond)
	t.Logf("after taskerctl dlq requeue the task completed in %s", time.Since(requeued).Round(10*time.Millisecond))
	code, out = ctl(t, orch.URL, "dlq", "resolve", e.EntryUUID, "--note", "worker for lonely deployed")
	require.Equal(t, 0, code, out)
	var attempts int
	require.NoError(t, db.Get(&attempts, `SELECT attempts FROM tasker_workflow_steps WHERE workflow_step_uuid = $1`, created.StepMapping["first"]))
	require.Equal(t, 1, attempts, "the requeued step ran once, with a fresh budget")
}

// A step message that keeps failing (every claim refused by a trigger, as a
// broken database object would) is archived by the worker at
// pgmq.max_receive_count; the staleness detector turns the archived message
// into a DLQ entry naming the step; after the fix, requeue completes the task.
func TestPoisonStepMessageIsDeadLetteredThenRequeued(t *testing.T) {
	dbURL := testdb.URL(t)
	db := open(t, dbURL)
	dir := writeTemplates(t, db, map[string]string{"lonely": strings.ReplaceAll(lonelyTemplate, "lonely", "poisoned")})
	_, err := db.Exec(`CREATE FUNCTION refuse_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.to_state = 'in_progress' THEN RAISE EXCEPTION 'claims refused (simulated broken object)'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_claims BEFORE INSERT ON tasker_workflow_step_transitions FOR EACH ROW EXECUTE FUNCTION refuse_claims();`)
	require.NoError(t, err)
	orch := startOrchestration(t, dbURL, "TASKER_ORCHESTRATION__STALENESS__CHECK_INTERVAL_SECONDS=1")
	startWorker(t, dbURL, orch.URL, "poisoned", dir, "TASKER_PGMQ__VISIBILITY_TIMEOUT_SECONDS=1",
		"TASKER_PGMQ__MAX_RECEIVE_COUNT=3", "TASKER_WORKER__STEP_CLAIM_TIMEOUT_SECONDS=2")
	created := createTask(t, orch.URL, `{"name":"poisoned_chain","namespace":"poisoned","version":"1.0.0","context":{"even_number":4}}`)
	start := time.Now()
	var list dlqListJSON
	require.Eventually(t, func() bool {
		code, out := ctl(t, orch.URL, "dlq", "list", "--reason", "message_archived", "-o", "json")
		require.Equal(t, 0, code, out)
		require.NoError(t, json.Unmarshal([]byte(out), &list))
		return len(list.Entries) == 1
	}, 60*time.Second, 250*time.Millisecond)
	e := list.Entries[0]
	require.Equal(t, created.StepMapping["first"].String(), *e.StepUUID, "the entry names the step")
	var readCt int
	require.NoError(t, db.Get(&readCt, `SELECT read_ct FROM pgmq.a_poisoned_queue`))
	t.Logf("poison step message archived by the worker with read_ct=%d; DLQ entry %s (reason %s) for step %s %s after creation",
		readCt, e.EntryUUID, e.Reason, *e.StepUUID, time.Since(start).Round(10*time.Millisecond))
	require.Equal(t, "error", taskState(t, db, created.TaskUUID))

	_, err = db.Exec(`DROP TRIGGER refuse_claims ON tasker_workflow_step_transitions`)
	require.NoError(t, err)
	code, out := ctl(t, orch.URL, "dlq", "requeue", e.EntryUUID)
	require.Equal(t, 0, code, out)
	require.Eventually(t, func() bool { return taskState(t, db, created.TaskUUID) == "complete" }, 30*time.Second, 50*time.Millisecond)
	t.Logf("after the fix, taskerctl dlq requeue: task complete")
}
