package ports

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
)

// RegisteredTemplate is a named task row with its namespace.
type RegisteredTemplate struct {
	NamedTaskUUID     uuid.UUID
	TaskNamespaceUUID uuid.UUID
	Namespace         string
	Name              string
	Version           string
	Description       *string
	Configuration     json.RawMessage
	UpdatedAt         time.Time
}

// TemplateStore registers and finds task templates (contract §6.4).
type TemplateStore interface {
	// RegisterTemplate finds or creates the namespace and upserts the named task
	// for (namespace, name, version) with configuration, in one transaction.
	RegisterTemplate(ctx context.Context, t domain.TaskTemplate, configuration json.RawMessage) (RegisteredTemplate, error)
	// GetTemplate finds the exact (namespace, name, version); ErrNotFound if absent.
	GetTemplate(ctx context.Context, namespace, name, version string) (RegisteredTemplate, error)
	// ListTemplates lists registered templates, optionally of one namespace ("" = all).
	ListTemplates(ctx context.Context, namespace string) ([]RegisteredTemplate, error)
}
