// Package httpclient is the orchestration HTTP API client (contract §7) used
// by workers and taskerctl. Every call goes through the same pipeline:
// per-attempt timeout → circuit breaker → retry with exponential backoff and
// jitter (only after network errors, 5xx and 429, honouring Retry-After) →
// typed errors carrying the server's {"error":{"code","message"}}.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/sony/gobreaker/v2"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/redact"
	"github.com/tasker-systems/tasker-go/ports"
)

// MaxResponseBytes bounds how much of one response body is read: a task's
// steps with their results can be large, but an endless body must not
// exhaust the caller's memory.
const MaxResponseBytes = 64 << 20

// Client calls one orchestration instance. It is safe for concurrent use;
// the circuit breaker is shared by all calls made through the same Client.
type Client struct {
	cfg     Config
	base    *url.URL
	breaker *gobreaker.CircuitBreaker[*response]
}

var _ ports.OrchestrationAPI = (*Client)(nil)

// New validates cfg, fills its defaults and returns a Client. It does not
// contact the server; call Health for that.
func New(cfg Config) (*Client, error) {
	cfg, base, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, base: base}
	if cfg.Breaker.Enabled {
		threshold := uint32(cfg.Breaker.FailureThreshold)
		c.breaker = gobreaker.NewCircuitBreaker[*response](gobreaker.Settings{
			Name:        "orchestration_api",
			MaxRequests: uint32(cfg.Breaker.HalfOpenMaxRequests),
			Timeout:     cfg.Breaker.OpenTimeout,
			ReadyToTrip: func(counts gobreaker.Counts) bool { return counts.ConsecutiveFailures >= threshold },
			// A 4xx proves the server is up: only retry-worthy failures count.
			IsSuccessful: func(err error) bool { return err == nil || !retryable(err) },
			// The caller giving up says nothing about the server.
			IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
		})
	}
	return c, nil
}

// Breaker states reported by BreakerState.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
	BreakerDisabled = "disabled"
)

// BreakerState is the circuit breaker's current state, one of the Breaker*
// constants, for the worker's /status and health logs.
func (c *Client) BreakerState() string {
	if c.breaker == nil {
		return BreakerDisabled
	}
	switch c.breaker.State() {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerClosed
	}
}

// CloseIdleConnections releases the HTTP client's idle keep-alive
// connections; short-lived programs (taskerctl) call it before exiting.
func (c *Client) CloseIdleConnections() { c.cfg.HTTPClient.CloseIdleConnections() }

// BaseURL is the orchestration root the client talks to.
func (c *Client) BaseURL() string { return redact.URL(c.base.String()) }

// CreateTask submits a task request (POST /v1/tasks). Each call is one
// logical create: it sends one Idempotency-Key (WithIdempotencyKey's, else a
// new UUID) on every retry, so a retry after a lost response or a 503 that
// followed a committed insert returns the task already created instead of a
// second one. Replayed in the result says the orchestration replayed it.
func (c *Client) CreateTask(ctx context.Context, req domain.TaskRequest) (domain.TaskCreationResponse, error) {
	var out domain.TaskCreationResponse
	key, ok := IdempotencyKeyFromContext(ctx)
	if !ok {
		key = uuid.NewString()
	}
	resp, err := c.callRaw(ctx, http.MethodPost, "/v1/tasks", nil, req, &out, map[string]string{IdempotencyKeyHeader: key})
	if err == nil {
		out.Replayed = resp.header.Get(IdempotentReplayedHeader) == "true"
	}
	return out, err
}

// GetTask returns one task with its step readiness (GET /v1/tasks/{uuid}).
func (c *Client) GetTask(ctx context.Context, taskUUID uuid.UUID) (TaskResponse, error) {
	var out TaskResponse
	err := c.call(ctx, http.MethodGet, "/v1/tasks/"+taskUUID.String(), nil, nil, &out)
	return out, err
}

// ListTasks returns one page of tasks, newest first (GET /v1/tasks).
func (c *Client) ListTasks(ctx context.Context, opts ListTasksOptions) (TaskList, error) {
	q := listQuery{}
	q.setInt("page", opts.Page)
	q.setInt("per_page", opts.PerPage)
	q.setStr("namespace", opts.Namespace)
	q.setStr("status", opts.Status)
	q.setStr("initiator", opts.Initiator)
	q.setStr("source_system", opts.SourceSystem)
	var out TaskList
	err := c.call(ctx, http.MethodGet, "/v1/tasks", url.Values(q), nil, &out)
	return out, err
}

// CancelTask cancels a task and returns it (DELETE /v1/tasks/{uuid}). A
// terminal task is a 400 (IsValidation).
func (c *Client) CancelTask(ctx context.Context, taskUUID uuid.UUID) (TaskResponse, error) {
	var out TaskResponse
	err := c.call(ctx, http.MethodDelete, "/v1/tasks/"+taskUUID.String(), nil, nil, &out)
	return out, err
}

// ListSteps returns the task's workflow steps with their results, ordered by
// creation (GET /v1/tasks/{uuid}/workflow_steps).
func (c *Client) ListSteps(ctx context.Context, taskUUID uuid.UUID) ([]StepResponse, error) {
	var out []StepResponse
	err := c.call(ctx, http.MethodGet, "/v1/tasks/"+taskUUID.String()+"/workflow_steps", nil, nil, &out)
	return out, err
}

// GetStep returns one workflow step of the task
// (GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}).
func (c *Client) GetStep(ctx context.Context, taskUUID, stepUUID uuid.UUID) (StepResponse, error) {
	var out StepResponse
	err := c.call(ctx, http.MethodGet, "/v1/tasks/"+taskUUID.String()+"/workflow_steps/"+stepUUID.String(), nil, nil, &out)
	return out, err
}

// ResolveStep resolves a step manually (PATCH
// /v1/tasks/{uuid}/workflow_steps/{step_uuid}, contract §7.5): the step
// becomes resolved_manually with res.ResolutionData as its result, and the
// task can move on. It returns the step as it is afterwards.
func (c *Client) ResolveStep(ctx context.Context, taskUUID, stepUUID uuid.UUID, res StepResolution) (StepResponse, error) {
	var out StepResponse
	err := c.call(ctx, http.MethodPatch, "/v1/tasks/"+taskUUID.String()+"/workflow_steps/"+stepUUID.String(), nil, res, &out)
	return out, err
}

// ListTemplates returns the registered task templates (GET /v1/templates),
// only those of namespace when it is not empty.
func (c *Client) ListTemplates(ctx context.Context, namespace string) ([]TemplateSummary, error) {
	q := listQuery{}
	q.setStr("namespace", namespace)
	out := []TemplateSummary{}
	err := c.call(ctx, http.MethodGet, "/v1/templates", url.Values(q), nil, &out)
	return out, err
}

// Health checks that the orchestration answers GET /health with 200.
func (c *Client) Health(ctx context.Context) error {
	var out HealthResponse
	if err := c.call(ctx, http.MethodGet, "/health", nil, nil, &out); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("GET /health: status %q, want \"ok\"", out.Status)
	}
	return nil
}

// call sends one logical request (with retries) and decodes a 2xx body into out.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	_, err := c.callRaw(ctx, method, path, query, in, out, nil)
	return err
}

// callRaw is call with extra request headers, returning the final response.
func (c *Client) callRaw(ctx context.Context, method, path string, query url.Values, in, out any, hdr map[string]string) (*response, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = b
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req := request{method: method, path: path, url: u.String(), body: body, requestID: requestIDFor(ctx), header: hdr}
	resp, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return resp, nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return nil, fmt.Errorf("%s %s: decode %d response: %w", method, path, resp.status, err)
	}
	return resp, nil
}

type request struct {
	method, path, url string
	body              []byte
	requestID         string
	// header holds extra headers sent on every attempt (Idempotency-Key).
	header map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// attempt performs one HTTP exchange bounded by the per-request timeout.
func (c *Client) attempt(ctx context.Context, r request) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	hreq, err := http.NewRequestWithContext(actx, r.method, r.url, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: build request: %w", r.method, r.path, err)
	}
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.cfg.UserAgent)
	hreq.Header.Set(RequestIDHeader, r.requestID)
	for k, v := range r.header {
		hreq.Header.Set(k, v)
	}
	if r.body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.AuthToken != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.cfg.AuthToken)
	}
	hresp, err := c.cfg.HTTPClient.Do(hreq)
	if err != nil {
		return nil, c.transportError(ctx, r, err)
	}
	defer func() { _ = hresp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, r, fmt.Errorf("read %d response: %w", hresp.StatusCode, err))
	}
	if len(data) > MaxResponseBytes {
		return nil, fmt.Errorf("%s %s: response larger than %d bytes", r.method, r.path, MaxResponseBytes)
	}
	resp := &response{status: hresp.StatusCode, header: hresp.Header, body: data}
	if resp.status >= 200 && resp.status < 300 {
		return resp, nil
	}
	return nil, newAPIError(r, resp)
}

// transportError marks errors caused by the caller's own context as
// "caller gone" (not retried, not counted by the breaker); everything else,
// including the per-attempt timeout, is a retry-worthy TransportError.
func (c *Client) transportError(ctx context.Context, r request, err error) error {
	if ctx.Err() != nil {
		return &callerGoneError{err: fmt.Errorf("%s %s: %w", r.method, r.path, context.Cause(ctx))}
	}
	return &TransportError{Method: r.method, Path: r.path, Err: err}
}

// newAPIError reads the contract error body, tolerating other shapes.
func newAPIError(r request, resp *response) *APIError {
	e := &APIError{Status: resp.status, Method: r.method, Path: r.path,
		RequestID: resp.header.Get(RequestIDHeader), RetryAfter: resp.header.Get("Retry-After")}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.body, &body); err == nil && (body.Error.Code != "" || body.Error.Message != "") {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		return e
	}
	text := bytes.TrimSpace(resp.body)
	if len(text) > 200 {
		text = append(text[:200:200], "…"...)
	}
	e.Message = string(text)
	if e.Message == "" {
		e.Message = http.StatusText(resp.status)
	}
	return e
}
