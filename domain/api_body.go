package domain

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Wire bodies of the orchestration API shared by its server and its Go
// client, so that the two cannot drift: one type per body, the server
// encodes it and the client decodes the same type.

// Pagination describes one page of a list body (GET /v1/tasks, GET /v1/dlq).
type Pagination struct {
	Page        int   `json:"page"`
	PerPage     int   `json:"per_page"`
	TotalCount  int64 `json:"total_count"`
	TotalPages  int64 `json:"total_pages"`
	HasNext     bool  `json:"has_next"`
	HasPrevious bool  `json:"has_previous"`
}

// NewPagination describes page (1-based) of perPage items out of total.
func NewPagination(page, perPage int, total int64) Pagination {
	pages := (total + int64(perPage) - 1) / int64(perPage)
	return Pagination{Page: page, PerPage: perPage, TotalCount: total, TotalPages: pages,
		HasNext: int64(page) < pages, HasPrevious: page > 1}
}

// DLQEntryBody is one dead-letter entry on the wire (GET /v1/dlq/{entry_uuid},
// the requeue and resolve answers, one item of GET /v1/dlq). TaskUUID and
// StepUUID are null when the entry names none (a poison request message; a
// task timeout); Message is null when no message was kept.
type DLQEntryBody struct {
	EntryUUID      uuid.UUID       `json:"entry_uuid"`
	TaskUUID       *uuid.UUID      `json:"task_uuid"`
	StepUUID       *uuid.UUID      `json:"step_uuid"`
	Namespace      string          `json:"namespace"`
	Reason         string          `json:"reason"`
	Status         string          `json:"status"`
	Detail         string          `json:"detail"`
	QueueName      *string         `json:"queue_name"`
	Message        json.RawMessage `json:"message"`
	ResolutionNote *string         `json:"resolution_note"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// DLQListBody is one page of GET /v1/dlq.
type DLQListBody struct {
	Entries    []DLQEntryBody `json:"entries"`
	Pagination Pagination     `json:"pagination"`
}

// Body is e as the API sends it.
func (e DLQEntry) Body() DLQEntryBody {
	out := DLQEntryBody{EntryUUID: e.EntryUUID, TaskUUID: optUUID(e.TaskUUID), StepUUID: optUUID(e.StepUUID),
		Namespace: e.Namespace, Reason: string(e.Reason), Status: string(e.Status), Detail: e.Detail,
		QueueName: optString(e.QueueName), ResolutionNote: optString(e.ResolutionNote),
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Message: json.RawMessage("null")}
	if len(e.Message) > 0 {
		out.Message = json.RawMessage(e.Message)
	}
	return out
}

func optUUID(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
