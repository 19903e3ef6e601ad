package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/client"
)

const taskID = "0190f0b2-6c1a-7000-8000-000000000001"

// fakeOrchestration answers GET /v1/tasks/{id} with states[i] on the i-th
// poll (repeating the last), and POST /v1/tasks with a created task.
func fakeOrchestration(t *testing.T, states ...string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/tasks":
			fmt.Fprintf(w, `{"task_uuid":%q,"status":"created","created_at":"2026-01-02T03:04:05Z","step_count":4,`+
				`"step_mapping":{},"handler_config_name":"diamond_workflow"}`, taskID)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/tasks/"+taskID:
			n := int(polls.Add(1))
			st := states[min(n, len(states))-1]
			done := 0
			if st == "complete" {
				done = 4
			}
			fmt.Fprintf(w, `{"task_uuid":%q,"name":"diamond_workflow","namespace":"examples","version":"1.0.0","status":%q,`+
				`"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","total_steps":4,"completed_steps":%d,`+
				`"failed_steps":0,"context":{}}`, taskID, st, done)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"code":"NOT_FOUND","message":"Task not found"}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &polls
}

func newClient(t *testing.T, url string) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.BaseURL = url
	cfg.MaxRetries = 0
	c, err := client.New(cfg)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

var fast = client.WaitOptions{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}

func TestWaitForCompletion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		states    []string
		timeout   time.Duration
		wantPolls int32
		check     func(t *testing.T, task client.Task, err error)
	}{
		{name: "complete after polling", states: []string{"pending", "in_progress", "in_progress", "complete"}, wantPolls: 4,
			check: func(t *testing.T, task client.Task, err error) {
				require.NoError(t, err)
				require.Equal(t, "complete", task.Status)
				require.EqualValues(t, 4, task.CompletedSteps)
			}},
		{name: "error ends the wait", states: []string{"in_progress", "error"}, wantPolls: 2,
			check: func(t *testing.T, task client.Task, err error) {
				var nc *client.TaskNotCompleteError
				require.ErrorAs(t, err, &nc)
				require.Equal(t, "error", task.Status)
				require.Contains(t, err.Error(), "ended error")
			}},
		{name: "cancelled ends the wait", states: []string{"cancelled"}, wantPolls: 1,
			check: func(t *testing.T, _ client.Task, err error) {
				var nc *client.TaskNotCompleteError
				require.ErrorAs(t, err, &nc)
			}},
		{name: "context deadline", states: []string{"in_progress"}, timeout: 50 * time.Millisecond,
			check: func(t *testing.T, task client.Task, err error) {
				require.ErrorIs(t, err, context.DeadlineExceeded)
				require.Contains(t, err.Error(), "last seen in_progress")
				require.Equal(t, "in_progress", task.Status)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, polls := fakeOrchestration(t, tt.states...)
			c := newClient(t, srv.URL)
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			task, err := c.WaitForCompletion(ctx, uuid.MustParse(taskID), fast)
			tt.check(t, task, err)
			if tt.wantPolls > 0 {
				require.Equal(t, tt.wantPolls, polls.Load())
			}
		})
	}
}

func TestWaitForUnknownTaskFailsAtOnce(t *testing.T) {
	t.Parallel()
	srv, _ := fakeOrchestration(t, "complete")
	c := newClient(t, srv.URL)
	_, err := c.WaitForCompletion(context.Background(), uuid.New(), fast)
	var ae *client.APIError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, http.StatusNotFound, ae.Status)
}

func TestCreateTaskSendsTheIdempotencyKey(t *testing.T) {
	t.Parallel()
	keys := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys <- r.Header.Get("Idempotency-Key")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"task_uuid":%q,"status":"created","created_at":"2026-01-02T03:04:05Z","step_count":1,`+
			`"step_mapping":{},"handler_config_name":"x"}`, taskID)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL)
	ctx := client.WithIdempotencyKey(context.Background(), "order-42")
	_, err := c.CreateTask(ctx, client.TaskRequest{Namespace: "ns", Name: "x", Version: "1.0"})
	require.NoError(t, err)
	require.Equal(t, "order-42", <-keys)
}
