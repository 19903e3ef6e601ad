package ports

import (
	"context"

	"github.com/tasker-systems/tasker-go/domain"
)

// OrchestrationAPI is what a worker (or taskerctl) needs from a running
// orchestration instance over HTTP.
type OrchestrationAPI interface {
	// CreateTask submits a task request (POST /v1/tasks).
	CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error)
	// Health checks that the orchestration answers.
	Health(ctx context.Context) error
}
