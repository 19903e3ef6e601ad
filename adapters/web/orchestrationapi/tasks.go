package orchestrationapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// Pagination limits of GET /v1/tasks (§7.3).
const (
	DefaultPerPage = 25
	MaxPerPage     = 100
)

// readJSONObject reads the body (bounded by BodyLimit) and checks it is a
// JSON object with the required keys present, so that a missing required
// field is a JSON_ERROR while an empty one is left to validation (D-o).
func readJSONObject(c *gin.Context, required ...string) ([]byte, map[string]json.RawMessage, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, nil, &jsonError{msg: "Request body is not a valid JSON object: " + describeJSON(err)}
	}
	if dec.More() {
		return nil, nil, &jsonError{msg: "Request body has trailing data after the JSON object"}
	}
	for _, k := range required {
		if _, ok := fields[k]; !ok {
			return nil, nil, &jsonError{msg: fmt.Sprintf("missing field `%s`", k)}
		}
	}
	return body, fields, nil
}

func describeJSON(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

// decodeInto unmarshals a validated object body into v; type mismatches are JSON_ERROR.
func decodeInto(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &jsonError{msg: fmt.Sprintf("invalid type for field `%s`: expected %s", te.Field, te.Type)}
		}
		return &jsonError{msg: err.Error()}
	}
	return nil
}

func (s *Server) createTask(c *gin.Context) {
	body, _, err := readJSONObject(c, "name", "namespace", "version")
	if err != nil {
		s.respondError(c, err)
		return
	}
	var req domain.TaskRequest
	if err := decodeInto(body, &req); err != nil {
		s.respondError(c, err)
		return
	}
	if s.forbidNamespace(c, req.Namespace) {
		return
	}
	key, err := idempotencyKey(c)
	if err != nil {
		s.respondError(c, err)
		return
	}
	resp, err := s.deps.Tasks.CreateTaskIdempotent(c.Request.Context(), req, key)
	if err != nil {
		s.respondError(c, err)
		return
	}
	if resp.Replayed {
		c.Header(HeaderIdempotentReplayed, "true")
	}
	c.JSON(http.StatusOK, resp)
}

// Idempotent task creation headers.
const (
	// HeaderIdempotencyKey names the request header that makes POST /v1/tasks
	// idempotent: one key, one task.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderIdempotentReplayed is "true" on a response that replays the task
	// an earlier request with the same key created.
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	// MaxIdempotencyKeyLength is the width of the key column.
	MaxIdempotencyKeyLength = 255
)

// idempotencyKey reads the optional Idempotency-Key header: 1 to 255
// printable ASCII characters.
func idempotencyKey(c *gin.Context) (string, error) {
	vals := c.Request.Header.Values(HeaderIdempotencyKey)
	if len(vals) == 0 {
		return "", nil
	}
	if len(vals) > 1 {
		return "", &badRequestError{msg: "Idempotency-Key must be sent once"}
	}
	k := vals[0]
	if k == "" || len(k) > MaxIdempotencyKeyLength {
		return "", &badRequestError{msg: fmt.Sprintf("Idempotency-Key must be 1 to %d characters", MaxIdempotencyKeyLength)}
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "", &badRequestError{msg: "Idempotency-Key must be printable ASCII without spaces"}
		}
	}
	return k, nil
}

func (s *Server) getTask(c *gin.Context) {
	id, err := pathUUID(c, "task_uuid")
	if err != nil {
		s.respondError(c, err)
		return
	}
	v, err := s.deps.Query.GetTask(c.Request.Context(), id)
	if err != nil {
		s.respondError(c, err)
		return
	}
	if s.forbidNamespace(c, v.Namespace) {
		return
	}
	c.JSON(http.StatusOK, newTaskResponse(v))
}

func (s *Server) cancelTask(c *gin.Context) {
	id, ok := s.allowedPathTask(c)
	if !ok {
		return
	}
	if err := s.deps.Tasks.CancelTask(c.Request.Context(), id); err != nil {
		s.respondError(c, err)
		return
	}
	v, err := s.deps.Query.GetTask(c.Request.Context(), id)
	if err != nil {
		s.respondError(c, err)
		return
	}
	c.JSON(http.StatusOK, newTaskResponse(v))
}

// allowedPathTask reads the route's {task_uuid} and checks with
// taskNamespaceAllowed that the token may act on that task. When it reports
// false it has already answered: 400 for a malformed UUID, else what
// taskNamespaceAllowed answered.
func (s *Server) allowedPathTask(c *gin.Context) (uuid.UUID, bool) {
	id, err := pathUUID(c, "task_uuid")
	if err != nil {
		s.respondError(c, err)
		return uuid.Nil, false
	}
	return id, s.taskNamespaceAllowed(c, id)
}

// taskNamespaceAllowed checks, for a token restricted by worker_namespaces,
// that task id is in one of its namespaces, answering the error (404, 403)
// itself when not. Unrestricted requests cost no query.
func (s *Server) taskNamespaceAllowed(c *gin.Context, id uuid.UUID) bool {
	cl, ok := middleware.GetClaims(c)
	if !ok || !cl.NamespaceRestricted() {
		return true
	}
	v, err := s.deps.Query.GetTask(c.Request.Context(), id)
	if err != nil {
		s.respondError(c, err)
		return false
	}
	return !s.forbidNamespace(c, v.Namespace)
}

// forbidNamespace answers 403 when the request's token may not act on
// namespace ns (JWT worker_namespaces) and reports whether it did.
func (s *Server) forbidNamespace(c *gin.Context, ns string) bool {
	if middleware.NamespaceAllowed(c, ns) {
		return false
	}
	writeError(c, http.StatusForbidden, CodeForbidden, "Token is not allowed namespace "+ns)
	return true
}

// validateTexts checks (field, value) pairs of path and query parameters
// with domain.ValidateText, so a %00 in a URL is a 400 naming the
// parameter, not a database error.
func validateTexts(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := domain.ValidateText(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// queryInt parses an optional positive integer query parameter.
func queryInt(c *gin.Context, name string, def, lo, hi int) (int, error) {
	raw, ok := c.GetQuery(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		return 0, &badRequestError{msg: fmt.Sprintf("%s must be an integer between %d and %d", name, lo, hi)}
	}
	return n, nil
}

// pageQuery reads ?page (1-based) and ?per_page (DefaultPerPage, at most
// MaxPerPage), the paging of every list route.
func pageQuery(c *gin.Context) (page, perPage int, err error) {
	if page, err = queryInt(c, "page", 1, 1, 1<<30); err != nil {
		return 0, 0, err
	}
	perPage, err = queryInt(c, "per_page", DefaultPerPage, 1, MaxPerPage)
	return page, perPage, err
}

func (s *Server) listTasks(c *gin.Context) {
	page, perPage, err := pageQuery(c)
	if err != nil {
		s.respondError(c, err)
		return
	}
	if err := validateTexts("namespace", c.Query("namespace"), "initiator", c.Query("initiator"),
		"source_system", c.Query("source_system"), "status", c.Query("status")); err != nil {
		s.respondError(c, err)
		return
	}
	if ns := c.Query("namespace"); !middleware.NamespaceAllowed(c, ns) {
		writeError(c, http.StatusForbidden, CodeForbidden, "Token is restricted to its worker_namespaces; pass an allowed ?namespace=")
		return
	}
	f := ports.TaskFilter{Page: page, PerPage: perPage, Namespace: c.Query("namespace"),
		Initiator: c.Query("initiator"), SourceSystem: c.Query("source_system")}
	if st := c.Query("status"); st != "" {
		f.Status = domain.TaskState(st)
		if !f.Status.Valid() {
			s.respondError(c, &badRequestError{msg: fmt.Sprintf("status %q is not a task state", st)})
			return
		}
	}
	res, err := s.deps.Query.ListTasks(c.Request.Context(), f)
	if err != nil {
		s.respondError(c, err)
		return
	}
	out := taskListResponse{Tasks: make([]taskResponse, 0, len(res.Tasks))}
	for _, t := range res.Tasks {
		out.Tasks = append(out.Tasks, newTaskResponse(t))
	}
	out.Pagination = domain.NewPagination(page, perPage, res.TotalCount)
	c.JSON(http.StatusOK, out)
}
