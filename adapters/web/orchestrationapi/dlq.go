package orchestrationapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// DLQService is what the /v1/dlq routes need (the orchestration service).
type DLQService interface {
	ListDLQ(ctx context.Context, f ports.DLQFilter) (ports.DLQPage, error)
	GetDLQ(ctx context.Context, entryUUID uuid.UUID) (domain.DLQEntry, error)
	RequeueDLQ(ctx context.Context, entryUUID uuid.UUID) (domain.DLQEntry, error)
	ResolveDLQ(ctx context.Context, entryUUID uuid.UUID, note string) (domain.DLQEntry, error)
}

// MaxResolutionNoteLength bounds the note of PATCH /v1/dlq/{entry_uuid}.
const MaxResolutionNoteLength = 4096

func (s *Server) dlqService(c *gin.Context) (DLQService, bool) {
	if s.deps.DLQ == nil {
		s.respondError(c, ports.ErrDLQUnavailable)
		return nil, false
	}
	return s.deps.DLQ, true
}

// listDLQ is GET /v1/dlq: newest first, filtered by namespace, reason and
// status, paginated like GET /v1/tasks.
func (s *Server) listDLQ(c *gin.Context) {
	svc, ok := s.dlqService(c)
	if !ok {
		return
	}
	page, perPage, err := pageQuery(c)
	if err != nil {
		s.respondError(c, err)
		return
	}
	f := ports.DLQFilter{Page: page, PerPage: perPage, Namespace: c.Query("namespace"),
		Reason: domain.DLQReason(c.Query("reason")), Status: domain.DLQStatus(c.Query("status"))}
	if f.Reason != "" && !f.Reason.Valid() {
		s.respondError(c, &badRequestError{msg: fmt.Sprintf("reason %q is not one of enqueued_timeout, message_archived, task_timeout, poison_message", f.Reason)})
		return
	}
	if f.Status != "" && !f.Status.Valid() {
		s.respondError(c, &badRequestError{msg: fmt.Sprintf("status %q is not one of open, requeued, resolved", f.Status)})
		return
	}
	if len(f.Namespace) > 64 || !utf8.ValidString(f.Namespace) || strings.ContainsRune(f.Namespace, 0) {
		s.respondError(c, &badRequestError{msg: "namespace must be valid UTF-8 of at most 64 characters"})
		return
	}
	res, err := svc.ListDLQ(c.Request.Context(), f)
	if err != nil {
		s.respondError(c, err)
		return
	}
	out := domain.DLQListBody{Entries: make([]domain.DLQEntryBody, 0, len(res.Entries))}
	for _, e := range res.Entries {
		out.Entries = append(out.Entries, e.Body())
	}
	out.Pagination = domain.NewPagination(page, perPage, res.TotalCount)
	c.JSON(http.StatusOK, out)
}

// dlqEntryRoute answers a route on one entry ({entry_uuid}): the DLQ
// service must be present and the path a UUID; then call acts on the entry
// and its result is the response.
func (s *Server) dlqEntryRoute(c *gin.Context, call func(ctx context.Context, svc DLQService, id uuid.UUID) (domain.DLQEntry, error)) {
	svc, ok := s.dlqService(c)
	if !ok {
		return
	}
	id, err := pathUUID(c, "entry_uuid")
	if err != nil {
		s.respondError(c, err)
		return
	}
	e, err := call(c.Request.Context(), svc, id)
	if err != nil {
		s.respondError(c, err)
		return
	}
	c.JSON(http.StatusOK, e.Body())
}

// getDLQ is GET /v1/dlq/{entry_uuid}.
func (s *Server) getDLQ(c *gin.Context) {
	s.dlqEntryRoute(c, func(ctx context.Context, svc DLQService, id uuid.UUID) (domain.DLQEntry, error) {
		return svc.GetDLQ(ctx, id)
	})
}

// requeueDLQ is POST /v1/dlq/{entry_uuid}/requeue: the step is enqueued
// again with a fresh attempt budget and its task goes back to pending (then
// in_progress once enqueued), or the poison message is sent again.
func (s *Server) requeueDLQ(c *gin.Context) {
	s.dlqEntryRoute(c, func(ctx context.Context, svc DLQService, id uuid.UUID) (domain.DLQEntry, error) {
		return svc.RequeueDLQ(ctx, id)
	})
}

// resolveDLQRequest is the body of PATCH /v1/dlq/{entry_uuid}.
type resolveDLQRequest struct {
	Status string `json:"status"`
	Note   string `json:"note"`
}

// resolveDLQ is PATCH /v1/dlq/{entry_uuid} with {"status":"resolved","note":…}.
func (s *Server) resolveDLQ(c *gin.Context) {
	s.dlqEntryRoute(c, func(ctx context.Context, svc DLQService, id uuid.UUID) (domain.DLQEntry, error) {
		body, _, err := readJSONObject(c, "note")
		if err != nil {
			return domain.DLQEntry{}, err
		}
		var req resolveDLQRequest
		if err := decodeInto(body, &req); err != nil {
			return domain.DLQEntry{}, err
		}
		switch {
		case req.Status != "" && req.Status != string(domain.DLQResolved):
			return domain.DLQEntry{}, &badRequestError{msg: fmt.Sprintf("status must be \"resolved\", got %q", req.Status)}
		case strings.TrimSpace(req.Note) == "":
			return domain.DLQEntry{}, &badRequestError{msg: "note must not be empty"}
		case len(req.Note) > MaxResolutionNoteLength || strings.ContainsRune(req.Note, 0):
			return domain.DLQEntry{}, &badRequestError{msg: fmt.Sprintf("note must be at most %d bytes without NUL characters", MaxResolutionNoteLength)}
		}
		return svc.ResolveDLQ(ctx, id, req.Note)
	})
}
