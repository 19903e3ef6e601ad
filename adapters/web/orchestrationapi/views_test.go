package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestReadinessFollowsDatabaseAndLoops: ready only when the database answers
// and the loops run; /health/detailed names the degraded state.
func TestReadinessFollowsDatabaseAndLoops(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                  string
		running               bool
		pingErr               error
		readyCode             int
		ready, detailed, mode string
		dbMessage             string
	}{
		{"all up", true, nil, 200, "ready", "healthy", "normal", ""},
		{"database down", true, errors.New("connection refused"), 503, "not_ready", "unhealthy", "degraded",
			"database unreachable: connection refused"},
		{"loops stopped", false, nil, 503, "not_ready", "unhealthy", "shutdown", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ping := func(ctx context.Context) error {
				dl, ok := ctx.Deadline()
				if !ok || time.Until(dl) > 2*time.Second {
					return errors.New("ping is not bounded by the 2 s readiness deadline")
				}
				return tc.pingErr
			}
			u := unitSetup(t, web.Config{}, &fakeTasks{running: tc.running}, fakeTemplates{}, ping)
			for _, path := range []string{"/ready", "/health/detailed"} {
				code, body := u.do(t, http.MethodGet, path, "")
				var got struct {
					Status string `json:"status"`
					Checks map[string]struct {
						Status  string  `json:"status"`
						Message *string `json:"message"`
					} `json:"checks"`
					Info map[string]any `json:"info"`
				}
				require.NoError(t, json.Unmarshal(body, &got), string(body))
				db := got.Checks["database"]
				if tc.dbMessage == "" {
					require.Equal(t, "healthy", db.Status)
					require.Nil(t, db.Message)
				} else {
					require.Equal(t, "unhealthy", db.Status)
					require.Equal(t, tc.dbMessage, *db.Message)
				}
				if path == "/ready" {
					require.Equal(t, tc.readyCode, code)
					require.Equal(t, tc.ready, got.Status)
					continue
				}
				require.Equal(t, http.StatusOK, code, "detailed health always answers 200")
				require.Equal(t, tc.detailed, got.Status)
				require.Equal(t, tc.mode, got.Info["operational_state"])
			}
		})
	}
}

// leaderFlag is a fixed web.LeaderReporter.
type leaderFlag bool

func (l leaderFlag) Leading() bool { return bool(l) }

// TestDetailedHealthReportsLeadership: /health/detailed says whether this
// instance consumes the orchestration queues, as a healthy "leadership"
// check either way (a standby is not degraded), in the document's shape
// (serve checks every response against openapi.json); without a reporter
// there is no such check.
func TestDetailedHealthReportsLeadership(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		leader  web.LeaderReporter
		message string
	}{
		{"leading", leaderFlag(true), "leading: this instance consumes the orchestration queues"},
		{"standby", leaderFlag(false), "standby: another orchestration instance consumes the orchestration queues"},
		{"no election", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := web.New(web.Config{}, web.Deps{Tasks: &fakeTasks{running: true}, Templates: fakeTemplates{},
				DB: pingFunc(func(context.Context) error { return nil }), Leader: tc.leader, Log: zap.NewNop()})
			w := httptest.NewRecorder()
			serve(t, s.Handler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health/detailed", nil))
			require.Equal(t, http.StatusOK, w.Code)
			var got struct {
				Status string `json:"status"`
				Checks map[string]struct {
					Status  string  `json:"status"`
					Message *string `json:"message"`
				} `json:"checks"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
			require.Equal(t, "healthy", got.Status)
			check, ok := got.Checks["leadership"]
			if tc.leader == nil {
				require.False(t, ok)
				return
			}
			require.True(t, ok)
			require.Equal(t, "healthy", check.Status)
			require.Equal(t, tc.message, *check.Message)
		})
	}
}

// TestTaskViewMapping checks the TaskResponse defaults for absent values and
// the two timestamp layouts (task fields with Z, step readiness naive).
func TestTaskViewMapping(t *testing.T) {
	t.Parallel()
	u := unitSetup(t, web.Config{}, nil, fakeTemplates{}, nil)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.FixedZone("CET", 3600))
	view := ports.TaskView{TaskUUID: uuid.New(), Name: "n", Namespace: "ns", Version: "1.0.0",
		State: domain.TaskPending, CreatedAt: at, UpdatedAt: at,
		Steps: []ports.StepView{{WorkflowStepUUID: uuid.New(), Name: "s", CurrentState: domain.StepPending,
			LastAttemptedAt: &at}},
		Counts: domain.StepCounts{Total: 1, Pending: 1}}
	u.query.EXPECT().GetTask(mock.Anything, view.TaskUUID).Return(view, nil).Once()
	code, body := u.do(t, http.MethodGet, "/v1/tasks/"+view.TaskUUID.String(), "")
	require.Equal(t, http.StatusOK, code, string(body))
	var got map[string]any
	require.NoError(t, json.Unmarshal(body, &got))
	require.Equal(t, "unknown", got["initiator"])
	require.Equal(t, "unknown", got["source_system"])
	require.Equal(t, "unknown", got["reason"])
	require.Equal(t, map[string]any{}, got["context"], "absent context is an empty object")
	require.Nil(t, got["tags"])
	require.Equal(t, "2026-03-04T04:06:07.891011Z", got["created_at"], "UTC with Z")
	steps := got["steps"].([]any)
	require.Len(t, steps, 1)
	require.Equal(t, "2026-03-04T04:06:07.891011", steps[0].(map[string]any)["last_attempted_at"], "naive UTC")
}

// TestListTasksPagination checks the filter handed to the store and the
// pagination arithmetic on the last page.
func TestListTasksPagination(t *testing.T) {
	t.Parallel()
	u := unitSetup(t, web.Config{}, nil, fakeTemplates{}, nil)
	want := ports.TaskFilter{Page: 3, PerPage: 25, Namespace: "ns", Initiator: "me", SourceSystem: "api",
		Status: domain.TaskComplete}
	u.query.EXPECT().ListTasks(mock.Anything, want).
		Return(ports.TaskPage{Tasks: []ports.TaskView{{TaskUUID: uuid.New(), State: domain.TaskPending}}, TotalCount: 51}, nil).Once()
	code, body := u.do(t, http.MethodGet, "/v1/tasks?page=3&namespace=ns&initiator=me&source_system=api&status=complete", "")
	require.Equal(t, http.StatusOK, code, string(body))
	var got struct {
		Tasks      []map[string]any `json:"tasks"`
		Pagination map[string]any   `json:"pagination"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Tasks, 1)
	require.Equal(t, map[string]any{"page": float64(3), "per_page": float64(25), "total_count": float64(51),
		"total_pages": float64(3), "has_next": false, "has_previous": true}, got.Pagination)
}
