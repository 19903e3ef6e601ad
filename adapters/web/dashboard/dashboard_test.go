package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/dashboard"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

type fakeTemplates struct {
	list []ports.RegisteredTemplate
	err  error
}

func (f fakeTemplates) GetTemplate(_ context.Context, ns, name, version string) (ports.RegisteredTemplate, error) {
	for _, t := range f.list {
		if t.Namespace == ns && t.Name == name && t.Version == version {
			return t, nil
		}
	}
	return ports.RegisteredTemplate{}, ports.ErrNotFound
}

func (f fakeTemplates) ListTemplates(context.Context, string) ([]ports.RegisteredTemplate, error) {
	return f.list, f.err
}

type fakeQueues struct {
	qs  []ports.QueueMetrics
	err error
}

func (f fakeQueues) MetricsAll(context.Context) ([]ports.QueueMetrics, error) { return f.qs, f.err }

// diamondTemplate is the registered diamond example.
func diamondTemplate(t *testing.T) ports.RegisteredTemplate {
	t.Helper()
	raw, err := os.ReadFile("../../../configs/tasks/examples/diamond_workflow.yaml")
	require.NoError(t, err)
	tmpl, err := domain.ParseTemplateYAML(raw)
	require.NoError(t, err)
	cfg, err := json.Marshal(tmpl)
	require.NoError(t, err)
	return ports.RegisteredTemplate{Namespace: "examples", Name: tmpl.Name, Version: tmpl.Version, Configuration: cfg}
}

type fixture struct {
	tasks   *mocks.TaskQuery
	history *mocks.TaskHistory
	h       http.Handler
}

func setup(t *testing.T, tmpl fakeTemplates, q fakeQueues) fixture {
	t.Helper()
	f := fixture{tasks: mocks.NewTaskQuery(t), history: mocks.NewTaskHistory(t)}
	d, err := dashboard.New(dashboard.Config{}, dashboard.Deps{Tasks: f.tasks, History: f.history, Templates: tmpl, Queues: q})
	require.NoError(t, err)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	d.Register(e.Group("/ui"))
	f.h = e
	return f
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w.Code, w.Body.String()
}

func TestTaskPageDrawsTheDAGAndWaterfall(t *testing.T) {
	t.Parallel()
	f := setup(t, fakeTemplates{list: []ports.RegisteredTemplate{diamondTemplate(t)}}, fakeQueues{})
	task := uuid.New()
	t0 := time.Now().UTC().Add(-200 * time.Millisecond) // a running task's axis ends now
	steps := []ports.StepView{
		{WorkflowStepUUID: uuid.New(), Name: "diamond_start", CurrentState: domain.StepComplete, Attempts: 1, CreatedAt: t0,
			Results: json.RawMessage(`{"step_uuid":"` + uuid.NewString() + `","success":true,"status":"completed","result":4,"metadata":{}}`)},
		{WorkflowStepUUID: uuid.New(), Name: "diamond_branch_b", CurrentState: domain.StepError, Attempts: 2, CreatedAt: t0,
			Results: json.RawMessage(`{"step_uuid":"` + uuid.NewString() + `","success":false,"status":"failed","result":{},"error":{"message":"boom <b>","retryable":true,"error_type":"flaky"},"metadata":{}}`)},
		{WorkflowStepUUID: uuid.New(), Name: "diamond_branch_c", CurrentState: domain.StepInProgress, Attempts: 1, CreatedAt: t0},
		{WorkflowStepUUID: uuid.New(), Name: "diamond_end", CurrentState: domain.StepPending, CreatedAt: t0},
	}
	f.tasks.EXPECT().GetTask(mock.Anything, task).Return(ports.TaskView{TaskUUID: task, Name: "diamond_workflow",
		Namespace: "examples", Version: "1.0.0", State: domain.TaskInProgress, CreatedAt: t0, Steps: steps,
		Context: json.RawMessage(`{"even_number":2}`)}, nil)
	var trans []ports.StepTransition
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for i, st := range []string{"enqueued", "in_progress", "enqueued_for_orchestration", "complete"} {
		trans = append(trans, ports.StepTransition{StepUUID: steps[0].WorkflowStepUUID, ToState: st, CreatedAt: at(10 * (i + 1))})
	}
	for i, st := range []string{"enqueued", "in_progress", "error", "enqueued", "in_progress", "error"} {
		trans = append(trans, ports.StepTransition{StepUUID: steps[1].WorkflowStepUUID, ToState: st, CreatedAt: at(50 + 10*i)})
	}
	f.history.EXPECT().StepTransitions(mock.Anything, task).Return(trans, nil)

	code, body := get(t, f.h, "/ui/tasks/"+task.String())
	require.Equal(t, http.StatusOK, code, body)
	for name, state := range map[string]string{"diamond_start": "complete", "diamond_branch_b": "error",
		"diamond_branch_c": "in_progress", "diamond_end": "pending"} {
		require.Contains(t, body, `class="dag-node state-`+state+`" data-step="`+name+`" data-state="`+state+`"`)
	}
	require.Equal(t, 4, strings.Count(body, `class="dag-edge"`), "diamond: start→b, start→c, b→end, c→end")
	require.Contains(t, body, `data-from="diamond_start" data-to="diamond_branch_b"`)
	require.Equal(t, 4, strings.Count(body, `class="wf-row"`))
	require.Contains(t, body, `data-step="diamond_branch_b" data-attempts="2"`)
	require.Equal(t, 2, strings.Count(body, `class="wf-seg state-in_progress"`)-1, "two attempts of b plus one of start")
	require.Contains(t, body, "flaky: boom &lt;b&gt;", "errors shown, escaped")
	require.Contains(t, body, `http-equiv="refresh" content="5"`, "a running task refreshes")
	require.Contains(t, body, "&#34;even_number&#34;: 2")
	require.NotContains(t, body, `style="left: 0.00%; width: 0.40%"`+"\n", "segments are spread on the axis")
	require.Regexp(t, `data-state="error" style="left: [1-9][0-9]\.[0-9]{2}%`, body, "b's first error sits later on the axis")
}

func TestListPagesAndFilters(t *testing.T) {
	t.Parallel()
	age := 7
	f := setup(t, fakeTemplates{list: []ports.RegisteredTemplate{diamondTemplate(t)}},
		fakeQueues{qs: []ports.QueueMetrics{{QueueName: "examples_queue", QueueLength: 3, OldestMsgAgeSec: &age}}})
	f.tasks.EXPECT().ListTasks(mock.Anything, ports.TaskFilter{Page: 2, PerPage: dashboard.DefaultPageSize, Namespace: "examples",
		Status: domain.TaskComplete}).Return(ports.TaskPage{TotalCount: 60, Tasks: []ports.TaskView{
		{TaskUUID: uuid.New(), Name: "diamond_workflow", Namespace: "examples", State: domain.TaskComplete, CreatedAt: time.Now()}}}, nil)
	code, body := get(t, f.h, "/ui/tasks?namespace=examples&status=complete&page=2")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, strings.Count(body, `class="task-row"`))
	require.Contains(t, body, `data-status="complete"`)
	require.Contains(t, body, "60 task(s)")
	require.Contains(t, body, "page=1", "link to newer")
	require.Contains(t, body, "page=3", "link to older")

	code, _ = get(t, f.h, "/ui/tasks?status=bogus")
	require.Equal(t, http.StatusBadRequest, code, "a bad filter is rejected, nothing queried")

	code, body = get(t, f.h, "/ui/templates")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-template="examples/diamond_workflow"`)
	require.Equal(t, 4, strings.Count(body, `class="dag-node state-none"`))

	code, body = get(t, f.h, "/ui/queues")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-queue="examples_queue" data-depth="3"`)
	require.Contains(t, body, "7 s")

	f.history.EXPECT().DeadLetters(mock.Anything, dashboard.DefaultDeadLetterLimit).Return(nil, false, nil).Once()
	code, body = get(t, f.h, "/ui/dlq")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="dlq-absent"`)
	tid := uuid.New()
	f.history.EXPECT().DeadLetters(mock.Anything, dashboard.DefaultDeadLetterLimit).Return([]ports.DeadLetterEntry{
		{EntryUUID: uuid.New(), TaskUUID: &tid, Reason: "max_receive_count", Status: "open", CreatedAt: time.Now()}}, true, nil).Once()
	_, body = get(t, f.h, "/ui/dlq")
	require.Contains(t, body, `data-reason="max_receive_count"`)

	code, body = get(t, f.h, "/ui/static/style.css")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, ".dag-node")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ui/", nil))
	require.Equal(t, http.StatusFound, w.Code)
	require.Equal(t, "/ui/tasks", w.Header().Get("Location"))
}

func TestBadInputAndFailures(t *testing.T) {
	t.Parallel()
	f := setup(t, fakeTemplates{err: errors.New("db down")}, fakeQueues{err: errors.New("db down")})
	code, _ := get(t, f.h, "/ui/tasks/not-a-uuid")
	require.Equal(t, http.StatusBadRequest, code)
	missing := uuid.New()
	f.tasks.EXPECT().GetTask(mock.Anything, missing).Return(ports.TaskView{}, ports.ErrNotFound)
	code, _ = get(t, f.h, "/ui/tasks/"+missing.String())
	require.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, f.h, "/ui/templates")
	require.Equal(t, http.StatusInternalServerError, code)
	code, _ = get(t, f.h, "/ui/queues")
	require.Equal(t, http.StatusInternalServerError, code)
}
