package worker

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/adapters/httpclient/orchestrationapitest"
	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// newTaskCreator builds the worker's orchestration client as New does: the
// embedded default orchestration_api section, pointed at baseURL.
func newTaskCreator(t *testing.T, baseURL string) taskCreator {
	t.Helper()
	cfg := config.Defaults("test").OrchestrationAPI
	cfg.BaseURL = baseURL
	c, err := httpclient.New(clientConfig(cfg))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return taskCreator{c}
}

// TestOrchestrationAPIContract runs the OrchestrationAPI port's contract
// suite against the client the worker builds from its configuration and
// hands to the engine (taskCreator).
func TestOrchestrationAPIContract(t *testing.T) {
	orchestrationapitest.Run(t, func(t *testing.T, baseURL string) ports.OrchestrationAPI {
		return newTaskCreator(t, baseURL)
	})
}

// stepContextAPI is the port as a handler reaches it: CreateTask through a
// StepContext (which sends the per-step idempotency key through
// taskCreator.CreateTaskWithKey), Health through the worker's client.
type stepContextAPI struct{ tc taskCreator }

func (a stepContextAPI) CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error) {
	// Each call is a step of its own, so each is its own logical create.
	sc, err := handler.NewStepContext(domain.StepExecutionEvent{Step: domain.StepInfo{WorkflowStepUUID: uuid.New()}},
		handler.WithTaskCreator(a.tc))
	if err != nil {
		return domain.TaskCreationResponse{}, err
	}
	return sc.CreateTask(ctx, req)
}

func (a stepContextAPI) Health(ctx context.Context) error { return a.tc.Health(ctx) }

// TestStepContextOrchestrationAPIContract runs the suite through
// StepContext.CreateTask, the path a handler's child task takes: its
// errors wrap the client's, so a handler branches on them the same way.
func TestStepContextOrchestrationAPIContract(t *testing.T) {
	orchestrationapitest.Run(t, func(t *testing.T, baseURL string) ports.OrchestrationAPI {
		return stepContextAPI{newTaskCreator(t, baseURL)}
	})
}
