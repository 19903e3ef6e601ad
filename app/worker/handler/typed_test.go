package handler

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tasker-systems/tasker-go/domain"
)

type squareIn struct {
	EvenNumber int    `json:"even_number"`
	Previous   int    `dependency:"first"`
	Note       string `dependency:"annotate,optional"`
}

type squareOut struct {
	Squared int `json:"squared"`
}

func typedEvent(ctx string, deps map[string]string) domain.StepExecutionEvent {
	ev := domain.StepExecutionEvent{
		Task: domain.TaskInfo{TaskUUID: uuid.MustParse("0190f0b2-6c1a-7000-8000-000000000001"), NamespaceName: "examples",
			TaskName: "chain", Context: json.RawMessage(ctx)},
		Step:              domain.StepInfo{WorkflowStepUUID: uuid.MustParse("0190f0b2-6c1a-7000-8000-0000000000a1"), Name: "second"},
		DependencyResults: map[string]json.RawMessage{},
	}
	for k, v := range deps {
		ev.DependencyResults[k] = json.RawMessage(v)
	}
	return ev
}

func TestTypedDecodesContextAndDependencies(t *testing.T) {
	t.Parallel()
	h := Typed(func(_ context.Context, _ *StepContext, in squareIn) (squareOut, error) {
		return squareOut{Squared: in.EvenNumber*in.EvenNumber + in.Previous + len(in.Note)}, nil
	})
	tests := []struct {
		name    string
		ctx     string
		deps    map[string]string
		want    int
		wantErr string
	}{
		{name: "context and dependency", ctx: `{"even_number": 4}`, deps: map[string]string{"first": "10"}, want: 26},
		{name: "optional dependency present", ctx: `{"even_number": 2}`, deps: map[string]string{"first": "0", "annotate": `"abc"`}, want: 7},
		{name: "wrong context type", ctx: `{"even_number": "x"}`, deps: map[string]string{"first": "1"},
			wantErr: `task context does not fit handler.squareIn: field "even_number": cannot use a JSON string as int`},
		{name: "missing dependency", ctx: `{"even_number": 2}`, wantErr: `no result of dependency "first"`},
		{name: "dependency of the wrong shape", ctx: `{"even_number": 2}`, deps: map[string]string{"first": `{"a":1}`},
			wantErr: `result of dependency "first" does not fit field Previous`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc, err := NewStepContext(typedEvent(tt.ctx, tt.deps))
			require.NoError(t, err)
			s, err := h.Handle(context.Background(), sc)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				he := AsError(err)
				require.False(t, he.Retryable, "bad input is permanent")
				require.Equal(t, ErrorTypeValidation, he.Type)
				return
			}
			require.NoError(t, err)
			require.Equal(t, squareOut{Squared: tt.want}, s.Result)
		})
	}
}

func TestTypedPassesHandlerErrorsThrough(t *testing.T) {
	t.Parallel()
	boom := Retryable("upstream", "try later")
	h := Typed(func(context.Context, *StepContext, map[string]any) (any, error) { return nil, boom })
	sc, err := NewStepContext(typedEvent(`{}`, nil))
	require.NoError(t, err)
	_, err = h.Handle(context.Background(), sc)
	require.ErrorIs(t, err, boom)
}

type fakeCreator struct{ got []domain.TaskRequest }

func (f *fakeCreator) CreateTask(_ context.Context, r domain.TaskRequest) (domain.TaskCreationResponse, error) {
	f.got = append(f.got, r)
	return domain.TaskCreationResponse{TaskUUID: uuid.MustParse("0190f0b2-6c1a-7000-8000-0000000000ff"), StepCount: 1}, nil
}

func TestStepContextLoggerAndCreateTask(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	creator := &fakeCreator{}
	sc, err := NewStepContext(typedEvent(`{}`, nil), WithLogger(zap.New(core)), WithTaskCreator(creator))
	require.NoError(t, err)
	sc.Logger().Info("hello")
	entry := logs.All()[0].ContextMap()
	require.Equal(t, "0190f0b2-6c1a-7000-8000-000000000001", entry["task_uuid"])
	require.Equal(t, "0190f0b2-6c1a-7000-8000-0000000000a1", entry["step_uuid"])
	require.Equal(t, "examples", entry["namespace"])
	require.Equal(t, "second", entry["step_name"])

	resp, err := sc.CreateTask(context.Background(), domain.TaskRequest{Namespace: "examples", Name: "child", Version: "1.0.0"})
	require.NoError(t, err)
	require.Equal(t, 1, resp.StepCount)
	require.Equal(t, "child", creator.got[0].Name)

	bare, err := NewStepContext(typedEvent(`{}`, nil))
	require.NoError(t, err)
	bare.Logger().Info("discarded without a logger")
	_, err = bare.CreateTask(context.Background(), domain.TaskRequest{})
	require.True(t, errors.Is(err, ErrNoTaskCreator))
}

type keyedCreator struct {
	fakeCreator
	keys []string
}

func (k *keyedCreator) CreateTaskWithKey(ctx context.Context, r domain.TaskRequest, key string) (domain.TaskCreationResponse, error) {
	k.keys = append(k.keys, key)
	return k.CreateTask(ctx, r)
}

// TestCreateTaskIsIdempotentPerStep: the same request from the same step
// (a retry or redelivery) carries the same key; another request or another
// step a different one.
func TestCreateTaskIsIdempotentPerStep(t *testing.T) {
	t.Parallel()
	kc := &keyedCreator{}
	child := domain.TaskRequest{Namespace: "examples", Name: "child", Version: "1.0.0", Context: json.RawMessage(`{"n":1}`)}
	other := child
	other.Context = json.RawMessage(`{"n":2}`)
	for _, req := range []domain.TaskRequest{child, child, other} {
		sc, err := NewStepContext(typedEvent(`{}`, nil), WithTaskCreator(kc))
		require.NoError(t, err)
		_, err = sc.CreateTask(context.Background(), req)
		require.NoError(t, err)
	}
	ev := typedEvent(`{}`, nil)
	ev.Step.WorkflowStepUUID = uuid.MustParse("0190f0b2-6c1a-7000-8000-0000000000a2")
	sc, err := NewStepContext(ev, WithTaskCreator(kc))
	require.NoError(t, err)
	_, err = sc.CreateTask(context.Background(), child)
	require.NoError(t, err)

	require.Len(t, kc.keys, 4)
	require.Equal(t, kc.keys[0], kc.keys[1], "a rerun of the step sends the same key")
	require.NotEqual(t, kc.keys[0], kc.keys[2], "another request, another key")
	require.NotEqual(t, kc.keys[0], kc.keys[3], "another step, another key")
	require.Regexp(t, `^step-0190f0b2-6c1a-7000-8000-0000000000a1-[0-9a-f]{32}$`, kc.keys[0])
	require.LessOrEqual(t, len(kc.keys[0]), 255)
}
