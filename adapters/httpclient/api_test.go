package httpclient

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

var (
	taskID = uuid.MustParse("0190f0b2-6c1a-7000-8000-000000000001")
	stepID = uuid.MustParse("0190f0b2-6c1a-7000-8000-0000000000aa")
)

// taskJSON is a TaskResponse as contract §7.3 prints it: RFC 3339 task
// timestamps and naive step timestamps.
const taskJSON = `{"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","name":"diamond_workflow","namespace":"examples",
"version":"1.0.0","status":"in_progress","created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:06.5Z",
"completed_at":null,"context":{"even_number":2},"initiator":"UNKNOWN","source_system":"UNKNOWN","reason":"UNKNOWN",
"priority":0,"tags":null,"total_steps":4,"pending_steps":1,"in_progress_steps":1,"completed_steps":2,"failed_steps":0,
"ready_steps":0,"execution_status":"processing","recommended_action":"wait_for_completion","completion_percentage":50.0,
"health_status":"healthy","steps":[{"workflow_step_uuid":"0190f0b2-6c1a-7000-8000-0000000000aa",
"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","named_step_uuid":"0190f0b2-6c1a-7000-8000-0000000000bb",
"name":"diamond_start","current_state":"complete","dependencies_satisfied":true,"retry_eligible":true,
"ready_for_execution":false,"last_failure_at":null,"next_retry_at":null,"total_parents":0,"completed_parents":0,
"attempts":1,"retry_limit":3,"backoff_request_seconds":null,"last_attempted_at":"2026-01-02T03:04:05.123456"}]}`

const stepJSON = `{"step_uuid":"0190f0b2-6c1a-7000-8000-0000000000aa","task_uuid":"0190f0b2-6c1a-7000-8000-000000000001",
"name":"diamond_end","created_at":"2026-01-02T03:04:05.000001Z","updated_at":"2026-01-02T03:04:07.000000Z",
"completed_at":"2026-01-02T03:04:07.000000Z","results":{"step_uuid":"0190f0b2-6c1a-7000-8000-0000000000aa",
"success":true,"result":256,"status":"completed","metadata":{}},"current_state":"complete","dependencies_satisfied":true,
"retry_eligible":true,"ready_for_execution":false,"total_parents":2,"completed_parents":2,"attempts":1,"retry_limit":3,
"last_failure_at":null,"next_retry_at":null,"last_attempted_at":"2026-01-02T03:04:06.000000Z"}`

func TestEndpoints(t *testing.T) {
	t.Parallel()
	ok := func(body string) reply { return reply{status: 200, body: body} }
	tests := []struct {
		name       string
		reply      reply
		call       func(*Client) (any, error)
		wantMethod string
		wantPath   string
		wantQuery  string
		check      func(t *testing.T, got any)
	}{
		{
			name:  "create task",
			reply: ok(`{"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","status":"created","created_at":"2026-01-02T03:04:05Z","estimated_completion":null,"step_count":4,"step_mapping":{"diamond_start":"0190f0b2-6c1a-7000-8000-0000000000aa"},"handler_config_name":"diamond_workflow"}`),
			call: func(c *Client) (any, error) {
				return c.CreateTask(context.Background(), domain.TaskRequest{Name: "diamond_workflow", Namespace: "examples",
					Version: "1.0.0", Context: json.RawMessage(`{"even_number":2}`)})
			},
			wantMethod: "POST", wantPath: "/v1/tasks",
			check: func(t *testing.T, got any) {
				r := got.(domain.TaskCreationResponse)
				require.Equal(t, taskID, r.TaskUUID)
				require.Equal(t, 4, r.StepCount)
				require.Equal(t, stepID, r.StepMapping["diamond_start"])
			},
		},
		{
			name: "get task", reply: ok(taskJSON),
			call:       func(c *Client) (any, error) { return c.GetTask(context.Background(), taskID) },
			wantMethod: "GET", wantPath: "/v1/tasks/" + taskID.String(),
			check: func(t *testing.T, got any) {
				r := got.(TaskResponse)
				require.Equal(t, "in_progress", r.Status)
				require.Equal(t, int64(2), r.CompletedSteps)
				require.InDelta(t, 50.0, r.CompletionPercentage, 0)
				require.JSONEq(t, `{"even_number":2}`, string(r.Context))
				require.Len(t, r.Steps, 1)
				require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), r.Steps[0].LastAttemptedAt.Time,
					"naive timestamps read as UTC")
				require.Nil(t, r.Steps[0].LastFailureAt)
			},
		},
		{
			name:  "list tasks with filters",
			reply: ok(`{"tasks":[` + taskJSON + `],"pagination":{"page":2,"per_page":10,"total_count":11,"total_pages":2,"has_next":false,"has_previous":true}}`),
			call: func(c *Client) (any, error) {
				return c.ListTasks(context.Background(), ListTasksOptions{Page: 2, PerPage: 10, Namespace: "examples", Status: "complete"})
			},
			wantMethod: "GET", wantPath: "/v1/tasks", wantQuery: "namespace=examples&page=2&per_page=10&status=complete",
			check: func(t *testing.T, got any) {
				r := got.(TaskList)
				require.Len(t, r.Tasks, 1)
				require.Equal(t, Pagination{Page: 2, PerPage: 10, TotalCount: 11, TotalPages: 2, HasPrevious: true}, r.Pagination)
			},
		},
		{
			name: "list tasks without filters sends no query", reply: ok(`{"tasks":[],"pagination":{"page":1,"per_page":25}}`),
			call:       func(c *Client) (any, error) { return c.ListTasks(context.Background(), ListTasksOptions{}) },
			wantMethod: "GET", wantPath: "/v1/tasks", wantQuery: "",
			check: func(t *testing.T, got any) { require.Empty(t, got.(TaskList).Tasks) },
		},
		{
			name: "cancel task", reply: ok(strings.Replace(taskJSON, `"in_progress"`, `"cancelled"`, 1)),
			call:       func(c *Client) (any, error) { return c.CancelTask(context.Background(), taskID) },
			wantMethod: "DELETE", wantPath: "/v1/tasks/" + taskID.String(),
			check: func(t *testing.T, got any) { require.Equal(t, "cancelled", got.(TaskResponse).Status) },
		},
		{
			name: "list steps", reply: ok(`[` + stepJSON + `]`),
			call:       func(c *Client) (any, error) { return c.ListSteps(context.Background(), taskID) },
			wantMethod: "GET", wantPath: "/v1/tasks/" + taskID.String() + "/workflow_steps",
			check: func(t *testing.T, got any) {
				r := got.([]StepResponse)
				require.Len(t, r, 1)
				require.JSONEq(t, `256`, string(r[0].Result()))
				require.Equal(t, 2, r[0].TotalParents)
				require.NotNil(t, r[0].CompletedAt)
			},
		},
		{
			name: "get step", reply: ok(stepJSON),
			call:       func(c *Client) (any, error) { return c.GetStep(context.Background(), taskID, stepID) },
			wantMethod: "GET", wantPath: "/v1/tasks/" + taskID.String() + "/workflow_steps/" + stepID.String(),
			check: func(t *testing.T, got any) { require.Equal(t, "diamond_end", got.(StepResponse).Name) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, tt.reply)
			got, err := tt.call(newTestClient(t, testConfig(f)))
			require.NoError(t, err)
			reqs := f.requests()
			require.Len(t, reqs, 1)
			require.Equal(t, tt.wantMethod, reqs[0].method)
			require.Equal(t, tt.wantPath, reqs[0].path)
			require.Equal(t, tt.wantQuery, reqs[0].query)
			tt.check(t, got)
		})
	}
}

func TestCreateTaskSendsTheRequestBody(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 200, body: `{"task_uuid":"0190f0b2-6c1a-7000-8000-000000000001","status":"created"}`})
	c := newTestClient(t, testConfig(f))

	_, err := c.CreateTask(context.Background(), domain.TaskRequest{Name: "n", Namespace: "ns", Version: "1",
		Context: json.RawMessage(`{"even_number":2}`)})
	require.NoError(t, err)

	r := f.requests()[0]
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.JSONEq(t, `{"name":"n","namespace":"ns","version":"1","context":{"even_number":2}}`, r.body)
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	down := reply{status: 502, body: "<html>bad gateway</html>"}
	f := newFakeServer(t, down, reply{status: 200, body: healthOK})
	cfg := testConfig(f)
	cfg.AuthToken = "s3cret"
	c := newTestClient(t, cfg)

	require.NoError(t, c.Health(WithRequestID(context.Background(), "req-42")))
	require.NoError(t, c.Health(context.Background()))

	reqs := f.requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		require.Equal(t, "Bearer s3cret", r.header.Get("Authorization"))
		require.True(t, strings.HasPrefix(r.header.Get("User-Agent"), "tasker-go/"), r.header.Get("User-Agent"))
		require.Equal(t, "application/json", r.header.Get("Accept"))
	}
	require.Equal(t, "req-42", reqs[0].header.Get("X-Request-Id"))
	require.Equal(t, "req-42", reqs[1].header.Get("X-Request-Id"), "the retry keeps the caller's id")
	generated := reqs[2].header.Get("X-Request-Id")
	_, err := uuid.Parse(generated)
	require.NoError(t, err, "a call without an id gets a UUID")
}

func TestNoAuthorizationHeaderWithoutToken(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 200, body: healthOK})
	c := newTestClient(t, testConfig(f))
	require.NoError(t, c.Health(context.Background()))
	require.Empty(t, f.requests()[0].header.Get("Authorization"))
}

func TestAPIErrorFromNonContractBody(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 502, body: "<html>bad gateway</html>", header: map[string]string{"X-Request-Id": "r-1"}})
	cfg := testConfig(f)
	cfg.MaxRetries = 0
	c := newTestClient(t, cfg)

	err := c.Health(context.Background())

	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 502, ae.Status)
	require.Empty(t, ae.Code)
	require.Equal(t, "<html>bad gateway</html>", ae.Message)
	require.Equal(t, "r-1", ae.RequestID)
	require.Equal(t, "GET /health: 502 Bad Gateway: <html>bad gateway</html>", err.Error())
	require.True(t, IsUnavailable(err))
}

func TestUndecodableSuccessBody(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 200, body: `{"task_uuid":"not-a-uuid"}`})
	c := newTestClient(t, testConfig(f))

	_, err := c.GetTask(context.Background(), taskID)

	require.ErrorContains(t, err, "decode 200 response")
	require.Len(t, f.requests(), 1, "a bad body is not retried")
}

func TestHealthRejectsUnexpectedStatus(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, reply{status: 200, body: `{"status":"starting"}`})
	c := newTestClient(t, testConfig(f))
	require.ErrorContains(t, c.Health(context.Background()), `status "starting"`)
}

func TestStepResultShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		results string
		want    string
	}{
		{name: "StepExecutionResult", results: `{"step_uuid":"x","success":true,"result":{"n":4}}`, want: `{"n":4}`},
		{name: "failure keeps its empty result", results: `{"step_uuid":"x","success":false,"result":{}}`, want: `{}`},
		{name: "raw result from an older worker", results: `{"n":4}`, want: `{"n":4}`},
		{name: "raw number", results: `16`, want: `16`},
		{name: "null", results: `null`, want: ``},
		{name: "absent", results: ``, want: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := StepResponse{Results: json.RawMessage(tt.results)}.Result()
			if tt.want == "" {
				require.Nil(t, got)
				return
			}
			require.JSONEq(t, tt.want, string(got))
		})
	}
}

func TestTimestampJSON(t *testing.T) {
	t.Parallel()
	var ts Timestamp
	require.NoError(t, json.Unmarshal([]byte(`"2026-01-02T03:04:05.5+02:00"`), &ts))
	require.Equal(t, time.Date(2026, 1, 2, 1, 4, 5, 500000000, time.UTC), ts.Time)
	out, err := json.Marshal(ts)
	require.NoError(t, err)
	require.Equal(t, `"2026-01-02T01:04:05.5Z"`, string(out))
	require.ErrorContains(t, json.Unmarshal([]byte(`"yesterday"`), &ts), "neither RFC 3339")
}
