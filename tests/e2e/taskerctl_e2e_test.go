package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

func taskCount(t *testing.T, db *sqlx.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM tasker_tasks`))
	return n
}

// TestClientAndTaskerctlAgainstRealBinaries runs the real
// `tasker-orchestration serve` and `tasker-worker` binaries on an isolated
// database, then drives them with the httpclient package and the taskerctl
// binary.
func TestClientAndTaskerctlAgainstRealBinaries(t *testing.T) {
	db, dbURL := OrchDB(t)
	bins := buildBinaries(t)
	orch, _ := startServices(t, bins, dbURL)

	cfg := httpclient.DefaultConfig()
	cfg.BaseURL = orch.URL
	client, err := httpclient.New(cfg)
	require.NoError(t, err)
	t.Cleanup(client.CloseIdleConnections)
	ctx := context.Background()

	t.Run("client: create returns step_mapping and GetTask reaches complete", func(t *testing.T) {
		created, err := client.CreateTask(ctx, domain.TaskRequest{Namespace: "examples", Name: "diamond_workflow",
			Version: "1.0.0", Context: json.RawMessage(`{"even_number": 2}`)})
		require.NoError(t, err)
		require.Equal(t, 4, created.StepCount)
		require.Len(t, created.StepMapping, 4)
		for _, name := range []string{"diamond_start", "diamond_branch_b", "diamond_branch_c", "diamond_end"} {
			require.NotEqual(t, uuid.Nil, created.StepMapping[name], name)
		}

		var task httpclient.TaskResponse
		require.Eventually(t, func() bool {
			task, err = client.GetTask(ctx, created.TaskUUID)
			require.NoError(t, err)
			return task.Status == "complete"
		}, 30*time.Second, 20*time.Millisecond)
		require.Equal(t, int64(4), task.CompletedSteps)
		require.NotNil(t, task.CompletedAt)
		require.Len(t, task.Steps, 4)

		steps, err := client.ListSteps(ctx, created.TaskUUID)
		require.NoError(t, err)
		results := map[string]string{}
		for _, s := range steps {
			results[s.Name] = string(s.Result())
		}
		require.Equal(t, map[string]string{"diamond_start": "4", "diamond_branch_b": "16", "diamond_branch_c": "16",
			"diamond_end": "256"}, results)
		step, err := client.GetStep(ctx, created.TaskUUID, created.StepMapping["diamond_end"])
		require.NoError(t, err)
		require.Equal(t, "complete", step.CurrentState)

		list, err := client.ListTasks(ctx, httpclient.ListTasksOptions{Namespace: "examples", Status: "complete"})
		require.NoError(t, err)
		require.NotEmpty(t, list.Tasks)

		_, err = client.CancelTask(ctx, created.TaskUUID)
		var ae *httpclient.APIError
		require.ErrorAs(t, err, &ae)
		require.True(t, httpclient.IsValidation(err), "a complete task cannot be cancelled: %v", err)
		require.Equal(t, httpclient.CodeBadRequest, ae.Code)
	})

	t.Run("client: typed errors carry the server's code, message and request id", func(t *testing.T) {
		_, err := client.CreateTask(httpclient.WithRequestID(ctx, "e2e-req-1"),
			domain.TaskRequest{Namespace: "examples", Name: "nope", Version: "1.0.0"})
		var ae *httpclient.APIError
		require.ErrorAs(t, err, &ae)
		require.True(t, httpclient.IsNotFound(err))
		require.Equal(t, httpclient.CodeNotFound, ae.Code)
		require.Equal(t, "Task template not found: examples/nope/1.0.0", ae.Message)
		require.Equal(t, "e2e-req-1", ae.RequestID, "the orchestration echoes x-request-id")

		_, err = client.GetTask(ctx, uuid.New())
		require.True(t, httpclient.IsNotFound(err), "%v", err)
		require.NoError(t, client.Health(ctx))
		require.Equal(t, httpclient.BreakerClosed, client.BreakerState())
	})

	t.Run("taskerctl: the four examples with --wait", func(t *testing.T) {
		want := map[string]string{"linear_workflow": "65536", "diamond_workflow": "256",
			"mixed_dag_workflow": "16777216", "tree_workflow": "4294967296"}
		for name, result := range want {
			r := taskerctl(t, bins, orch.URL, "task", "create", "--namespace", "examples", "--name", name,
				"--version", "1.0.0", "--context", `{"even_number": 2}`, "--wait", "--timeout", "60s")
			require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			require.Regexp(t, `task \S+ complete after`, r.stdout)
			require.True(t, strings.HasSuffix(r.stdout, ": "+result+"\n"), "%s prints %s:\n%s", name, result, r.stdout)
			require.Contains(t, r.stderr, "steps complete", "live progress on stderr")
			t.Logf("%s (%s): %s", name, r.elapsed.Round(time.Millisecond), strings.TrimSpace(r.stdout))
		}
	})

	t.Run("taskerctl: --output json", func(t *testing.T) {
		r := taskerctl(t, bins, orch.URL, "--output", "json", "task", "create", "--namespace", "examples",
			"--name", "diamond_workflow", "--version", "1.0.0", "--context", `{"even_number": 2}`, "--wait")
		require.Equal(t, 0, r.code, r.stderr)
		var out struct {
			Task       httpclient.TaskResponse `json:"task"`
			Result     json.RawMessage         `json:"result"`
			FinalSteps []struct {
				Name string `json:"name"`
			} `json:"final_steps"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		require.Equal(t, "complete", out.Task.Status)
		require.Equal(t, "256", string(out.Result))
		require.Equal(t, "diamond_end", out.FinalSteps[0].Name)
	})

	t.Run("taskerctl: bad --context is exit 2 and sends nothing", func(t *testing.T) {
		before := taskCount(t, db)
		r := taskerctl(t, bins, orch.URL, "task", "create", "--namespace", "examples", "--name", "diamond_workflow",
			"--version", "1.0.0", "--context", `{"even_number": }`, "--wait")
		require.Equal(t, 2, r.code)
		require.Contains(t, r.stderr, "--context is not valid JSON: invalid character '}' looking for beginning of value")
		require.Equal(t, before, taskCount(t, db))
	})

	t.Run("taskerctl: unknown template is exit 2 with the server's message", func(t *testing.T) {
		r := taskerctl(t, bins, orch.URL, "task", "create", "--namespace", "examples", "--name", "nope",
			"--version", "1.0.0", "--wait")
		require.Equal(t, 2, r.code)
		require.Contains(t, r.stderr, "404 NOT_FOUND: Task template not found: examples/nope/1.0.0")
	})

	t.Run("taskerctl: odd input is rejected by input_schema, exit 2, nothing created", func(t *testing.T) {
		before := taskCount(t, db)
		r := taskerctl(t, bins, orch.URL, "task", "create", "--namespace", "examples", "--name", "diamond_workflow",
			"--version", "1.0.0", "--context", `{"even_number": 3}`, "--wait", "--timeout", "60s")
		require.Equal(t, 2, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		require.Contains(t, r.stderr, `400 BAD_REQUEST: context does not match the template's input_schema at "/even_number": multipleOf: got 3, want 2`)
		require.Equal(t, before, taskCount(t, db))
	})

	t.Run("taskerctl: health, list, get, steps", func(t *testing.T) {
		r := taskerctl(t, bins, orch.URL, "health")
		require.Equal(t, 0, r.code, r.stderr)
		r = taskerctl(t, bins, orch.URL, "task", "list", "--status", "complete", "--output", "json")
		require.Equal(t, 0, r.code, r.stderr)
		var list httpclient.TaskList
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
		require.NotEmpty(t, list.Tasks)
		id := list.Tasks[0].TaskUUID.String()
		r = taskerctl(t, bins, orch.URL, "task", "get", id)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "status     complete")
		r = taskerctl(t, bins, orch.URL, "task", "steps", id)
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "complete")
		r = taskerctl(t, bins, orch.URL, "template", "list", "--namespace", "examples")
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `examples\s+diamond_workflow\s+1\.0\.0`, r.stdout)
		steps, err := client.ListSteps(ctx, list.Tasks[0].TaskUUID)
		require.NoError(t, err)
		r = taskerctl(t, bins, orch.URL, "step", "get", id, steps[0].StepUUID.String(), "-o", "json")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, `"current_state": "complete"`)
	})
}
