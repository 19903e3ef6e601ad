package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tasker-systems/tasker-go/client"
)

// exampleServer stands in for a running orchestration: the task is
// complete on the second poll.
func exampleServer() *httptest.Server {
	polls := 0
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			fmt.Fprint(w, `{"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","status":"created",`+
				`"created_at":"2026-01-02T03:04:05Z","step_count":4,"step_mapping":{},"handler_config_name":"diamond_workflow"}`)
			return
		}
		polls++
		status := "in_progress"
		if polls > 1 {
			status = "complete"
		}
		fmt.Fprintf(w, `{"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","name":"diamond_workflow","namespace":"examples",`+
			`"version":"1.0.0","status":%q,"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:06Z",`+
			`"total_steps":4,"completed_steps":4,"context":{"even_number":2}}`, status)
	}))
}

// Create a task and wait for it to finish.
func Example() {
	srv := exampleServer()
	defer srv.Close()

	c, err := client.New(client.Config{BaseURL: srv.URL})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	created, err := c.CreateTask(ctx, client.TaskRequest{Namespace: "examples", Name: "diamond_workflow",
		Version: "1.0.0", Context: json.RawMessage(`{"even_number": 2}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println("created", created.TaskUUID, "with", created.StepCount, "steps")

	task, err := c.WaitForCompletion(ctx, created.TaskUUID, client.WaitOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(task.Status, task.CompletedSteps, "/", task.TotalSteps)
	// Output:
	// created 0190f0b2-6c1a-7000-8000-000000000001 with 4 steps
	// complete 4 / 4
}
