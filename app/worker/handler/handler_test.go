package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/domain"
)

func noop(context.Context, *StepContext) (Success, error) { return Succeed(nil), nil }

func TestRegistryRegister(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		callable string
		h        Handler
		wantErr  string
	}{
		{"ok", "a.b", HandlerFunc(noop), ""},
		{"empty callable", "", HandlerFunc(noop), "empty callable"},
		{"nil handler", "a.c", nil, "nil handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewRegistry()
			err := r.Register(tt.callable, tt.h)
			if tt.wantErr == "" {
				require.NoError(t, err)
				_, ok := r.Lookup(tt.callable)
				require.True(t, ok)
				return
			}
			require.ErrorIs(t, err, ErrInvalidRegistration)
			require.ErrorContains(t, err, tt.wantErr)
			require.Empty(t, r.Callables(), "a rejected registration changes nothing")
		})
	}
}

func TestRegistryRejectsDuplicateAndKeepsFirst(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	first := HandlerFunc(func(context.Context, *StepContext) (Success, error) { return Succeed(1), nil })
	require.NoError(t, r.Register("x", first))
	require.ErrorIs(t, r.Register("x", HandlerFunc(noop)), ErrInvalidRegistration)
	h, ok := r.Lookup("x")
	require.True(t, ok)
	s, err := h.Handle(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 1, s.Result)
	require.NoError(t, r.Register("a", HandlerFunc(noop)))
	require.Equal(t, []string{"a", "x"}, r.Callables())
	_, ok = r.Lookup("missing")
	require.False(t, ok)
}

func TestSuccessWithMetadataDoesNotAlias(t *testing.T) {
	t.Parallel()
	a := Succeed(4).WithMetadata("k", 1)
	b := a.WithMetadata("j", 2)
	require.Equal(t, map[string]any{"k": 1}, a.Metadata)
	require.Equal(t, map[string]any{"k": 1, "j": 2}, b.Metadata)
}

func TestAsError(t *testing.T) {
	t.Parallel()
	perm := Permanent(ErrorTypeValidation, "bad %d", 3).WithCode("E1").WithContext("field", "x")
	tests := []struct {
		name          string
		err           error
		wantRetryable bool
		wantType      string
		wantMessage   string
	}{
		{"permanent", perm, false, ErrorTypeValidation, "bad 3"},
		{"wrapped permanent", fmt.Errorf("outer: %w", perm), false, ErrorTypeValidation, "bad 3"},
		{"retryable with delay", Retryable("rate_limited", "slow down").RetryAfter(7), true, "rate_limited", "slow down"},
		{"plain error", errors.New("boom"), true, ErrorTypeHandler, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			he := AsError(tt.err)
			require.Equal(t, tt.wantRetryable, he.Retryable)
			require.Equal(t, tt.wantType, he.Type)
			require.Equal(t, tt.wantMessage, he.Message)
		})
	}
	require.Nil(t, AsError(nil))
	require.Equal(t, "E1", perm.Code)
	require.Equal(t, map[string]any{"field": "x"}, perm.Context)
	cause := errors.New("io")
	require.ErrorIs(t, Retryable("t", "m").WithCause(cause), cause)
	h := Retryable("t", "m").WithBackoffHint(BackoffRateLimit, 9, "quota")
	require.Equal(t, &BackoffHint{Type: BackoffRateLimit, DelaySeconds: 9, Context: "quota"}, h.Backoff)
	require.Equal(t, "t: m", h.Error())
}

func TestStepContextAccessors(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(time.Minute)
	ev := domain.StepExecutionEvent{
		Task: domain.TaskInfo{TaskUUID: uuid.New(), Context: json.RawMessage(`{"even_number": 12345678901234567890, "name": "n"}`)},
		Step: domain.StepInfo{WorkflowStepUUID: uuid.New(), Name: "s", Inputs: json.RawMessage(`{"m": 2}`)},
		StepDefinition: domain.StepDefinition{Name: "s",
			Handler: domain.HandlerDefinition{Callable: "c", Initialization: map[string]any{"k": "v"}}},
		DependencyResults: map[string]json.RawMessage{"b": json.RawMessage(`16`), "a": json.RawMessage(`{"x":1}`)},
		Claim:             domain.StepClaim{Attempts: 2, RetryLimit: 2},
		Deadline:          deadline,
	}
	sc, err := NewStepContext(ev)
	require.NoError(t, err)

	var n json.Number
	require.NoError(t, sc.ContextValue("even_number", &n))
	require.Equal(t, "12345678901234567890", n.String())
	var s string
	require.ErrorContains(t, sc.ContextValue("even_number", &s), "even_number")
	require.ErrorIs(t, sc.ContextValue("nope", &s), ErrMissing)
	raw, ok := sc.ContextRaw("name")
	require.True(t, ok)
	require.JSONEq(t, `"n"`, string(raw))

	var in struct{ M int }
	require.NoError(t, sc.Inputs(&in))
	require.Equal(t, 2, in.M)

	var b int
	require.NoError(t, sc.DependencyResult("b", &b))
	require.Equal(t, 16, b)
	require.ErrorIs(t, sc.DependencyResult("zz", &b), ErrMissing)
	require.Equal(t, []string{"a", "b"}, sc.DependencyNames())
	_, ok = sc.DependencyRaw("a")
	require.True(t, ok)

	require.Equal(t, 2, sc.Attempts())
	require.Equal(t, 2, sc.RetryLimit())
	require.True(t, sc.IsLastAttempt())
	d, ok := sc.Deadline()
	require.True(t, ok)
	require.Equal(t, deadline, d)
	require.Equal(t, "v", sc.HandlerConfig()["k"])
	require.Equal(t, "s", sc.StepName())
	require.Equal(t, ev.Task.TaskUUID, sc.TaskUUID())
	require.Equal(t, ev.Step.WorkflowStepUUID, sc.StepUUID())
	require.Equal(t, "c", sc.Definition().Handler.Callable)
	require.Equal(t, ev.Task, sc.Task())
	require.Equal(t, ev.Step, sc.Step())
}

func TestStepContextEmptyValues(t *testing.T) {
	t.Parallel()
	sc, err := NewStepContext(domain.StepExecutionEvent{Step: domain.StepInfo{Inputs: json.RawMessage("null")}})
	require.NoError(t, err)
	var v any
	require.ErrorIs(t, sc.Inputs(&v), ErrMissing)
	require.ErrorIs(t, sc.ContextValue("x", &v), ErrMissing)
	_, ok := sc.Deadline()
	require.False(t, ok)
	require.Empty(t, sc.DependencyNames())

	_, err = NewStepContext(domain.StepExecutionEvent{Task: domain.TaskInfo{Context: json.RawMessage(`[1]`)}})
	require.ErrorContains(t, err, "not a JSON object")
}

func TestGenericAccessors(t *testing.T) {
	t.Parallel()
	sc, err := NewStepContext(domain.StepExecutionEvent{
		Task:              domain.TaskInfo{Context: json.RawMessage(`{"n": 7, "s": "x"}`)},
		Step:              domain.StepInfo{Inputs: json.RawMessage(`{"k": [1, 2]}`)},
		DependencyResults: map[string]json.RawMessage{"a": json.RawMessage(`{"v": 9}`)},
	})
	require.NoError(t, err)
	n, err := ContextAs[int64](sc, "n")
	require.NoError(t, err)
	require.Equal(t, int64(7), n)
	_, err = ContextAs[int64](sc, "s")
	require.Error(t, err, "wrong type is an error, not a zero value")
	_, err = ContextAs[int64](sc, "missing")
	require.ErrorIs(t, err, ErrMissing)
	dep, err := DependencyAs[struct{ V int }](sc, "a")
	require.NoError(t, err)
	require.Equal(t, 9, dep.V)
	in, err := InputsAs[map[string][]int](sc)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, in["k"])
}
