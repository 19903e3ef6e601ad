package httpclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/tasker-systems/tasker-go/domain"
)

// DLQEntry is one dead-letter entry (GET /v1/dlq/{entry_uuid}), the body
// type the server sends. TaskUUID and StepUUID are nil when the entry names
// none.
type DLQEntry = domain.DLQEntryBody

// DLQList is one page of GET /v1/dlq.
type DLQList = domain.DLQListBody

// ListDLQOptions filters GET /v1/dlq; zero values are omitted.
type ListDLQOptions struct {
	Page, PerPage             int
	Namespace, Reason, Status string
}

// ListDLQ returns one page of dead-letter entries, newest first.
func (c *Client) ListDLQ(ctx context.Context, opts ListDLQOptions) (DLQList, error) {
	q := listQuery{}
	q.setInt("page", opts.Page)
	q.setInt("per_page", opts.PerPage)
	q.setStr("namespace", opts.Namespace)
	q.setStr("reason", opts.Reason)
	q.setStr("status", opts.Status)
	var out DLQList
	err := c.call(ctx, http.MethodGet, "/v1/dlq", url.Values(q), nil, &out)
	return out, err
}

// GetDLQ returns one entry.
func (c *Client) GetDLQ(ctx context.Context, entryUUID uuid.UUID) (DLQEntry, error) {
	var out DLQEntry
	err := c.call(ctx, http.MethodGet, "/v1/dlq/"+entryUUID.String(), nil, nil, &out)
	return out, err
}

// RequeueDLQ sends the entry's work again (POST /v1/dlq/{uuid}/requeue). A
// retry after a lost response answers 400 (the entry is no longer open), so
// a requeue is never done twice.
func (c *Client) RequeueDLQ(ctx context.Context, entryUUID uuid.UUID) (DLQEntry, error) {
	var out DLQEntry
	err := c.call(ctx, http.MethodPost, "/v1/dlq/"+entryUUID.String()+"/requeue", nil, nil, &out)
	return out, err
}

// ResolveDLQ marks the entry resolved with note (PATCH /v1/dlq/{uuid}).
func (c *Client) ResolveDLQ(ctx context.Context, entryUUID uuid.UUID, note string) (DLQEntry, error) {
	var out DLQEntry
	err := c.call(ctx, http.MethodPatch, "/v1/dlq/"+entryUUID.String(), nil,
		map[string]string{"status": "resolved", "note": note}, &out)
	return out, err
}
