package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/client"
)

// TestEmbeddedWorkerExampleCreatesAChildTask builds and runs
// examples/embedded-worker (the worker embedded in a program with its own
// pool, logger and registry of typed handlers) next to the real
// orchestration, creates an order_fulfillment task with the public client
// and waits for it; its start_shipping handler creates the child task
// ship_order through the orchestration client, which completes too.
func TestEmbeddedWorkerExampleCreatesAChildTask(t *testing.T) {
	db, dbURL := OrchDB(t)
	bins := buildBinaries(t)
	build := exec.Command("go", "build", "-o", filepath.Join(bins, "embedded-worker"), "./examples/embedded-worker")
	build.Dir = filepath.Join("..", "..")
	var out bytes.Buffer
	build.Stdout, build.Stderr = &out, &out
	require.NoError(t, build.Run(), out.String())

	orch := startOrchestration(t, bins, dbURL, freeAddr(t))
	addr := freeAddr(t)
	w := startProcess(t, bins, "embedded-worker", addr, "/health/ready",
		[]string{"DATABASE_URL=" + dbURL, "TASKER_ENV=test", "TASKER_ORCHESTRATION_API__BASE_URL=" + orch.URL},
		"--templates", "examples/embedded-worker/templates", "--bind", addr)

	// The embedded worker's own API (--bind) reports that its handlers can
	// create tasks (they have the worker's orchestration client).
	resp, err := http.Get(w.URL + "/status")
	require.NoError(t, err)
	var status struct {
		Capabilities struct {
			CanProcessSteps    bool `json:"can_process_steps"`
			CanInitializeTasks bool `json:"can_initialize_tasks"`
		} `json:"capabilities"`
		Configuration struct {
			SupportedNamespaces []string `json:"supported_namespaces"`
		} `json:"configuration"`
	}
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &status), string(body))
	require.True(t, status.Capabilities.CanInitializeTasks, "GET %s/status: %s", w.URL, body)
	require.True(t, status.Capabilities.CanProcessSteps, string(body))
	require.Equal(t, []string{"embedded"}, status.Configuration.SupportedNamespaces, string(body))
	t.Logf("GET %s/status: capabilities %+v, namespaces %v", w.URL, status.Capabilities, status.Configuration.SupportedNamespaces)

	cfg := client.DefaultConfig()
	cfg.BaseURL = orch.URL
	c, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// input_schema guards the parent too: a bad order is a 400.
	_, err = c.CreateTask(ctx, client.TaskRequest{Namespace: "embedded", Name: "order_fulfillment", Version: "1.0",
		Context: json.RawMessage(`{"order_id": 7, "items": []}`)})
	require.ErrorContains(t, err, `input_schema at "/items"`)

	parent, err := c.CreateTask(ctx, client.TaskRequest{Namespace: "embedded", Name: "order_fulfillment", Version: "1.0",
		Context: json.RawMessage(`{"order_id": 7, "items": ["book", "pen"]}`)})
	require.NoError(t, err)
	done, err := c.WaitForCompletion(ctx, parent.TaskUUID, client.WaitOptions{})
	require.NoError(t, err, "worker output:\n%s", w.output.String())
	require.Equal(t, "complete", done.Status)

	step, err := c.GetStep(ctx, parent.TaskUUID, parent.StepMapping["start_shipping"])
	require.NoError(t, err)
	var shipping struct {
		ChildTaskUUID uuid.UUID `json:"child_task_uuid"`
	}
	require.NoError(t, json.Unmarshal(step.Result(), &shipping), string(step.Result()))
	require.NotEqual(t, uuid.Nil, shipping.ChildTaskUUID)

	child, err := c.WaitForCompletion(ctx, shipping.ChildTaskUUID, client.WaitOptions{})
	require.NoError(t, err, "worker output:\n%s", w.output.String())
	require.Equal(t, "ship_order", child.Name)
	require.Equal(t, "embedded-worker", child.Initiator)
	var childCtx map[string]any
	require.NoError(t, json.Unmarshal(child.Context, &childCtx))
	require.Equal(t, parent.TaskUUID.String(), childCtx["parent_task_uuid"])
	require.EqualValues(t, 2, childCtx["item_count"])
	steps, err := c.ListSteps(ctx, child.TaskUUID)
	require.NoError(t, err)
	require.JSONEq(t, `{"order_id":7,"parcel":"PCL-7-2"}`, string(steps[0].Result()))

	// A rerun of start_shipping (retry, redelivery after a crash) sends the
	// same request with the same per-step key: the orchestration replays the
	// child instead of creating a second one.
	childCtx2, err := json.Marshal(map[string]any{"order_id": 7, "item_count": 2, "parent_task_uuid": parent.TaskUUID.String()})
	require.NoError(t, err)
	again := client.TaskRequest{Namespace: "embedded", Name: "ship_order", Version: "1.0", Context: childCtx2,
		Initiator: "embedded-worker", SourceSystem: "embedded-worker",
		Reason: "child of task " + parent.TaskUUID.String() + " step start_shipping"}
	stepUUID := parent.StepMapping["start_shipping"]
	replayed, err := c.CreateTask(client.WithIdempotencyKey(ctx, handler.ChildTaskKey(stepUUID, again)), again)
	require.NoError(t, err)
	require.True(t, replayed.Replayed, "the rerun is replayed")
	require.Equal(t, shipping.ChildTaskUUID, replayed.TaskUUID)

	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM tasker_tasks`))
	require.Equal(t, 2, n, "the parent and its child, nothing from the rejected request")
	require.Contains(t, w.output.String(), `"msg":"created child task"`)
	require.Contains(t, w.output.String(), `"task_uuid":"`+parent.TaskUUID.String()+`"`,
		"handler logs carry the task id")
	t.Logf("parent %s -> child %s (%s)", parent.TaskUUID, child.TaskUUID, steps[0].Result())
}
