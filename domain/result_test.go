package domain

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var (
	goldenStep    = uuid.MustParse("0198f0c2-aaaa-7000-8000-000000000001")
	goldenStarted = time.Date(2025, 8, 27, 22, 18, 31, 0, time.UTC)
	goldenDone    = time.Date(2025, 8, 27, 22, 18, 32, 123456000, time.UTC)
	// goldenDoneCEST is the same instant in another zone: writers emit UTC.
	goldenDoneCEST = goldenDone.In(time.FixedZone("CEST", 2*3600))
)

func TestNewSuccessResult_Golden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		result json.RawMessage
		custom map[string]any
		start  time.Time
		worker string
		want   string
	}{
		{"full", json.RawMessage(`{"value":16}`), map[string]any{"source": "handler"}, goldenStarted, "worker-1",
			`{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":true,"result":{"value":16},
			  "metadata":{"execution_time_ms":1123,"handler_version":null,"retryable":false,
			    "completed_at":"2025-08-27T22:18:32.123456Z","worker_id":"worker-1","worker_hostname":null,
			    "started_at":"2025-08-27T22:18:31Z","custom":{"source":"handler"},"error_code":null,
			    "error_type":null,"context":{}},
			  "status":"completed","error":null,"orchestration_metadata":null}`},
		{"nil result, custom and start", nil, nil, time.Time{}, "",
			`{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":true,"result":null,
			  "metadata":{"execution_time_ms":0,"handler_version":null,"retryable":false,
			    "completed_at":"2025-08-27T22:18:32.123456Z","worker_id":null,"worker_hostname":null,
			    "started_at":null,"custom":{},"error_code":null,"error_type":null,"context":{}},
			  "status":"completed","error":null,"orchestration_metadata":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewSuccessResult(goldenStep, tc.result, tc.custom, tc.start, goldenDoneCEST, tc.worker)
			got, err := json.Marshal(r)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestNewFailureResult_Golden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    StepFailure
		want string
	}{
		{"full failure with retry delay", StepFailure{
			Message: "rate limited", Retryable: true, ErrorType: "RateLimitError", ErrorCode: "E429",
			Context: map[string]any{"attempt": 2}, Backtrace: []string{"a.go:1", "b.go:2"},
			RetryAfterSeconds: u32(30),
			BackoffHint:       &BackoffHint{BackoffType: BackoffRateLimit, DelaySeconds: 45, Context: str("quota")},
		}, `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":false,"result":{},
			  "metadata":{"execution_time_ms":1123,"handler_version":null,"retryable":true,
			    "completed_at":"2025-08-27T22:18:32.123456Z","worker_id":"worker-1","worker_hostname":null,
			    "started_at":"2025-08-27T22:18:31Z","custom":{},"error_code":"E429",
			    "error_type":"RateLimitError","context":{"attempt":2}},
			  "status":"failed",
			  "error":{"message":"rate limited","error_type":"RateLimitError","backtrace":["a.go:1","b.go:2"],"retryable":true},
			  "orchestration_metadata":{"headers":{"retry-after":"30"},"error_context":null,
			    "backoff_hint":{"backoff_type":"RateLimit","delay_seconds":45,"context":"quota"},"custom":{}}}`},
		{"minimal permanent failure", StepFailure{Message: "bad input"},
			`{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":false,"result":{},
			  "metadata":{"execution_time_ms":1123,"handler_version":null,"retryable":false,
			    "completed_at":"2025-08-27T22:18:32.123456Z","worker_id":"worker-1","worker_hostname":null,
			    "started_at":"2025-08-27T22:18:31Z","custom":{},"error_code":null,"error_type":null,"context":{}},
			  "status":"failed",
			  "error":{"message":"bad input","error_type":null,"backtrace":null,"retryable":false},
			  "orchestration_metadata":null}`},
		{"hint only, empty message", StepFailure{Retryable: true, BackoffHint: &BackoffHint{BackoffType: BackoffServiceUnavailable, DelaySeconds: 5}},
			`{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":false,"result":{},
			  "metadata":{"execution_time_ms":1123,"handler_version":null,"retryable":true,
			    "completed_at":"2025-08-27T22:18:32.123456Z","worker_id":"worker-1","worker_hostname":null,
			    "started_at":"2025-08-27T22:18:31Z","custom":{},"error_code":null,"error_type":null,"context":{}},
			  "status":"failed",
			  "error":{"message":"step handler failed","error_type":null,"backtrace":null,"retryable":true},
			  "orchestration_metadata":{"headers":{},"error_context":null,
			    "backoff_hint":{"backoff_type":"ServiceUnavailable","delay_seconds":5,"context":null},"custom":{}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewFailureResult(goldenStep, tc.f, goldenStarted, goldenDoneCEST, "worker-1")
			got, err := json.Marshal(r)
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestNewRetryableFailure(t *testing.T) {
	t.Parallel()
	r := NewFailureResult(goldenStep, NewRetryableFailure(ErrorTypeHandlerPanic, "boom"), goldenStarted, goldenDone, "w")
	require.True(t, r.Error.Retryable)
	require.True(t, r.Metadata.Retryable)
	require.Equal(t, ErrorTypeHandlerPanic, *r.Metadata.ErrorType)
	require.Equal(t, ErrorTypeHandlerPanic, *r.Error.ErrorType)
	require.Equal(t, "boom", r.Error.Message)
}

func TestStepExecutionResult_GoldenKeyOrder(t *testing.T) {
	t.Parallel()
	// Byte-exact: writers emit every field, in this order, with explicit nulls.
	r := NewFailureResult(goldenStep, StepFailure{Message: "m"}, time.Time{}, goldenDoneCEST, "")
	got, err := json.Marshal(r)
	require.NoError(t, err)
	require.Equal(t, `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":false,"result":{},`+
		`"metadata":{"execution_time_ms":0,"handler_version":null,"retryable":false,"completed_at":"2025-08-27T22:18:32.123456Z",`+
		`"worker_id":null,"worker_hostname":null,"started_at":null,"custom":{},"error_code":null,"error_type":null,"context":{}},`+
		`"status":"failed","error":{"message":"m","error_type":null,"backtrace":null,"retryable":false},"orchestration_metadata":null}`,
		string(got))
}

func TestParseStepExecutionResult(t *testing.T) {
	t.Parallel()
	full, err := json.Marshal(NewFailureResult(goldenStep, StepFailure{Message: "x", Retryable: true, RetryAfterSeconds: u32(7)}, goldenStarted, goldenDone, "w"))
	require.NoError(t, err)

	tests := []struct {
		name       string
		raw        string
		wantOK     bool
		wantStatus string
		wantResult string
	}{
		{"own failure result", string(full), true, "failed", `{}`},
		{"minimal other producer, status success", `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":true,"status":"success","result":[1,2]}`, true, "success", `[1,2]`},
		{"status error, missing metadata", `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":false,"status":"error","result":{}}`, true, "error", `{}`},
		{"malformed optional parts are tolerated", `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":true,"status":"completed","result":1,
			"metadata":{"completed_at":"yesterday"},"error":"oops","orchestration_metadata":[]}`, true, "completed", `1`},
		{"NULL column", ``, false, "", ""},
		{"JSON null", `null`, false, "", ""},
		{"raw handler number", `42`, false, "", ""},
		{"raw handler object", `{"value":16}`, false, "", ""},
		{"raw handler object with success only", `{"success":true,"result":1}`, false, "", ""},
		{"step_uuid not a uuid", `{"step_uuid":"nope","success":true,"status":"completed"}`, false, "", ""},
		{"success wrong type", `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":"yes","status":"completed"}`, false, "", ""},
		{"invalid JSON", `{"step_uuid":`, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := ParseStepExecutionResult(json.RawMessage(tc.raw))
			require.Equal(t, tc.wantOK, ok)
			if !ok {
				require.Equal(t, StepExecutionResult{}, r)
				return
			}
			require.Equal(t, goldenStep, r.StepUUID)
			require.Equal(t, tc.wantStatus, r.Status)
			require.JSONEq(t, tc.wantResult, string(r.Result))
		})
	}

	r, ok := ParseStepExecutionResult(full)
	require.True(t, ok)
	require.Equal(t, "x", r.Error.Message)
	require.Equal(t, "7", r.OrchestrationMetadata.Headers["retry-after"])
	require.Equal(t, goldenDone, r.Metadata.CompletedAt)
	require.True(t, r.Metadata.Retryable)
}

func TestUnwrapDependencyResult(t *testing.T) {
	t.Parallel()
	success, err := json.Marshal(NewSuccessResult(goldenStep, json.RawMessage(`{"value":16}`), nil, goldenStarted, goldenDone, "w"))
	require.NoError(t, err)
	tests := []struct {
		name, raw, want string
	}{
		{"full result unwrapped", string(success), `{"value":16}`},
		{"result without result field", `{"step_uuid":"0198f0c2-aaaa-7000-8000-000000000001","success":true,"status":"completed"}`, `null`},
		{"raw handler result passed as is", `{"value":4}`, `{"value":4}`},
		{"raw scalar passed as is", `4`, `4`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.JSONEq(t, tc.want, string(UnwrapDependencyResult(json.RawMessage(tc.raw))))
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 8, 27, 22, 0, 0, 0, time.UTC)
	hint := &BackoffHint{BackoffType: BackoffServerRequested, DelaySeconds: 12}
	withMeta := func(h map[string]string, b *BackoffHint) StepExecutionResult {
		return StepExecutionResult{OrchestrationMetadata: &OrchestrationMetadata{Headers: h, BackoffHint: b}}
	}
	tests := []struct {
		name   string
		r      StepExecutionResult
		want   int
		wantOK bool
	}{
		{"no orchestration metadata", StepExecutionResult{}, 0, false},
		{"empty metadata", withMeta(nil, nil), 0, false},
		{"integer seconds", withMeta(map[string]string{"retry-after": "30"}, hint), 30, true},
		{"header key case-insensitive", withMeta(map[string]string{"Retry-After": " 45 "}, nil), 45, true},
		{"exact key wins over other spellings", withMeta(map[string]string{"RETRY-AFTER": "1", "retry-after": "2"}, nil), 2, true},
		{"other spellings resolved deterministically", withMeta(map[string]string{"Retry-After": "3", "RETRY-AFTER": "4"}, nil), 4, true},
		{"zero seconds", withMeta(map[string]string{"retry-after": "0"}, hint), 0, true},
		{"IMF-fixdate", withMeta(map[string]string{"retry-after": "Wed, 27 Aug 2025 22:01:30 GMT"}, nil), 90, true},
		{"IMF-fixdate rounds up", withMeta(map[string]string{"retry-after": "Wed, 27 Aug 2025 22:00:00 GMT"}, nil), 0, true},
		{"RFC 850 date", withMeta(map[string]string{"retry-after": "Wednesday, 27-Aug-25 22:00:10 GMT"}, nil), 10, true},
		{"asctime date", withMeta(map[string]string{"retry-after": "Wed Aug 27 22:00:05 2025"}, nil), 5, true},
		{"date in the past", withMeta(map[string]string{"retry-after": "Wed, 27 Aug 2025 21:00:00 GMT"}, hint), 0, true},
		{"negative seconds fall back to hint", withMeta(map[string]string{"retry-after": "-5"}, hint), 12, true},
		{"garbage falls back to hint", withMeta(map[string]string{"retry-after": "soon"}, hint), 12, true},
		{"garbage without hint", withMeta(map[string]string{"retry-after": "soon"}, nil), 0, false},
		{"hint only", withMeta(map[string]string{"x-other": "1"}, hint), 12, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RetryDelay(tc.r, now)
			require.Equal(t, tc.wantOK, ok)
			require.Equal(t, tc.want, got)
		})
	}

	// Sub-second remainders round up so the step never runs early.
	got, ok := RetryDelay(withMeta(map[string]string{"retry-after": "Wed, 27 Aug 2025 22:00:10 GMT"}, nil), now.Add(500*time.Millisecond))
	require.True(t, ok)
	require.Equal(t, 10, got)

	// End to end: the failure constructor's header is read back.
	f := NewFailureResult(goldenStep, StepFailure{Message: "m", RetryAfterSeconds: u32(17)}, goldenStarted, goldenDone, "w")
	raw, err := json.Marshal(f)
	require.NoError(t, err)
	parsed, ok := ParseStepExecutionResult(raw)
	require.True(t, ok)
	got, ok = RetryDelay(parsed, now)
	require.True(t, ok)
	require.Equal(t, 17, got)
}
