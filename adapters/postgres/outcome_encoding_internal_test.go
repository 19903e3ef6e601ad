package postgres

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestOutcomeReqEncodingMatchesDomain: the outcome request encodes the result
// once and embeds it in the transition metadata; the metadata must be
// byte-for-byte what domain.StepEventMetadata writes (HTML characters
// unescaped, as tasker-core writes them) and the results the same JSON
// value as the result, for a success and a failure.
func TestOutcomeReqEncodingMatchesDomain(t *testing.T) {
	t.Parallel()
	step := uuid.Must(uuid.NewV7())
	errType := "permanent_error"
	cases := map[string]domain.StepExecutionResult{
		"success": {Success: true, Result: json.RawMessage(`{"html":"<a href=\"x\">&</a>","n":[1,2]}`),
			Metadata: domain.StepExecutionMetadata{ExecutionTimeMs: 7, Custom: map[string]any{"k": "<v>"}}},
		"failure": {Success: false, Error: &domain.StepExecutionError{Message: "boom <&>", ErrorType: &errType, Retryable: false}},
	}
	for name, res := range cases {
		t.Run(name, func(t *testing.T) {
			req, err := newOutcomeReq(ports.StepOutcome{StepUUID: step, Result: res, WorkerID: "w-enc"})
			require.NoError(t, err)
			res.StepUUID = step
			ev := domain.StepEvent{Type: domain.EventComplete, Result: &res}
			if !res.Success {
				ev = domain.StepEvent{Type: domain.EventFail, Message: res.Error.Message, Result: &res}
			}
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(req.meta), &got))
			at, err := time.Parse(domain.TransitionTimestampLayout, got["timestamp"].(string))
			require.NoError(t, err)
			want, err := domain.StepEventMetadata(ev, at, map[string]any{"worker_id": "w-enc"})
			require.NoError(t, err)
			require.Equal(t, string(want), req.meta)
			wantResults, err := json.Marshal(res)
			require.NoError(t, err)
			require.JSONEq(t, string(wantResults), req.results)
		})
	}
}
