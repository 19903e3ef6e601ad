package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/postgres"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
	"github.com/tasker-systems/tasker-go/ports"
)

type dlqEntry struct {
	EntryUUID      string  `json:"entry_uuid"`
	TaskUUID       *string `json:"task_uuid"`
	StepUUID       *string `json:"step_uuid"`
	Namespace      string  `json:"namespace"`
	Reason         string  `json:"reason"`
	Status         string  `json:"status"`
	Detail         string  `json:"detail"`
	ResolutionNote *string `json:"resolution_note"`
	CreatedAt      string  `json:"created_at"`
}

type dlqList struct {
	Entries    []dlqEntry `json:"entries"`
	Pagination struct {
		Page       int   `json:"page"`
		PerPage    int   `json:"per_page"`
		TotalCount int64 `json:"total_count"`
		TotalPages int64 `json:"total_pages"`
		HasNext    bool  `json:"has_next"`
	} `json:"pagination"`
}

// The DLQ routes: a task whose step sat enqueued past the threshold is
// listed (filters, pagination), shown, requeued (step pending with a fresh
// budget, task pending) and resolved with a note; bad input is 400 in the
// §7.1 shape; unknown entries 404.
func TestDLQRoutes(t *testing.T) {
	f := setup(t, web.Config{})
	ctx := context.Background()
	resp, b := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number": 6}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var created domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(b, &created))
	// The first step enqueued (no loop runs here), an hour ago.
	testdb.SetTaskState(t, f.db, created.TaskUUID, domain.TaskInProgress)
	testdb.SetStepState(t, f.db, created.StepMapping[f.ex["linear_workflow"][0]], domain.StepEnqueued)
	_, err := f.db.Exec(`UPDATE tasker_workflow_step_transitions SET created_at = created_at - interval '1 hour'`)
	require.NoError(t, err)
	found, err := postgres.NewDLQStore(f.db).ScanStale(ctx, ports.StalenessPolicy{EnqueuedTimeout: time.Minute, FailTask: true})
	require.NoError(t, err)
	require.Len(t, found, 1)

	resp, b = f.do(t, http.MethodGet, "/v1/dlq?namespace=examples&reason=enqueued_timeout&status=open&per_page=1", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var list dlqList
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list.Entries, 1)
	e := list.Entries[0]
	require.Equal(t, created.TaskUUID.String(), *e.TaskUUID)
	require.Equal(t, "examples", e.Namespace)
	require.Equal(t, "enqueued_timeout", e.Reason)
	require.Equal(t, "open", e.Status)
	require.NotNil(t, e.StepUUID)
	require.NotEmpty(t, e.CreatedAt)
	require.EqualValues(t, 1, list.Pagination.TotalCount)
	require.False(t, list.Pagination.HasNext)
	resp, b = f.do(t, http.MethodGet, "/v1/dlq?namespace=other", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(b, &list))
	require.Empty(t, list.Entries)

	resp, b = f.do(t, http.MethodGet, "/v1/dlq/"+e.EntryUUID, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var one dlqEntry
	require.NoError(t, json.Unmarshal(b, &one))
	require.Equal(t, e.EntryUUID, one.EntryUUID)
	resp, b = f.do(t, http.MethodGet, "/v1/tasks/"+created.TaskUUID.String(), "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(b), `"status":"error"`)

	resp, b = f.do(t, http.MethodPost, "/v1/dlq/"+e.EntryUUID+"/requeue", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, &one))
	require.Equal(t, "requeued", one.Status)
	var state string
	require.NoError(t, f.db.Get(&state, `SELECT to_state FROM tasker_task_transitions WHERE task_uuid = $1 AND most_recent`, created.TaskUUID))
	require.Contains(t, []string{"pending", "in_progress"}, state, "the task left error")
	resp, b = f.do(t, http.MethodPost, "/v1/dlq/"+e.EntryUUID+"/requeue", "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "only open entries are requeued")
	require.Contains(t, string(b), "only open entries")

	resp, b = f.do(t, http.MethodPatch, "/v1/dlq/"+e.EntryUUID, `{"status":"resolved","note":"worker deployed"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, &one))
	require.Equal(t, "resolved", one.Status)
	require.Equal(t, "worker deployed", *one.ResolutionNote)

	for _, bad := range []struct{ method, path, body, code string }{
		{http.MethodGet, "/v1/dlq?reason=bogus", "", web.CodeBadRequest},
		{http.MethodGet, "/v1/dlq?status=closed", "", web.CodeBadRequest},
		{http.MethodGet, "/v1/dlq?per_page=0", "", web.CodeBadRequest},
		{http.MethodGet, "/v1/dlq/not-a-uuid", "", web.CodeInvalidUUID},
		{http.MethodPatch, "/v1/dlq/" + e.EntryUUID, `{"note":""}`, web.CodeBadRequest},
		{http.MethodPatch, "/v1/dlq/" + e.EntryUUID, `{"status":"open","note":"x"}`, web.CodeBadRequest},
		{http.MethodPatch, "/v1/dlq/" + e.EntryUUID, `{}`, web.CodeJSONError},
		{http.MethodPatch, "/v1/dlq/" + e.EntryUUID, `{"note":"again"}`, web.CodeBadRequest},
		{http.MethodPost, "/v1/dlq/" + uuid.NewString() + "/requeue", "", web.CodeNotFound},
		{http.MethodGet, "/v1/dlq/" + uuid.NewString(), "", web.CodeNotFound},
	} {
		resp, b = f.do(t, bad.method, bad.path, bad.body)
		var ae apiError
		require.NoError(t, json.Unmarshal(b, &ae), "%s %s: %s", bad.method, bad.path, b)
		require.Equal(t, bad.code, ae.Error.Code, "%s %s %s: %s", bad.method, bad.path, bad.body, b)
		require.GreaterOrEqual(t, resp.StatusCode, 400)
	}
}

// Without the DLQ table the routes answer 503 with the reason.
func TestDLQRoutesWithoutTable(t *testing.T) {
	f := setup(t, web.Config{})
	_, err := f.db.Exec(`DROP TABLE tasker_go_dlq_entries`)
	require.NoError(t, err)
	resp, b := f.do(t, http.MethodGet, "/v1/dlq", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Contains(t, string(b), "tasker_go_dlq_entries is missing")
}
