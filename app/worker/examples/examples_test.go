package examples

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/handler"
	"github.com/tasker-systems/tasker-go/domain"
)

func stepContext(t *testing.T, ctxJSON string, deps []string, results map[string]string) *handler.StepContext {
	t.Helper()
	rm := map[string]json.RawMessage{}
	for k, v := range results {
		rm[k] = json.RawMessage(v)
	}
	sc, err := handler.NewStepContext(domain.StepExecutionEvent{
		Task:              domain.TaskInfo{Context: json.RawMessage(ctxJSON)},
		Step:              domain.StepInfo{Name: "s"},
		StepDefinition:    domain.StepDefinition{Name: "s", Dependencies: deps},
		DependencyResults: rm,
	})
	require.NoError(t, err)
	return sc
}

func TestSquareAndMultiply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		h         handler.HandlerFunc
		ctx       string
		deps      []string
		results   map[string]string
		want      string
		wantType  string
		retryable bool
	}{
		{"root squares even_number", Square, `{"even_number": 2}`, nil, nil, "4", "", false},
		{"root even float form", Square, `{"even_number": 6.0}`, nil, nil, "36", "", false},
		{"root odd is permanent validation", Square, `{"even_number": 3}`, nil, nil, "", "validation", false},
		{"root string is validation", Square, `{"even_number": "2"}`, nil, nil, "", "validation", false},
		{"root fraction is validation", Square, `{"even_number": 2.5}`, nil, nil, "", "validation", false},
		{"root missing is validation", Square, `{}`, nil, nil, "", "validation", false},
		{"child squares its parent", Square, `{}`, []string{"a"}, map[string]string{"a": "65536", "z": "3"}, "4294967296", "", false},
		{"child squares beyond int64", Square, `{}`, []string{"a"}, map[string]string{"a": "4294967296"}, "18446744073709551616", "", false},
		{"child missing parent is retryable", Square, `{}`, []string{"a"}, nil, "", "missing_dependency", true},
		{"child non-number parent", Square, `{}`, []string{"a"}, map[string]string{"a": `{"x":1}`}, "", "validation", false},
		{"square of two parents is misconfigured", Square, `{}`, []string{"a", "b"}, nil, "", "configuration_error", false},
		{"multiply direct parents only", Multiply, `{}`, []string{"b", "c"}, map[string]string{"a": "4", "b": "16", "c": "16"}, "256", "", false},
		{"multiply without parents is misconfigured", Multiply, `{}`, nil, nil, "", "configuration_error", false},
		{"multiply missing parent is retryable", Multiply, `{}`, []string{"b"}, nil, "", "missing_dependency", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := tt.h(context.Background(), stepContext(t, tt.ctx, tt.deps, tt.results))
			if tt.wantType == "" {
				require.NoError(t, err)
				raw, mErr := json.Marshal(out.Result)
				require.NoError(t, mErr)
				require.Equal(t, tt.want, string(raw))
				return
			}
			he := handler.AsError(err)
			require.NotNil(t, he)
			require.Equal(t, tt.wantType, he.Type)
			require.Equal(t, tt.retryable, he.Retryable)
		})
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	r := handler.NewRegistry()
	require.NoError(t, Register(r))
	require.Equal(t, []string{MultiplyCallable, SquareCallable}, r.Callables())
	require.Error(t, Register(r), "second registration is rejected")
}
