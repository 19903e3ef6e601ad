package outcome

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(1500 * time.Millisecond)
	b  = Builder{WorkerID: "worker-1", Hostname: "host"}
)

func TestSuccessShape(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	res := b.Success(id, t0, t1, handler.Succeed(json.RawMessage("256")).WithMetadata("k", "v"))
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	require.JSONEq(t, `{"step_uuid":"`+id.String()+`","success":true,"result":256,"status":"completed",
	 "error":null,"orchestration_metadata":null,
	 "metadata":{"execution_time_ms":1500,"handler_version":null,"retryable":false,
	   "completed_at":"2026-01-02T03:04:06.5Z","worker_id":"worker-1","worker_hostname":"host",
	   "started_at":"2026-01-02T03:04:05Z","custom":{"k":"v"},"error_code":null,"error_type":null,"context":{}}}`,
		string(raw))
}

func TestSuccessUnencodableResultIsPermanentFailure(t *testing.T) {
	t.Parallel()
	tests := map[string]handler.Success{
		"NaN result":      handler.Succeed(math.NaN()),
		"invalid raw":     handler.Succeed(json.RawMessage("{")),
		"NaN in metadata": handler.Succeed(1).WithMetadata("x", math.Inf(1)),
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := b.Success(uuid.New(), t0, t1, s)
			require.False(t, res.Success)
			require.False(t, res.Error.Retryable)
			require.Equal(t, ErrorTypeSerialization, *res.Error.ErrorType)
		})
	}
	require.JSONEq(t, "null", string(b.Success(uuid.New(), t0, t1, handler.Succeed(json.RawMessage(nil))).Result))
}

func TestFailureShape(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	he := handler.Retryable("rate_limited", "slow").WithCode("E42").WithContext("n", 1).
		RetryAfter(30).WithBackoffHint(handler.BackoffRateLimit, 45, "quota")
	raw, err := json.Marshal(b.Failure(id, t0, t1, he))
	require.NoError(t, err)
	require.JSONEq(t, `{"step_uuid":"`+id.String()+`","success":false,"result":{},"status":"failed",
	 "error":{"message":"slow","error_type":"rate_limited","backtrace":null,"retryable":true},
	 "orchestration_metadata":{"headers":{"retry-after":"30"},"error_context":null,
	   "backoff_hint":{"backoff_type":"RateLimit","delay_seconds":45,"context":"quota"},"custom":{}},
	 "metadata":{"execution_time_ms":1500,"handler_version":null,"retryable":true,
	   "completed_at":"2026-01-02T03:04:06.5Z","worker_id":"worker-1","worker_hostname":"host",
	   "started_at":"2026-01-02T03:04:05Z","custom":{},"error_code":"E42","error_type":"rate_limited","context":{"n":1}}}`,
		string(raw))
}

func TestWorkerFailureIsRetryableWithoutStart(t *testing.T) {
	t.Parallel()
	res := Builder{}.WorkerFailure(uuid.New(), time.Time{}, t1, domain.ErrorTypeWorkerLost, "lost")
	require.False(t, res.Success)
	require.True(t, res.Metadata.Retryable)
	require.True(t, res.Error.Retryable)
	require.Equal(t, domain.ErrorTypeWorkerLost, *res.Metadata.ErrorType)
	require.Nil(t, res.Metadata.StartedAt)
	require.Nil(t, res.Metadata.WorkerID)
	require.Zero(t, res.Metadata.ExecutionTimeMs)
	require.Nil(t, res.OrchestrationMetadata)
}
