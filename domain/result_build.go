package domain

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// RetryAfterHeader is the orchestration_metadata.headers key carrying a
// handler-requested retry delay (contract §9.2, §10.3). Readers match it
// case-insensitively.
const RetryAfterHeader = "retry-after"

// defaultFailureMessage stands in for an empty handler message, because
// error.message is a required field of the stored result (contract §5).
const defaultFailureMessage = "step handler failed"

// StepFailure is what a failing handler reports (contract §9.2). Go's zero
// value of Retryable is false, while the contract's default is true: the
// handler SDK must set it explicitly (NewRetryableFailure does for the
// worker's own failures).
type StepFailure struct {
	Message   string
	Retryable bool
	ErrorType string
	ErrorCode string
	Context   map[string]any
	Backtrace []string
	// RetryAfterSeconds becomes headers["retry-after"] = "<seconds>".
	RetryAfterSeconds *uint32
	// BackoffHint becomes orchestration_metadata.backoff_hint.
	BackoffHint *BackoffHint
}

// NewRetryableFailure is a retryable failure of the given error type, the
// shape of the failures the worker assigns itself (handler_panic, timeout,
// handler_not_found, configuration_error, worker_lost, worker_shutdown).
func NewRetryableFailure(errorType, message string) StepFailure {
	return StepFailure{Message: message, Retryable: true, ErrorType: errorType}
}

// NewSuccessResult builds the StepExecutionResult stored on success (contract
// §5, §9.2): success true, status "completed", metadata.retryable false, the
// handler's metadata as metadata.custom. A nil result is stored as null; a
// zero started time leaves started_at null.
func NewSuccessResult(stepUUID uuid.UUID, result json.RawMessage, custom map[string]any, started, completed time.Time, workerID string) StepExecutionResult {
	if len(bytes.TrimSpace(result)) == 0 {
		result = json.RawMessage("null")
	}
	return StepExecutionResult{
		StepUUID: stepUUID,
		Success:  true,
		Result:   result,
		Metadata: baseMetadata(started, completed, workerID, custom),
		Status:   ResultStatusCompleted,
	}
}

// NewFailureResult builds the StepExecutionResult stored on failure (contract
// §5, §9.2, D-a): success false, status "failed", result {}, the error object,
// and metadata.retryable/error_type/error_code/context copied from the
// failure. A retry delay or backoff hint goes to orchestration_metadata, which
// is null otherwise.
func NewFailureResult(stepUUID uuid.UUID, f StepFailure, started, completed time.Time, workerID string) StepExecutionResult {
	msg := f.Message
	if msg == "" {
		msg = defaultFailureMessage
	}
	md := baseMetadata(started, completed, workerID, nil)
	md.Retryable = f.Retryable
	md.ErrorType = optionalString(f.ErrorType)
	md.ErrorCode = optionalString(f.ErrorCode)
	md.Context = f.Context
	r := StepExecutionResult{
		StepUUID: stepUUID,
		Success:  false,
		Result:   json.RawMessage(emptyJSONObject),
		Metadata: md,
		Status:   ResultStatusFailed,
		Error: &StepExecutionError{
			Message:   msg,
			ErrorType: optionalString(f.ErrorType),
			Backtrace: f.Backtrace,
			Retryable: f.Retryable,
		},
	}
	if f.RetryAfterSeconds != nil || f.BackoffHint != nil {
		om := &OrchestrationMetadata{Headers: map[string]string{}}
		if f.RetryAfterSeconds != nil {
			om.Headers[RetryAfterHeader] = strconv.FormatUint(uint64(*f.RetryAfterSeconds), 10)
		}
		if f.BackoffHint != nil {
			h := *f.BackoffHint
			om.BackoffHint = &h
		}
		r.OrchestrationMetadata = om
	}
	return r
}

func baseMetadata(started, completed time.Time, workerID string, custom map[string]any) StepExecutionMetadata {
	md := StepExecutionMetadata{
		CompletedAt: completed.UTC(),
		WorkerID:    optionalString(workerID),
		Custom:      custom,
	}
	if !started.IsZero() {
		s := started.UTC()
		md.StartedAt = &s
		if d := completed.Sub(started); d > 0 {
			md.ExecutionTimeMs = d.Milliseconds()
		}
	}
	return md
}

func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ParseStepExecutionResult reads tasker_workflow_steps.results tolerantly
// (contract §5): it reports false for NULL, a raw handler result written by
// older reference workers, or any other shape, which callers treat as "no
// result object" rather than an error. An object counts as a
// StepExecutionResult when it has a uuid step_uuid, a boolean success and a
// string status (any value, e.g. "success"/"error" from other producers).
// Optional parts that are absent or malformed are left zero.
func ParseStepExecutionResult(raw json.RawMessage) (StepExecutionResult, bool) {
	var probe struct {
		StepUUID              *string         `json:"step_uuid"`
		Success               *bool           `json:"success"`
		Status                *string         `json:"status"`
		Result                json.RawMessage `json:"result"`
		Metadata              json.RawMessage `json:"metadata"`
		Error                 json.RawMessage `json:"error"`
		OrchestrationMetadata json.RawMessage `json:"orchestration_metadata"`
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &probe) != nil {
		return StepExecutionResult{}, false
	}
	if probe.StepUUID == nil || probe.Success == nil || probe.Status == nil {
		return StepExecutionResult{}, false
	}
	id, err := uuid.Parse(*probe.StepUUID)
	if err != nil {
		return StepExecutionResult{}, false
	}
	r := StepExecutionResult{StepUUID: id, Success: *probe.Success, Status: *probe.Status, Result: probe.Result}
	if !isAbsentJSON(probe.Metadata) {
		var md StepExecutionMetadata
		if json.Unmarshal(probe.Metadata, &md) == nil {
			r.Metadata = md
		}
	}
	if !isAbsentJSON(probe.Error) {
		var e StepExecutionError
		if json.Unmarshal(probe.Error, &e) == nil {
			r.Error = &e
		}
	}
	if !isAbsentJSON(probe.OrchestrationMetadata) {
		var om OrchestrationMetadata
		if json.Unmarshal(probe.OrchestrationMetadata, &om) == nil {
			r.OrchestrationMetadata = &om
		}
	}
	return r, true
}

// UnwrapDependencyResult is what a handler sees for one dependency (D-r): the
// `result` of a stored StepExecutionResult (null when it has none), otherwise
// the stored JSON as it is.
func UnwrapDependencyResult(raw json.RawMessage) json.RawMessage {
	r, ok := ParseStepExecutionResult(raw)
	if !ok {
		return raw
	}
	if len(r.Result) == 0 {
		return json.RawMessage("null")
	}
	return r.Result
}

// httpDateLayouts are the date formats an HTTP Retry-After may use (RFC 9110
// §5.6.7: IMF-fixdate, then the obsolete RFC 850 and asctime forms).
var httpDateLayouts = []string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
}

// RetryDelay extracts the retry delay a failed step asked for (contract
// §10.3): orchestration_metadata.headers["retry-after"] (key matched
// case-insensitively) as non-negative integer seconds or an HTTP date (seconds
// from now, rounded up, at least 0); otherwise backoff_hint.delay_seconds.
// ok is false when the result carries neither, or the header is unparseable
// and there is no hint. The caller caps the delay (max_backoff_seconds).
func RetryDelay(r StepExecutionResult, now time.Time) (seconds int, ok bool) {
	om := r.OrchestrationMetadata
	if om == nil {
		return 0, false
	}
	if v, found := retryAfterValue(om.Headers); found {
		if s, ok := parseRetryAfter(v, now); ok {
			return s, true
		}
	}
	if om.BackoffHint != nil {
		return int(om.BackoffHint.DelaySeconds), true
	}
	return 0, false
}

// retryAfterValue finds the header case-insensitively; with several spellings
// the exact lower-case key wins, then the first in sorted order, so the
// result never depends on map iteration order.
func retryAfterValue(headers map[string]string) (string, bool) {
	if v, ok := headers[RetryAfterHeader]; ok {
		return v, true
	}
	keys := make([]string, 0, len(headers))
	for k := range headers {
		if strings.EqualFold(k, RetryAfterHeader) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	sort.Strings(keys)
	return headers[keys[0]], true
}

func parseRetryAfter(v string, now time.Time) (int, bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseUint(v, 10, 31); err == nil {
		return int(n), true
	}
	for _, layout := range httpDateLayouts {
		at, err := time.Parse(layout, v)
		if err != nil {
			continue
		}
		d := at.Sub(now)
		if d <= 0 {
			return 0, true
		}
		secs := int(d / time.Second)
		if d%time.Second != 0 {
			secs++
		}
		return secs, true
	}
	return 0, false
}
