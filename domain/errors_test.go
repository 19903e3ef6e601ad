package domain

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNotClaimableError(t *testing.T) {
	t.Parallel()
	var err error = &NotClaimableError{StepUUID: "s-1", Current: StepInProgress}
	var nce *NotClaimableError
	require.True(t, errors.As(err, &nce))
	require.Equal(t, StepInProgress, nce.Current)
	require.EqualError(t, err, "step s-1 not claimable in state in_progress")
}

func TestStepByName(t *testing.T) {
	t.Parallel()
	tpl := validTemplate()
	s, ok := tpl.StepByName("c")
	require.True(t, ok)
	require.Equal(t, []string{"a"}, s.Dependencies)
	_, ok = tpl.StepByName("zzz")
	require.False(t, ok)
}

func TestStepExecutionResult_MarshalFillsRequiredObjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    StepExecutionResult
		want string
	}{
		{"success without result is null", StepExecutionResult{Success: true}, `null`},
		{"failure without result is {}", StepExecutionResult{Success: false}, `{}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.r)
			require.NoError(t, err)
			var m map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(raw, &m))
			require.JSONEq(t, tc.want, string(m["result"]))
		})
	}

	raw, err := json.Marshal(OrchestrationMetadata{})
	require.NoError(t, err)
	require.JSONEq(t, `{"headers":{},"error_context":null,"backoff_hint":null,"custom":{}}`, string(raw))
}
