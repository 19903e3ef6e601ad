// Package orchestrationapitest is the contract-test suite of the
// OrchestrationAPI port (ports.OrchestrationAPI), what a worker or a client
// needs from a running orchestration. Every implementation runs it against
// the real orchestration API served in process (internal/orchserver, on a
// database of its own with the example templates registered):
//
//	func TestOrchestrationAPIContract(t *testing.T) {
//		orchestrationapitest.Run(t, func(t *testing.T, baseURL string) ports.OrchestrationAPI {
//			c, err := httpclient.New(httpclient.Config{BaseURL: baseURL})
//			require.NoError(t, err)
//			return c
//		})
//	}
//
// It pins what the port promises and what callers branch on: a valid
// request creates one task per call and answers with its UUID and steps; an
// unknown namespace, template or version is a 404 and a request the
// orchestration refuses (no name, a context that is not an object or fails
// the template's input schema) a 400, both as *httpclient.APIError with the
// server's code, and neither writes anything; Health is nil while the
// server answers; with the server stopped both calls fail with an error
// that is no APIError (nothing answered).
//
// Subtests run in parallel, each on a server of its own.
package orchestrationapitest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/orchserver"
	"github.com/tasker-systems/tasker-go/ports"
)

// Factory returns the implementation under test, talking to the
// orchestration at baseURL.
type Factory func(t *testing.T, baseURL string) ports.OrchestrationAPI

// Run runs the whole suite against the implementations f returns.
func Run(t *testing.T, f Factory) {
	t.Run("CreateTaskCreatesIt", func(t *testing.T) { testCreate(t, f) })
	t.Run("EveryCallCreatesItsOwnTask", func(t *testing.T) { testDistinct(t, f) })
	t.Run("UnknownTemplateIsNotFound", func(t *testing.T) { testUnknown(t, f) })
	t.Run("InvalidRequestIsBadRequest", func(t *testing.T) { testInvalid(t, f) })
	t.Run("HealthWhileServing", func(t *testing.T) { testHealth(t, f) })
	t.Run("StoppedServerFailsBothCalls", func(t *testing.T) { testStopped(t, f) })
}

func setup(t *testing.T, f Factory) (context.Context, *orchserver.Server, ports.OrchestrationAPI) {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	srv := orchserver.Start(t)
	api := f(t, srv.URL)
	require.NotNil(t, api)
	return ctx, srv, api
}

func request(name string, ctxJSON string) domain.TaskRequest {
	return domain.TaskRequest{Namespace: orchserver.Namespace, Name: name, Version: "1.0.0",
		Context: json.RawMessage(ctxJSON), Initiator: "orchestrationapitest", SourceSystem: "test", Reason: "contract"}
}

// requireAPIError requires err to be an answered refusal with status and code.
func requireAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var apiErr *httpclient.APIError
	require.ErrorAs(t, err, &apiErr, "an answered refusal is an *httpclient.APIError: %v", err)
	require.Equal(t, status, apiErr.Status, apiErr.Error())
	require.Equal(t, code, apiErr.Code, apiErr.Error())
	require.NotEmpty(t, apiErr.Message)
}

func testCreate(t *testing.T, f Factory) {
	ctx, srv, api := setup(t, f)
	for _, name := range []string{"linear_workflow", "diamond_workflow"} {
		tmpl := srv.Template(t, name)
		resp, err := api.CreateTask(ctx, request(name, `{"even_number":2}`))
		require.NoError(t, err, name)
		require.NotEqual(t, uuid.Nil, resp.TaskUUID, name)
		require.False(t, resp.Replayed, name)
		require.Equal(t, len(tmpl.Steps), resp.StepCount, name)
		require.Len(t, resp.StepMapping, len(tmpl.Steps), name)
		for _, s := range tmpl.Steps {
			require.NotEqual(t, uuid.Nil, resp.StepMapping[s.Name], "%s: step %s mapped", name, s.Name)
		}
		require.WithinDuration(t, time.Now(), resp.CreatedAt, time.Minute, name)

		task, ok := srv.Task(t, resp.TaskUUID)
		require.True(t, ok, "%s: the task exists", name)
		require.Equal(t, orchserver.Namespace, task.Namespace)
		require.Equal(t, name, task.Name)
		require.Equal(t, "1.0.0", task.Version)
		require.JSONEq(t, `{"even_number":2}`, string(task.Context))
		require.Equal(t, len(tmpl.Steps), task.Steps)
	}
}

func testDistinct(t *testing.T, f Factory) {
	ctx, srv, api := setup(t, f)
	a, err := api.CreateTask(ctx, request("linear_workflow", `{"even_number":4}`))
	require.NoError(t, err)
	b, err := api.CreateTask(ctx, request("linear_workflow", `{"even_number":6}`))
	require.NoError(t, err)
	require.NotEqual(t, a.TaskUUID, b.TaskUUID)
	require.Equal(t, 2, srv.TaskCount(t))
}

func testUnknown(t *testing.T, f Factory) {
	ctx, srv, api := setup(t, f)
	for name, req := range map[string]domain.TaskRequest{
		"namespace": {Namespace: "no_such_ns", Name: "linear_workflow", Version: "1.0.0", Context: json.RawMessage(`{"even_number":2}`)},
		"template":  request("no_such_workflow", `{"even_number":2}`),
		"version":   {Namespace: orchserver.Namespace, Name: "linear_workflow", Version: "9.9.9", Context: json.RawMessage(`{"even_number":2}`)},
	} {
		_, err := api.CreateTask(ctx, req)
		require.Error(t, err, name)
		requireAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
	}
	require.Zero(t, srv.TaskCount(t), "nothing created")
}

func testInvalid(t *testing.T, f Factory) {
	ctx, srv, api := setup(t, f)
	for name, req := range map[string]domain.TaskRequest{
		"no name":                 request("", `{"even_number":2}`),
		"context not an object":   request("linear_workflow", `[2]`),
		"context fails schema":    request("linear_workflow", `{"even_number":3}`),
		"context misses required": request("linear_workflow", `{}`),
	} {
		_, err := api.CreateTask(ctx, req)
		require.Error(t, err, name)
		requireAPIError(t, err, http.StatusBadRequest, "BAD_REQUEST")
	}
	require.Zero(t, srv.TaskCount(t), "nothing created")
}

func testHealth(t *testing.T, f Factory) {
	ctx, _, api := setup(t, f)
	require.NoError(t, api.Health(ctx))
	require.NoError(t, api.Health(ctx), "repeatable")
}

func testStopped(t *testing.T, f Factory) {
	ctx, srv, api := setup(t, f)
	require.NoError(t, api.Health(ctx))
	srv.Stop()
	var apiErr *httpclient.APIError

	err := api.Health(ctx)
	require.Error(t, err, "nothing answers")
	require.False(t, errors.As(err, &apiErr), "no answer is no APIError: %v", err)
	_, err = api.CreateTask(ctx, request("linear_workflow", `{"even_number":2}`))
	require.Error(t, err)
	require.False(t, errors.As(err, &apiErr), "no answer is no APIError: %v", err)
	require.Zero(t, srv.TaskCount(t))
}
