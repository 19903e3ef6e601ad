package domain

import (
	"bytes"
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
	// Replayed is true when an Idempotency-Key matched an earlier request and
	// this is that request's stored response (no task was created). It is not
	// part of the body: the API says so in the Idempotent-Replayed header.
	Replayed bool `json:"-"`
	// RootSteps names the steps without dependencies, in template order:
	// ready as soon as the task exists, so the orchestration enqueues them
	// without reading the task back. Not part of the body; empty on a replay.
	RootSteps []string `json:"-"`
}

// Task request defaults and limits (contract §7.2, D-o). The 128-character
// limit is the width of the tasker_tasks columns; the context limits bound
// what one request can make the database and every handler carry.
const (
	DefaultRequestActor        = "UNKNOWN"
	DefaultTaskPriority        = 0
	DefaultClaimTimeoutSeconds = 60
	MaxRequestActorLength      = 128
	MaxContextBytes            = 1 << 20
	MaxContextDepth            = 10
	MaxContextContainerItems   = 1000
	MaxContextStringLength     = 10000
	emptyJSONObject            = "{}"
)

// ApplyDefaults fills the optional fields the server defaults (D-o):
// initiator, source_system and reason "UNKNOWN"; tags and bypass_steps [];
// context {} when absent or null; priority 0; claim_timeout_seconds 60.
func (r *TaskRequest) ApplyDefaults() {
	if r.Initiator == "" {
		r.Initiator = DefaultRequestActor
	}
	if r.SourceSystem == "" {
		r.SourceSystem = DefaultRequestActor
	}
	if r.Reason == "" {
		r.Reason = DefaultRequestActor
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	if r.BypassSteps == nil {
		r.BypassSteps = []string{}
	}
	if isAbsentJSON(r.Context) {
		r.Context = json.RawMessage(emptyJSONObject)
	}
	if r.Priority == nil {
		p := DefaultTaskPriority
		r.Priority = &p
	}
	if r.ClaimTimeoutSeconds == nil {
		c := DefaultClaimTimeoutSeconds
		r.ClaimTimeoutSeconds = &c
	}
}

func isAbsentJSON(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}
