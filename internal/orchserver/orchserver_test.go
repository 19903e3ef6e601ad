package orchserver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/internal/orchserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestServesTheAPIUntilStopped: the server answers the API with the example
// templates registered, a created task is readable through Task, and after
// Stop (which may be repeated) nothing answers.
func TestServesTheAPIUntilStopped(t *testing.T) {
	t.Parallel()
	srv := orchserver.Start(t)
	names := map[string]bool{}
	for _, tmpl := range srv.Templates {
		names[tmpl.Name] = true
	}
	require.Equal(t, map[string]bool{"linear_workflow": true, "diamond_workflow": true, "tree_workflow": true, "mixed_dag_workflow": true}, names)
	require.Len(t, srv.Template(t, "linear_workflow").Steps, 4)
	require.Zero(t, srv.TaskCount(t))
	_, ok := srv.Task(t, uuid.New())
	require.False(t, ok)

	resp, err := http.Post(srv.URL+"/v1/tasks", "application/json", strings.NewReader(
		`{"namespace":"examples","name":"linear_workflow","version":"1.0.0","context":{"even_number":2}}`))
	require.NoError(t, err)
	var created struct {
		TaskUUID uuid.UUID `json:"task_uuid"`
	}
	require.NoError(t, decode(resp, &created))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	task, ok := srv.Task(t, created.TaskUUID)
	require.True(t, ok)
	require.Equal(t, orchserver.Task{Namespace: "examples", Name: "linear_workflow", Version: "1.0.0",
		Context: task.Context, Steps: 4}, task)
	require.JSONEq(t, `{"even_number":2}`, string(task.Context))
	require.Equal(t, 1, srv.TaskCount(t))

	srv.Stop()
	srv.Stop()
	_, err = http.Get(srv.URL + "/health")
	require.Error(t, err, "a stopped server refuses connections")
}

func decode(resp *http.Response, v any) error {
	defer func() { _ = resp.Body.Close() }()
	return json.NewDecoder(resp.Body).Decode(v)
}
