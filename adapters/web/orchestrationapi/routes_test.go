package orchestrationapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
)

// TestHealthEndpoints covers every health route on a real database while the
// orchestration loops are not running (the service was never started).
func TestHealthEndpoints(t *testing.T) {
	f := setup(t, web.Config{Version: "1.2.3", Environment: "test-env", DBPoolSize: 7})
	cases := []struct {
		path   string
		status int
		want   string // "status" field
	}{
		{"/health", http.StatusOK, "ok"},
		{"/health/live", http.StatusOK, "alive"},
		{"/live", http.StatusOK, "alive"},
		{"/health/ready", http.StatusServiceUnavailable, "not_ready"},
		{"/ready", http.StatusServiceUnavailable, "not_ready"},
		{"/health/detailed", http.StatusOK, "unhealthy"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := f.do(t, http.MethodGet, tc.path, "")
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			var got struct {
				Status    string `json:"status"`
				Timestamp string `json:"timestamp"`
				Checks    map[string]struct {
					Status  string  `json:"status"`
					Message *string `json:"message"`
				} `json:"checks"`
				Info map[string]any `json:"info"`
			}
			require.NoError(t, json.Unmarshal(body, &got), string(body))
			require.Equal(t, tc.want, got.Status)
			_, err := time.Parse(time.RFC3339Nano, got.Timestamp)
			require.NoError(t, err, "timestamp is RFC 3339")
			if tc.status == http.StatusServiceUnavailable || tc.path == "/health/detailed" {
				require.Equal(t, "healthy", got.Checks["database"].Status, "the database answers")
				require.Nil(t, got.Checks["database"].Message)
				require.Equal(t, "unhealthy", got.Checks["orchestration"].Status)
				require.NotNil(t, got.Checks["orchestration"].Message)
				require.Contains(t, *got.Checks["orchestration"].Message, "not running")
			} else {
				require.Empty(t, got.Checks, "liveness does not check dependencies")
			}
			if tc.path == "/health/detailed" {
				require.Equal(t, map[string]any{"version": "1.2.3", "environment": "test-env",
					"operational_state": "shutdown", "web_database_pool_size": float64(7),
					"orchestration_database_pool_size": float64(7), "circuit_breaker_state": "closed"}, got.Info)
			}
		})
	}
}

// TestProtectedRoutesNeedAToken shows that with a verifier only the routes of
// DefaultProtectedRoutes ask for a token, and that a rejected request changes
// nothing.
func TestProtectedRoutesNeedAToken(t *testing.T) {
	f := setup(t, web.Config{Verifier: middleware.StaticTokens{"s3cret"}})
	resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number":2}`))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "issue 13: task creation needs a token by default: %s", body)
	resp, body = f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number":2}`), "Authorization", "Bearer s3cret")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var c domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(body, &c))
	task := "/v1/tasks/" + c.TaskUUID.String()
	step := task + "/workflow_steps/" + c.StepMapping["linear_step_1"].String()
	resolve := `{"resolution_data":{},"resolved_by":"ops","reason":"r"}`

	cases := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		message                  string
	}{
		{"cancel without token", http.MethodDelete, task, "", nil, 401, "Missing authorization header"},
		{"cancel with a wrong token", http.MethodDelete, task, "", []string{"Authorization", "Bearer nope"}, 401,
			"Invalid or expired token"},
		{"resolve without token", http.MethodPatch, step, resolve, nil, 401, "Missing authorization header"},
		{"read task needs a token", http.MethodGet, task, "", nil, 401, "Missing authorization header"},
		{"read steps need a token", http.MethodGet, task + "/workflow_steps", "", nil, 401, "Missing authorization header"},
		{"read task with the token", http.MethodGet, task, "", []string{"Authorization", "Bearer s3cret"}, 200, ""},
		{"create from a form is 415", http.MethodPost, "/v1/tasks", "name=x", []string{"Authorization", "Bearer s3cret", "Content-Type", "application/x-www-form-urlencoded"}, 415, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rowCounts(t, f.db)
			resp, body := f.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.status == http.StatusUnauthorized {
				var e struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				require.NoError(t, json.Unmarshal(body, &e))
				require.Equal(t, web.CodeAuthenticationFail, e.Error.Code)
				require.Contains(t, e.Error.Message, tc.message)
			}
			require.Equal(t, before, rowCounts(t, f.db), "nothing written")
		})
	}

	resp, body = f.do(t, http.MethodDelete, task, "", "Authorization", "Bearer s3cret")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "cancelled", got["status"])
}

// TestGetStepOfTask reads one step of a task and checks the StepResponse
// fields against the task's step mapping.
func TestGetStepOfTask(t *testing.T) {
	f := setup(t, web.Config{})
	resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number":2}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var c domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(body, &c))
	root := c.StepMapping["linear_step_1"]

	resp, body = f.do(t, http.MethodGet, "/v1/tasks/"+c.TaskUUID.String()+"/workflow_steps/"+root.String(), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var st map[string]any
	require.NoError(t, json.Unmarshal(body, &st))
	require.Equal(t, root.String(), st["step_uuid"])
	require.Equal(t, c.TaskUUID.String(), st["task_uuid"])
	require.Equal(t, "linear_step_1", st["name"])
	require.Equal(t, "pending", st["current_state"])
	require.Equal(t, true, st["dependencies_satisfied"], "the root has no parents")
	require.EqualValues(t, 0, st["total_parents"])
	require.Nil(t, st["completed_at"])
	require.Nil(t, st["results"])

	resp, _ = f.do(t, http.MethodGet, "/v1/tasks/"+c.TaskUUID.String()+"/workflow_steps/"+uuid.NewString(), "")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
