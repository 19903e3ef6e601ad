package orchestrationapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/pgmq"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/app/orchestration/service"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// examples maps each example template name to its step names, read from
// configs/tasks/examples.
type examples map[string][]string

// registerExamples registers every template of configs/tasks/examples.
func registerExamples(t testing.TB, db *sqlx.DB) examples {
	t.Helper()
	out := examples{}
	store := postgres.NewTemplateStore(db)
	tmpls := testdb.RegisterExampleTemplates(t, "../../../configs/tasks/examples", func(tmpl domain.TaskTemplate, cfg json.RawMessage) error {
		_, err := store.RegisterTemplate(context.Background(), tmpl, cfg)
		return err
	})
	for _, tmpl := range tmpls {
		for _, s := range tmpl.Steps {
			out[tmpl.Name] = append(out[tmpl.Name], s.Name)
		}
	}
	return out
}

type apiFixture struct {
	db  *sqlx.DB
	srv *httptest.Server
	ex  examples
}

func setup(t *testing.T, cfg web.Config) apiFixture {
	t.Helper()
	skipRouteCheckIfSkipped(t)
	db, err := postgres.Open(context.Background(), testdb.URL(t), postgres.PoolConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return setupOver(t, cfg, db, registerExamples(t, db))
}

// setupOver builds the API over db (which may be unreachable: the outage tests).
func setupOver(t *testing.T, cfg web.Config, db *sqlx.DB, ex examples) apiFixture {
	t.Helper()
	orch := postgres.NewOrchestrationStore(db)
	query := postgres.NewTaskQuery(db)
	metrics := telemetry.NewOrchestrationMetrics(query.QueueDepths, func() []string { return service.OwnedQueues }, nil)
	svc := service.New(service.Config{Environment: "test"}, service.Deps{
		Templates: postgres.NewTemplateStore(db), Creator: postgres.NewTaskStore(db), Enqueuer: orch,
		Batches: orch, Canceller: orch, Queue: pgmq.New(db), Metrics: metrics, DLQ: postgres.NewDLQStore(db),
	})
	s := web.New(cfg, web.Deps{Tasks: svc, DLQ: svc, Query: query, Templates: postgres.NewTemplateStore(db), DB: query,
		Metrics: metrics.Handler()})
	srv := httptest.NewServer(serve(t, s.Handler()))
	t.Cleanup(srv.Close)
	return apiFixture{db: db, srv: srv, ex: ex}
}

func (f apiFixture) do(t *testing.T, method, path string, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NotEmpty(t, resp.Header.Get("x-request-id"), "x-request-id on every response")
	return resp, b
}

// rowCounts counts the rows task creation writes.
func rowCounts(t *testing.T, db *sqlx.DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tbl := range []string{"tasker_tasks", "tasker_workflow_steps", "tasker_workflow_step_edges",
		"tasker_task_transitions", "tasker_workflow_step_transitions", "tasker_named_steps", "tasker_dependent_systems"} {
		var n int
		require.NoError(t, db.Get(&n, "SELECT COUNT(*) FROM "+tbl))
		out[tbl] = n
	}
	return out
}

func createBody(name string, ctx string) string {
	return `{"name":"` + name + `","namespace":"examples","version":"1.0.0","context":` + ctx + `}`
}

func TestCreateEachExampleWorkflow(t *testing.T) {
	f := setup(t, web.Config{})
	require.Len(t, f.ex, 4)
	for name, steps := range f.ex {
		t.Run(name, func(t *testing.T) {
			resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody(name, `{"even_number":2}`))
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			var created domain.TaskCreationResponse
			require.NoError(t, json.Unmarshal(body, &created))
			require.Equal(t, "created", created.Status)
			require.Equal(t, name, created.HandlerConfigName)
			require.Equal(t, len(steps), created.StepCount)
			var got []string
			for k := range created.StepMapping {
				got = append(got, k)
			}
			want := append([]string(nil), steps...)
			sort.Strings(got)
			sort.Strings(want)
			require.Equal(t, want, got, "step_mapping has every template step")
			for stepName, id := range created.StepMapping {
				var n string
				require.NoError(t, f.db.Get(&n, `SELECT ns.name FROM tasker_workflow_steps ws
					JOIN tasker_named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
					WHERE ws.workflow_step_uuid = $1 AND ws.task_uuid = $2`, id, created.TaskUUID))
				require.Equal(t, stepName, n)
			}

			resp, body = f.do(t, http.MethodGet, "/v1/tasks/"+created.TaskUUID.String(), "")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var task map[string]any
			require.NoError(t, json.Unmarshal(body, &task))
			require.Equal(t, "pending", task["status"])
			require.EqualValues(t, len(steps), task["total_steps"])
			require.EqualValues(t, 1, task["ready_steps"], "only the root is ready")
			require.Equal(t, "has_ready_steps", task["execution_status"])
			require.Equal(t, map[string]any{"even_number": float64(2)}, task["context"])
			require.Equal(t, "UNKNOWN", task["initiator"], "defaults applied (D-o)")
			require.Nil(t, task["completed_at"])
			require.Len(t, task["steps"], len(steps))
		})
	}
}

func TestCreateTaskRejectsBadInputWithoutWriting(t *testing.T) {
	f := setup(t, web.Config{MaxBodyBytes: 2 << 20})
	deep := strings.Repeat(`{"a":`, 11) + "1" + strings.Repeat("}", 11)
	large := `{"blob":[` + strings.TrimSuffix(strings.Repeat(`"`+strings.Repeat("x", 9000)+`",`, 130), ",") + `]}`
	require.Greater(t, len(large), 1<<20)
	overLimit := `{"name":"linear_workflow","namespace":"examples","version":"1.0.0","context":{"x":"` +
		strings.Repeat("y", 3<<20) + `"}}`
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		msgPart                  string
	}{
		{"malformed JSON", "POST", "/v1/tasks", `{"name":`, 400, "JSON_ERROR", ""},
		{"not an object", "POST", "/v1/tasks", `[1,2]`, 400, "JSON_ERROR", ""},
		{"missing name", "POST", "/v1/tasks", `{"namespace":"examples","version":"1.0.0"}`, 400, "JSON_ERROR", "name"},
		{"wrong type", "POST", "/v1/tasks", `{"name":5,"namespace":"examples","version":"1.0.0"}`, 400, "JSON_ERROR", "name"},
		{"empty name", "POST", "/v1/tasks", `{"name":"","namespace":"examples","version":"1.0.0"}`, 400, "BAD_REQUEST", "Task name cannot be empty"},
		{"empty namespace", "POST", "/v1/tasks", `{"name":"linear_workflow","namespace":"","version":"1.0.0"}`, 400, "BAD_REQUEST", "namespace"},
		{"empty version", "POST", "/v1/tasks", `{"name":"linear_workflow","namespace":"examples","version":""}`, 400, "BAD_REQUEST", "version"},
		{"unknown template", "POST", "/v1/tasks", createBody("nope", `{}`), 404, "NOT_FOUND", "Task template not found: examples/nope/1.0.0"},
		{"unknown version", "POST", "/v1/tasks", `{"name":"linear_workflow","namespace":"examples","version":"9.9.9"}`, 404, "NOT_FOUND", ""},
		{"context not an object", "POST", "/v1/tasks", createBody("linear_workflow", `[1,2]`), 400, "BAD_REQUEST", "Context must be a JSON object"},
		{"context too deep", "POST", "/v1/tasks", createBody("linear_workflow", deep), 400, "BAD_REQUEST", "depth"},
		{"context too large", "POST", "/v1/tasks", createBody("linear_workflow", large), 400, "BAD_REQUEST", ""},
		{"body over limit", "POST", "/v1/tasks", overLimit, 413, "PAYLOAD_TOO_LARGE", ""},
		{"invalid UUID in path", "GET", "/v1/tasks/not-a-uuid", "", 400, "INVALID_UUID", ""},
		{"invalid step UUID", "GET", "/v1/tasks/" + uuid.NewString() + "/workflow_steps/xyz", "", 400, "INVALID_UUID", ""},
		{"unknown task", "GET", "/v1/tasks/" + uuid.NewString(), "", 404, "NOT_FOUND", "Task not found"},
		{"unknown task steps", "GET", "/v1/tasks/" + uuid.NewString() + "/workflow_steps", "", 404, "NOT_FOUND", ""},
		{"cancel unknown task", "DELETE", "/v1/tasks/" + uuid.NewString(), "", 404, "NOT_FOUND", ""},
		{"bad per_page", "GET", "/v1/tasks?per_page=0", "", 400, "BAD_REQUEST", "per_page"},
		{"bad status filter", "GET", "/v1/tasks?status=done", "", 400, "BAD_REQUEST", "status"},
		{"unknown template detail", "GET", "/v1/templates/examples/nope/1.0.0", "", 404, "NOT_FOUND", ""},
		{"unknown route", "GET", "/v1/nothing", "", 404, "NOT_FOUND", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rowCounts(t, f.db)
			resp, body := f.do(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &e), string(body))
			require.Equal(t, tc.code, e.Error.Code)
			require.Contains(t, e.Error.Message, tc.msgPart)
			require.Equal(t, before, rowCounts(t, f.db), "nothing written")
		})
	}
}

// TestCreateTaskEnforcesInputSchema: a context that breaks the template's
// input_schema ({type: object, required: [even_number], properties:
// {even_number: {type: integer, multipleOf: 2}}}) is a 400 naming the JSON
// pointer of the failing value, and nothing is written.
func TestCreateTaskEnforcesInputSchema(t *testing.T) {
	f := setup(t, web.Config{})
	cases := []struct {
		name, context, want string
	}{
		{"string instead of integer", `{"even_number":"x"}`,
			`context does not match the template's input_schema at "/even_number": got string, want integer`},
		{"required key missing", `{}`,
			`context does not match the template's input_schema at "": missing property 'even_number'`},
		{"odd number", `{"even_number":3}`,
			`context does not match the template's input_schema at "/even_number": multipleOf: got 3, want 2`},
		{"fraction", `{"even_number":2.5}`,
			`context does not match the template's input_schema at "/even_number": got number, want integer`},
		{"null", `{"even_number":null}`,
			`context does not match the template's input_schema at "/even_number": got null, want integer`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rowCounts(t, f.db)
			resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", tc.context))
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, string(body))
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &e), string(body))
			require.Equal(t, "BAD_REQUEST", e.Error.Code)
			require.Equal(t, tc.want, e.Error.Message)
			require.Equal(t, before, rowCounts(t, f.db), "nothing written")
			t.Logf("%s -> %d %s", tc.context, resp.StatusCode, body)
		})
	}
	resp, body := f.do(t, http.MethodPost, "/v1/tasks", createBody("linear_workflow", `{"even_number":4}`))
	require.Equal(t, http.StatusOK, resp.StatusCode, "a valid context is accepted: %s", body)
}

func TestRequestIDEchoedOrGenerated(t *testing.T) {
	f := setup(t, web.Config{})
	resp, _ := f.do(t, "GET", "/health", "", "x-request-id", "abc-123")
	require.Equal(t, "abc-123", resp.Header.Get("x-request-id"))
	resp, _ = f.do(t, "GET", "/health", "", "x-request-id", "bad id with spaces")
	id, err := uuid.Parse(resp.Header.Get("x-request-id"))
	require.NoError(t, err)
	require.Equal(t, uuid.Version(4), id.Version())
}

func TestListCancelStepsAndMetrics(t *testing.T) {
	f := setup(t, web.Config{})
	var ids []string
	for i := 0; i < 3; i++ {
		resp, body := f.do(t, "POST", "/v1/tasks", `{"name":"diamond_workflow","namespace":"examples","version":"1.0.0",
			"context":{"even_number":2},"initiator":"tester"}`)
		require.Equal(t, 200, resp.StatusCode, string(body))
		var c domain.TaskCreationResponse
		require.NoError(t, json.Unmarshal(body, &c))
		ids = append(ids, c.TaskUUID.String())
	}
	resp, body := f.do(t, "GET", "/v1/tasks?per_page=2&initiator=tester&namespace=examples&status=pending", "")
	require.Equal(t, 200, resp.StatusCode, string(body))
	var list struct {
		Tasks      []map[string]any `json:"tasks"`
		Pagination map[string]any   `json:"pagination"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Tasks, 2)
	require.Equal(t, ids[2], list.Tasks[0]["task_uuid"], "newest first")
	require.EqualValues(t, 3, list.Pagination["total_count"])
	require.EqualValues(t, 2, list.Pagination["total_pages"])
	require.Equal(t, true, list.Pagination["has_next"])

	resp, body = f.do(t, "GET", "/v1/tasks/"+ids[0]+"/workflow_steps", "")
	require.Equal(t, 200, resp.StatusCode)
	var steps []map[string]any
	require.NoError(t, json.Unmarshal(body, &steps))
	require.Len(t, steps, 4)
	require.Equal(t, "diamond_start", steps[0]["name"], "ordered by created_at")
	resp, _ = f.do(t, "GET", "/v1/tasks/"+ids[1]+"/workflow_steps/"+steps[0]["step_uuid"].(string), "")
	require.Equal(t, 404, resp.StatusCode, "a step of another task is not found")

	resp, body = f.do(t, "PATCH", "/v1/tasks/"+ids[0]+"/workflow_steps/"+steps[0]["step_uuid"].(string), `{"resolved_by":"ops"}`)
	require.Equal(t, 400, resp.StatusCode)
	require.Contains(t, string(body), "JSON_ERROR")

	resp, body = f.do(t, "DELETE", "/v1/tasks/"+ids[0], "")
	require.Equal(t, 200, resp.StatusCode, string(body))
	var task map[string]any
	require.NoError(t, json.Unmarshal(body, &task))
	require.Equal(t, "cancelled", task["status"])
	resp, body = f.do(t, "DELETE", "/v1/tasks/"+ids[0], "")
	require.Equal(t, 400, resp.StatusCode)
	require.Contains(t, string(body), "Cannot cancel task in state cancelled")

	resp, body = f.do(t, "GET", "/metrics", "")
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, telemetry.PrometheusTextContentType, resp.Header.Get("Content-Type"))
	require.Contains(t, string(body), `tasker_orchestration_tasks_created_total{namespace="examples"} 3`)
	require.Equal(t, 1, bytes.Count(body, []byte("# TYPE tasker_orchestration_tasks_created_total")))

	resp, _ = f.do(t, "GET", "/health/ready", "")
	require.Equal(t, 503, resp.StatusCode, "loops not running in this test")
	resp, _ = f.do(t, "GET", "/live", "")
	require.Equal(t, 200, resp.StatusCode)
	resp, body = f.do(t, "GET", "/v1/templates", "")
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), "mixed_dag_workflow")
	resp, body = f.do(t, "GET", "/v1/templates/examples/tree_workflow/1.0.0", "")
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), "tree_final_convergence")
}

func TestManualResolutionResetsErroredTask(t *testing.T) {
	f := setup(t, web.Config{})
	resp, body := f.do(t, "POST", "/v1/tasks", createBody("linear_workflow", `{"even_number":2}`))
	require.Equal(t, 200, resp.StatusCode, string(body))
	var c domain.TaskCreationResponse
	require.NoError(t, json.Unmarshal(body, &c))
	root := c.StepMapping["linear_step_1"]
	testdb.SetTaskState(t, f.db, c.TaskUUID, domain.TaskInProgress)
	testdb.SetTaskState(t, f.db, c.TaskUUID, domain.TaskError)
	testdb.SetStepState(t, f.db, root, domain.StepInProgress)
	testdb.SetStepState(t, f.db, root, domain.StepError)

	path := "/v1/tasks/" + c.TaskUUID.String() + "/workflow_steps/" + root.String()
	resp, body = f.do(t, "PATCH", path, `{"resolution_data":{"value":4},"resolved_by":"ops","reason":"fixed upstream"}`)
	require.Equal(t, 200, resp.StatusCode, string(body))
	var step map[string]any
	require.NoError(t, json.Unmarshal(body, &step))
	require.Equal(t, "resolved_manually", step["current_state"])
	require.NotNil(t, step["completed_at"])

	var task map[string]any
	resp, body = f.do(t, "GET", "/v1/tasks/"+c.TaskUUID.String(), "")
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &task))
	require.Equal(t, "in_progress", task["status"], "error task reset and restarted")
	require.EqualValues(t, 1, task["ready_steps"], "the dependant can run now")

	resp, _ = f.do(t, "PATCH", "/v1/tasks/"+c.TaskUUID.String()+"/workflow_steps/"+uuid.NewString(),
		`{"resolution_data":null,"resolved_by":"ops","reason":"x"}`)
	require.Equal(t, 404, resp.StatusCode)
}
