package orchestrationapi_test

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

const validCreate = `{"name":"linear_workflow","namespace":"examples","version":"1.0.0"}`

// TestErrorMapping checks the one error → response mapping through the API:
// typed errors the caller can act on keep their message, server-side
// failures answer a fixed message (no internals leak) and are logged with
// the request id.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	tve := &domain.TemplateValidationError{Template: "examples/x/1.0.0",
		Problems: []*domain.ValidationError{{Field: "steps", Reason: "cycle a → b → a"}}}
	ite := &domain.InvalidTransitionError{Entity: "task", From: "complete", Event: domain.EventCancel, Reason: "terminal"}
	cases := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"validation reason", &domain.ValidationError{Field: "context", Reason: "Context must be a JSON object"},
			400, web.CodeBadRequest, "Context must be a JSON object"},
		{"template validation keeps every problem", tve, 400, web.CodeBadRequest, tve.Error()},
		{"conflict", fmt.Errorf("cancel: %w", &ports.ConflictError{Message: "Cannot cancel task in state complete"}),
			400, web.CodeBadRequest, "Cannot cancel task in state complete"},
		{"invalid transition", ite, 400, web.CodeBadRequest, ite.Error()},
		{"typed not found", &ports.NotFoundError{What: "Task template not found: a/b/c"}, 404, web.CodeNotFound,
			"Task template not found: a/b/c"},
		{"bare not found", fmt.Errorf("lookup: %w", ports.ErrNotFound), 404, web.CodeNotFound, "Not found"},
		{"deadline", fmt.Errorf("insert task: %w", context.DeadlineExceeded), 408, web.CodeTimeout, "Request timed out"},
		{"shutting down", service.ErrShuttingDown, 503, web.CodeServiceUnavailable, "Service unavailable"},
		{"broken connection", fmt.Errorf("insert: %w", driver.ErrBadConn), 503, web.CodeServiceUnavailable,
			"Service unavailable"},
		{"network error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused to 10.0.0.7")},
			503, web.CodeServiceUnavailable, "Service unavailable"},
		{"unknown", errors.New(`pq: relation "secret_table" does not exist`), 500, web.CodeInternalError,
			"Internal server error"},
		// Issue 13 defects 1-3: PostgreSQL's own errors, before all 500.
		{"statement cancelled by the deadline (57014)", fmt.Errorf("get task: %w", &pq.Error{Code: "57014", Message: "canceling statement due to user request"}),
			408, web.CodeTimeout, "Request timed out"},
		{"database refusing connections", fmt.Errorf("begin: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}),
			503, web.CodeServiceUnavailable, "Service unavailable"},
		{"database shutting down (57P01)", fmt.Errorf("insert: %w", &pq.Error{Code: "57P01"}), 503, web.CodeServiceUnavailable,
			"Service unavailable"},
		{"too many clients (53300)", fmt.Errorf("insert: %w", &pq.Error{Code: "53300"}), 503, web.CodeServiceUnavailable,
			"Service unavailable"},
		{"data exception (22021) as safety net", fmt.Errorf("insert: %w", &pq.Error{Code: "22021"}), 400, web.CodeBadRequest,
			"Input rejected by the database: a value cannot be stored"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := unitSetup(t, web.Config{}, &fakeTasks{createErr: tc.err}, fakeTemplates{}, nil)
			status, e := u.doError(t, http.MethodPost, "/v1/tasks", validCreate)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.code, e.Error.Code)
			require.Equal(t, tc.msg, e.Error.Message)
			logged := u.logs.FilterMessage("request failed").All()
			if tc.status == http.StatusServiceUnavailable {
				require.Equal(t, web.RetryAfterSeconds, u.lastHeader.Get("Retry-After"))
			}
			if tc.status < 500 {
				require.Empty(t, logged, "client errors are not logged as failures")
				return
			}
			require.NotContains(t, e.Error.Message, "10.0.0.7")
			require.NotContains(t, e.Error.Message, "secret_table")
			require.Len(t, logged, 1)
			fields := logged[0].ContextMap()
			require.Equal(t, "/v1/tasks", fields["path"])
			require.NotEmpty(t, fields["request_id"])
			require.Equal(t, tc.err.Error(), fields["error"], "the cause is in the log, not the response")
		})
	}
}

// TestRequestValidationCallsNothing checks that malformed paths and bodies
// are rejected before the service or the store is asked anything (the
// mockery TaskQuery fails the test on any unexpected call).
func TestRequestValidationCallsNothing(t *testing.T) {
	t.Parallel()
	task, step := uuid.NewString(), uuid.NewString()
	resolve := "/v1/tasks/" + task + "/workflow_steps/" + step
	cases := []struct {
		name, method, path, body string
		status                   int
		code, msg                string
	}{
		{"cancel: bad task uuid", "DELETE", "/v1/tasks/123", "", 400, web.CodeInvalidUUID, "Invalid UUID for task_uuid: 123"},
		{"steps: bad task uuid", "GET", "/v1/tasks/x/workflow_steps", "", 400, web.CodeInvalidUUID, "task_uuid"},
		{"step: bad task uuid", "GET", "/v1/tasks/x/workflow_steps/" + step, "", 400, web.CodeInvalidUUID, "task_uuid"},
		{"resolve: bad task uuid", "PATCH", "/v1/tasks/x/workflow_steps/" + step, `{}`, 400, web.CodeInvalidUUID, "task_uuid"},
		{"resolve: bad step uuid", "PATCH", "/v1/tasks/" + task + "/workflow_steps/y", `{}`, 400, web.CodeInvalidUUID,
			"Invalid UUID for step_uuid: y"},
		{"resolve: null body", "PATCH", resolve, `null`, 400, web.CodeJSONError, "not a valid JSON object: null"},
		{"resolve: wrong type", "PATCH", resolve, `{"resolution_data":1,"resolved_by":7,"reason":"r"}`, 400,
			web.CodeJSONError, "invalid type for field `resolved_by`"},
		{"resolve: missing reason", "PATCH", resolve, `{"resolution_data":1,"resolved_by":"ops"}`, 400,
			web.CodeJSONError, "missing field `reason`"},
		{"create: trailing data", "POST", "/v1/tasks", validCreate + `{}`, 400, web.CodeJSONError, "trailing data"},
		{"list: page not a number", "GET", "/v1/tasks?page=abc", "", 400, web.CodeBadRequest,
			"page must be an integer between 1 and"},
		{"list: per_page over max", "GET", "/v1/tasks?per_page=101", "", 400, web.CodeBadRequest,
			"per_page must be an integer between 1 and 100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := unitSetup(t, web.Config{}, nil, fakeTemplates{}, nil)
			status, e := u.doError(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.code, e.Error.Code)
			require.Contains(t, e.Error.Message, tc.msg)
			require.Empty(t, u.tasks.Calls(), "the service is not called")
		})
	}
}

// TestChunkedBodyOverLimit sends a body without Content-Length, so the limit
// is only noticed while the handler reads it: still 413 and nothing created.
func TestChunkedBodyOverLimit(t *testing.T) {
	t.Parallel()
	u := unitSetup(t, web.Config{MaxBodyBytes: 64}, nil, fakeTemplates{}, nil)
	body := `{"name":"linear_workflow","namespace":"examples","version":"1.0.0","context":{"x":"` +
		strings.Repeat("y", 200) + `"}}`
	req := httptest.NewRequest(http.MethodPost, "/v1/tasks", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	u.h.ServeHTTP(w, req)
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
	var e apiError
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &e))
	require.Equal(t, web.CodePayloadTooLarge, e.Error.Code)
	require.Empty(t, u.tasks.Calls())
}

// TestStoreFailuresAfterTheWrite: cancel and resolve succeed but reading the
// result back fails; the client gets the read failure, not a fake success.
func TestStoreFailuresAfterTheWrite(t *testing.T) {
	t.Parallel()
	task, step := uuid.New(), uuid.New()
	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		u := unitSetup(t, web.Config{}, nil, fakeTemplates{}, nil)
		u.query.EXPECT().GetTask(mock.Anything, task).Return(ports.TaskView{}, driver.ErrBadConn).Once()
		status, e := u.doError(t, http.MethodDelete, "/v1/tasks/"+task.String(), "")
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, web.CodeServiceUnavailable, e.Error.Code)
		require.Equal(t, []string{"cancel"}, u.tasks.Calls())
	})
	t.Run("resolve", func(t *testing.T) {
		t.Parallel()
		u := unitSetup(t, web.Config{}, nil, fakeTemplates{}, nil)
		u.query.EXPECT().GetStep(mock.Anything, task, step).Return(ports.StepView{}, errors.New("boom")).Once()
		status, e := u.doError(t, http.MethodPatch, "/v1/tasks/"+task.String()+"/workflow_steps/"+step.String(),
			`{"resolution_data":{"v":1},"resolved_by":"ops","reason":"fixed"}`)
		require.Equal(t, http.StatusInternalServerError, status)
		require.Equal(t, web.CodeInternalError, e.Error.Code)
		require.Equal(t, []string{"resolve"}, u.tasks.Calls())
		require.Equal(t, ports.ManualResolution{ResolutionData: json.RawMessage(`{"v":1}`), ResolvedBy: "ops",
			Reason: "fixed"}, u.tasks.resolved, "the body reaches the service as sent")
	})
	t.Run("resolve rejected by the state machine", func(t *testing.T) {
		t.Parallel()
		ite := &domain.InvalidTransitionError{Entity: "step", From: "complete", Event: domain.EventResolveManually}
		u := unitSetup(t, web.Config{}, &fakeTasks{resolveErr: ite}, fakeTemplates{}, nil)
		status, e := u.doError(t, http.MethodPatch, "/v1/tasks/"+task.String()+"/workflow_steps/"+step.String(),
			`{"resolution_data":null,"resolved_by":"ops","reason":"r"}`)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, ite.Error(), e.Error.Message)
	})
}

// TestReadFailures covers each read route when its store fails.
func TestReadFailures(t *testing.T) {
	t.Parallel()
	task, step := uuid.New(), uuid.New()
	cases := []struct {
		name   string
		path   string
		tmpl   fakeTemplates
		expect func(u unitFixture)
		status int
		msg    string
	}{
		{"list tasks", "/v1/tasks", fakeTemplates{}, func(u unitFixture) {
			u.query.EXPECT().ListTasks(mock.Anything, ports.TaskFilter{Page: 1, PerPage: web.DefaultPerPage}).
				Return(ports.TaskPage{}, driver.ErrBadConn).Once()
		}, 503, "Service unavailable"},
		{"list steps", "/v1/tasks/" + task.String() + "/workflow_steps", fakeTemplates{}, func(u unitFixture) {
			u.query.EXPECT().ListSteps(mock.Anything, task).Return(nil, &ports.NotFoundError{What: "Task not found"}).Once()
		}, 404, "Task not found"},
		{"get step", "/v1/tasks/" + task.String() + "/workflow_steps/" + step.String(), fakeTemplates{}, func(u unitFixture) {
			u.query.EXPECT().GetStep(mock.Anything, task, step).Return(ports.StepView{}, errors.New("boom")).Once()
		}, 500, "Internal server error"},
		{"list templates", "/v1/templates", fakeTemplates{listErr: errors.New("boom")}, nil, 500, "Internal server error"},
		{"get template: store failure is not a 404", "/v1/templates/a/b/1.0.0", fakeTemplates{getErr: errors.New("boom")},
			nil, 500, "Internal server error"},
		{"get template: not found names the template", "/v1/templates/a/b/1.0.0",
			fakeTemplates{getErr: fmt.Errorf("get: %w", ports.ErrNotFound)}, nil, 404, "Task template not found: a/b/1.0.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := unitSetup(t, web.Config{}, nil, tc.tmpl, nil)
			if tc.expect != nil {
				tc.expect(u)
			}
			status, e := u.doError(t, http.MethodGet, tc.path, "")
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.msg, e.Error.Message)
		})
	}
}

// TestSlowStoreTimesOut: a store call that outlives the request deadline
// ends with 408 TIMEOUT. The fake blocks until the request context ends, so
// the test waits for the deadline itself, not for a sleep.
func TestSlowStoreTimesOut(t *testing.T) {
	t.Parallel()
	u := unitSetup(t, web.Config{RequestTimeout: 20 * time.Millisecond}, nil, fakeTemplates{}, nil)
	task := uuid.New()
	u.query.EXPECT().GetTask(mock.Anything, task).RunAndReturn(func(ctx context.Context, _ uuid.UUID) (ports.TaskView, error) {
		<-ctx.Done()
		return ports.TaskView{}, fmt.Errorf("get task: %w", ctx.Err())
	}).Once()
	status, e := u.doError(t, http.MethodGet, "/v1/tasks/"+task.String(), "")
	require.Equal(t, http.StatusRequestTimeout, status)
	require.Equal(t, web.CodeTimeout, e.Error.Code)
	require.Empty(t, u.logs.All(), "a timeout is not logged as a server failure")
}
