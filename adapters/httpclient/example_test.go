package httpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
)

// A stand-in orchestration: creates tasks and knows no other template.
func exampleServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var req domain.TaskRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Name != "diamond_workflow" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"code":"NOT_FOUND","message":"Task template not found: %s/%s/%s"}}`,
				req.Namespace, req.Name, req.Version)
			return
		}
		fmt.Fprint(w, `{"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","status":"created",
			"created_at":"2026-01-02T03:04:05Z","estimated_completion":null,"step_count":4,
			"step_mapping":{"diamond_start":"0190f0b2-6c1a-7000-8000-0000000000aa"},"handler_config_name":"diamond_workflow"}`)
	}))
}

func Example() {
	srv := exampleServer()
	defer srv.Close()

	cfg := httpclient.DefaultConfig() // the worker SDK maps orchestration_api.* onto this
	cfg.BaseURL = srv.URL
	cfg.HTTPClient = srv.Client()
	client, err := httpclient.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := httpclient.WithRequestID(context.Background(), "example-1")

	created, err := client.CreateTask(ctx, domain.TaskRequest{
		Namespace: "examples", Name: "diamond_workflow", Version: "1.0.0",
		Context: json.RawMessage(`{"even_number":2}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(created.Status, created.StepCount, "steps; breaker", client.BreakerState())

	_, err = client.CreateTask(ctx, domain.TaskRequest{Namespace: "examples", Name: "nope", Version: "1.0.0"})
	var apiErr *httpclient.APIError
	if httpclient.IsNotFound(err) && errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code, "-", apiErr.Message)
	}
	// Output:
	// created 4 steps; breaker closed
	// NOT_FOUND - Task template not found: examples/nope/1.0.0
}
