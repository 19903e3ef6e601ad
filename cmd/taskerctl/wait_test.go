package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
)

var createDiamond = []string{"task", "create", "--namespace", "examples", "--name", "diamond_workflow",
	"--version", "1.0.0", "--context", `{"even_number": 2}`, "--wait"}

func TestWaitReachesCompleteAndPrintsTheLastStepResult(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).
		on("POST /v1/tasks", created).
		on(taskRoute, taskReply("pending", 0, 0, 0), taskReply("in_progress", 1, 2, 0), taskReply("in_progress", 1, 2, 0),
			taskReply("in_progress", 3, 1, 0), taskReply("complete", 4, 0, 0)).
		on(stepRoute, diamondSteps)

	r := o.run(t, createDiamond...)

	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "task "+taskUUID+" complete after")
	require.Contains(t, r.stdout, "result of diamond_end: 256\n")
	require.Equal(t, 5, o.count(taskRoute))
	require.Equal(t, 1, o.count(stepRoute))
	progress := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Len(t, progress, 5, "one 'created' line and one line per change (the repeated state is not reprinted): %s", r.stderr)
	require.Contains(t, progress[0], "created task "+taskUUID)
	require.Regexp(t, `in_progress\s+1/4 steps complete, 2 in progress, 0 failed`, progress[2])
	require.Regexp(t, `complete\s+4/4 steps complete`, progress[4])
}

func TestWaitJSONOutputShape(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).
		on("POST /v1/tasks", created).
		on(taskRoute, taskReply("in_progress", 2, 2, 0), taskReply("complete", 4, 0, 0)).
		on(stepRoute, diamondSteps)

	r := o.run(t, append(createDiamond, "--output", "json")...)

	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, r.stderr, "no progress lines in JSON mode")
	var out map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.ElementsMatch(t, []string{"task", "elapsed_ms", "final_steps", "result"}, keys(out))
	require.JSONEq(t, `256`, string(out["result"]))
	var task httpclient.TaskResponse
	require.NoError(t, json.Unmarshal(out["task"], &task))
	require.Equal(t, "complete", task.Status)
	require.Equal(t, int64(4), task.CompletedSteps)
	var final []map[string]any
	require.NoError(t, json.Unmarshal(out["final_steps"], &final))
	require.Equal(t, []map[string]any{{"name": "diamond_end", "step_uuid": "0190f0b2-6c1a-7000-8000-0000000000a4",
		"current_state": "complete", "result": 256.0}}, final)
}

func TestWaitEndsInErrorWithTheFailedStep(t *testing.T) {
	t.Parallel()
	failed := `{"step_uuid":"x","success":false,"result":{},"status":"failed","metadata":{},` +
		`"error":{"message":"even_number must be even, got 3","error_type":"validation","retryable":false}}`
	steps := `200 [` + stepJSON(1, "diamond_start", "error", 0, "", failed) + `,` +
		stepJSON(2, "diamond_branch_b", "pending", 1, "", "") + `]`
	o := newOrchestration(t).
		on("POST /v1/tasks", created).
		on(taskRoute, taskReply("in_progress", 0, 1, 0), taskReply("error", 0, 0, 1)).
		on(stepRoute, steps)

	r := o.run(t, createDiamond...)

	require.Equal(t, exitFailed, r.code)
	require.Contains(t, r.stdout, "task "+taskUUID+" error after")
	require.Contains(t, r.stdout, "step diamond_start failed: validation: even_number must be even, got 3")
	require.NotContains(t, r.stderr, "taskerctl:", "the outcome is reported once, on stdout")
}

func TestWaitCancelledIsExit1(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).
		on("POST /v1/tasks", created).
		on(taskRoute, taskReply("cancelled", 1, 0, 0)).
		on(stepRoute, `200 []`)

	r := o.run(t, append(createDiamond, "--output", "json")...)

	require.Equal(t, exitFailed, r.code)
	var out map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.JSONEq(t, `null`, string(out["result"]))
	require.JSONEq(t, `[]`, string(out["final_steps"]))
}

func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).
		on("POST /v1/tasks", created).
		on(taskRoute, taskReply("in_progress", 1, 1, 0))

	r := o.run(t, append(createDiamond, "--timeout", "300ms")...)

	require.Equal(t, exitFailed, r.code)
	require.Contains(t, r.stderr, "timed out after 300ms waiting for task "+taskUUID+" (last seen: in_progress, 1/4 steps complete)")
	require.Contains(t, r.stderr, "taskerctl task get "+taskUUID)
	require.Greater(t, o.count(taskRoute), 3, "kept polling until the deadline")
	require.Zero(t, o.count(stepRoute))
}

func TestWaitServerFailureWhilePolling(t *testing.T) {
	t.Parallel()
	o := newOrchestration(t).
		on("POST /v1/tasks", created).
		on(taskRoute, taskReply("in_progress", 1, 1, 0), `404 {"error":{"code":"NOT_FOUND","message":"Task not found"}}`)

	r := o.run(t, createDiamond...)

	require.Equal(t, exitUsage, r.code, "a 4xx from the server keeps its meaning")
	require.Contains(t, r.stderr, "wait for task "+taskUUID+": GET /v1/tasks/"+taskUUID+": 404 NOT_FOUND: Task not found")
}

func TestLastStep(t *testing.T) {
	t.Parallel()
	var steps []httpclient.StepResponse
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(diamondSteps, "200 ")), &steps))
	got, ok := lastStep(steps)
	require.True(t, ok)
	require.Equal(t, "diamond_end", got.Name)

	tie := []httpclient.StepResponse{steps[2], steps[3]}
	tie[1].CompletedAt = tie[0].CompletedAt
	got, _ = lastStep(tie)
	require.Equal(t, "diamond_branch_b", got.Name, "same time and parents: by name")

	_, ok = lastStep([]httpclient.StepResponse{{Name: "pending"}})
	require.False(t, ok)
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
