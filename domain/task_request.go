package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// TaskRequest asks the orchestration to create a task from a registered
// template (contract §7.2). Optional fields get defaults (D-o).
type TaskRequest struct {
	Name                string          `json:"name"`
	Namespace           string          `json:"namespace"`
	Version             string          `json:"version"`
	Context             json.RawMessage `json:"context,omitempty"`
	Initiator           string          `json:"initiator,omitempty"`
	SourceSystem        string          `json:"source_system,omitempty"`
	Reason              string          `json:"reason,omitempty"`
	Tags                []string        `json:"tags,omitempty"`
	BypassSteps         []string        `json:"bypass_steps,omitempty"`
	RequestedAt         *string         `json:"requested_at,omitempty"`
	Status              *string         `json:"status,omitempty"`
	Complete            *bool           `json:"complete,omitempty"`
	Options             json.RawMessage `json:"options,omitempty"`
	Priority            *int            `json:"priority,omitempty"`
	ClaimTimeoutSeconds *int            `json:"claim_timeout_seconds,omitempty"`
}

// TaskCreationResponse is the 200 body of POST /v1/tasks (contract §7.2).
type TaskCreationResponse struct {
	TaskUUID            uuid.UUID            `json:"task_uuid"`
	Status              string               `json:"status"`
	CreatedAt           time.Time            `json:"created_at"`
	EstimatedCompletion *time.Time           `json:"estimated_completion"`
	StepCount           int                  `json:"step_count"`
	StepMapping         map[string]uuid.UUID `json:"step_mapping"`
	HandlerConfigName   string               `json:"handler_config_name"`
}
