package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var allEvents = []EventType{EventEnqueue, EventStart, EventComplete, EventFail, EventRetry, EventReset, EventCancel, EventResolveManually}

// stepRow is one row of the contract §3.2 table, expanded per from-state.
type stepRow struct {
	from      StepState
	event     EventType
	to        StepState
	needsDeps bool // guard: dependencies satisfied
}

// stepTable is contract §3.2, row by row.
var stepTable = []stepRow{
	{StepPending, EventEnqueue, StepEnqueued, true},
	{StepEnqueued, EventStart, StepInProgress, false},
	{StepPending, EventStart, StepInProgress, true},
	{StepInProgress, EventComplete, StepComplete, false},
	{StepPending, EventFail, StepError, false},
	{StepEnqueued, EventFail, StepError, false},
	{StepInProgress, EventFail, StepError, false},
	{StepError, EventRetry, StepPending, false},
	{StepPending, EventCancel, StepCancelled, false},
	{StepEnqueued, EventCancel, StepCancelled, false},
	{StepInProgress, EventCancel, StepCancelled, false},
	{StepError, EventCancel, StepCancelled, false},
	{StepPending, EventResolveManually, StepResolvedManually, false},
	{StepEnqueued, EventResolveManually, StepResolvedManually, false},
	{StepInProgress, EventResolveManually, StepResolvedManually, false},
	{StepComplete, EventResolveManually, StepResolvedManually, false},
	{StepError, EventResolveManually, StepResolvedManually, false},
	{StepCancelled, EventResolveManually, StepResolvedManually, false},
	{StepResolvedManually, EventResolveManually, StepResolvedManually, false},
}

func TestNextStepState_ContractRows(t *testing.T) {
	t.Parallel()
	for _, row := range stepTable {
		t.Run(fmt.Sprintf("%s_%s", row.from, row.event), func(t *testing.T) {
			got, err := NextStepState(row.from, row.event, StepGuard{DependenciesSatisfied: true})
			require.NoError(t, err)
			require.Equal(t, row.to, got)

			got, err = NextStepState(row.from, row.event, StepGuard{DependenciesSatisfied: false})
			if row.needsDeps {
				var ite *InvalidTransitionError
				require.ErrorAs(t, err, &ite)
				require.Equal(t, "step", ite.Entity)
				require.Equal(t, string(row.from), ite.From)
				require.Equal(t, row.event, ite.Event)
				require.Contains(t, err.Error(), "dependencies not satisfied")
				require.Empty(t, got)
			} else {
				require.NoError(t, err, "no dependency guard on this row")
				require.Equal(t, row.to, got)
			}
		})
	}
}

func TestNextStepState_EveryOtherCombinationIsRejected(t *testing.T) {
	t.Parallel()
	valid := map[[2]string]bool{}
	for _, row := range stepTable {
		valid[[2]string{string(row.from), string(row.event)}] = true
	}
	rejected := 0
	for _, from := range append(append([]StepState{}, AllStepStates...), "bogus") {
		for _, ev := range append(append([]EventType{}, allEvents...), "Explode") {
			if valid[[2]string{string(from), string(ev)}] {
				continue
			}
			for _, deps := range []bool{true, false} {
				got, err := NextStepState(from, ev, StepGuard{DependenciesSatisfied: deps})
				var ite *InvalidTransitionError
				require.True(t, errors.As(err, &ite), "%s --%s--> must be rejected, got %q", from, ev, got)
				require.Equal(t, "step", ite.Entity)
				require.Equal(t, string(from), ite.From)
				require.Equal(t, ev, ite.Event)
				require.Empty(t, got)
				rejected++
			}
		}
	}
	// 8 states (7 + unknown) × 9 events minus the 19 valid rows, each with both guard values.
	require.Equal(t, (8*9-len(stepTable))*2, rejected)
}

type taskRow struct {
	from         TaskState
	event        EventType
	to           TaskState
	needsAllDone bool // guard: every step complete or resolved_manually
}

// taskTable is contract §3.1, row by row.
var taskTable = []taskRow{
	{TaskPending, EventStart, TaskInProgress, false},
	{TaskInProgress, EventComplete, TaskComplete, true},
	{TaskPending, EventFail, TaskError, false},
	{TaskInProgress, EventFail, TaskError, false},
	{TaskError, EventReset, TaskPending, false},
	{TaskPending, EventCancel, TaskCancelled, false},
	{TaskInProgress, EventCancel, TaskCancelled, false},
	{TaskError, EventCancel, TaskCancelled, false},
	{TaskPending, EventResolveManually, TaskResolvedManually, false},
	{TaskInProgress, EventResolveManually, TaskResolvedManually, false},
	{TaskComplete, EventResolveManually, TaskResolvedManually, false},
	{TaskError, EventResolveManually, TaskResolvedManually, false},
	{TaskCancelled, EventResolveManually, TaskResolvedManually, false},
	{TaskResolvedManually, EventResolveManually, TaskResolvedManually, false},
}

func TestNextTaskState_ContractRows(t *testing.T) {
	t.Parallel()
	for _, row := range taskTable {
		t.Run(fmt.Sprintf("%s_%s", row.from, row.event), func(t *testing.T) {
			got, err := NextTaskState(row.from, row.event, TaskGuard{AllStepsComplete: true})
			require.NoError(t, err)
			require.Equal(t, row.to, got)

			got, err = NextTaskState(row.from, row.event, TaskGuard{AllStepsComplete: false})
			if row.needsAllDone {
				var ite *InvalidTransitionError
				require.ErrorAs(t, err, &ite)
				require.Equal(t, "task", ite.Entity)
				require.Contains(t, err.Error(), "not every step is complete or resolved_manually")
				require.Empty(t, got)
			} else {
				require.NoError(t, err)
				require.Equal(t, row.to, got)
			}
		})
	}
}

func TestNextTaskState_EveryOtherCombinationIsRejected(t *testing.T) {
	t.Parallel()
	valid := map[[2]string]bool{}
	for _, row := range taskTable {
		valid[[2]string{string(row.from), string(row.event)}] = true
	}
	rejected := 0
	for _, from := range append(append([]TaskState{}, AllTaskStates...), "enqueued", "bogus") {
		for _, ev := range append(append([]EventType{}, allEvents...), "Explode") {
			if valid[[2]string{string(from), string(ev)}] {
				continue
			}
			for _, done := range []bool{true, false} {
				got, err := NextTaskState(from, ev, TaskGuard{AllStepsComplete: done})
				var ite *InvalidTransitionError
				require.True(t, errors.As(err, &ite), "%s --%s--> must be rejected, got %q", from, ev, got)
				require.Equal(t, "task", ite.Entity)
				require.Equal(t, string(from), ite.From)
				require.Equal(t, ev, ite.Event)
				require.Empty(t, got)
				rejected++
			}
		}
	}
	// 8 states (6 + enqueued, which is a step-only state, + unknown) × 9 events minus the valid rows.
	require.Equal(t, (8*9-len(taskTable))*2, rejected)
}

func TestInvalidTransitionErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := NextStepState(StepComplete, EventStart, StepGuard{})
	require.EqualError(t, err, "invalid step transition: Start from state complete: only a pending or enqueued step can start")
	require.EqualError(t, &InvalidTransitionError{Entity: "task", From: "x", Event: EventStart},
		"invalid task transition: Start from state x")
}

func TestStateHelpers(t *testing.T) {
	t.Parallel()
	for _, s := range AllStepStates {
		got, err := ParseStepState(string(s))
		require.NoError(t, err)
		require.Equal(t, s, got)
		require.Equal(t, s == StepComplete || s == StepCancelled || s == StepResolvedManually, s.IsTerminal(), s)
		require.Equal(t, s == StepComplete || s == StepResolvedManually, s.SatisfiesDependency(), s)
	}
	got, err := ParseStepState("")
	require.NoError(t, err)
	require.Equal(t, StepPending, got, "no transition row reads as pending")
	_, err = ParseStepState("done")
	require.ErrorContains(t, err, `unknown step state "done"`)

	for _, s := range AllTaskStates {
		got, err := ParseTaskState(string(s))
		require.NoError(t, err)
		require.Equal(t, s, got)
		require.Equal(t, s == TaskComplete || s == TaskCancelled || s == TaskResolvedManually, s.IsTerminal(), s)
	}
	gotTask, err := ParseTaskState("")
	require.NoError(t, err)
	require.Equal(t, TaskPending, gotTask)
	_, err = ParseTaskState("enqueued")
	require.ErrorContains(t, err, `unknown task state "enqueued"`)
}

var metadataAt = time.Date(2025, 8, 27, 22, 18, 32, 123456789, time.UTC)

func TestStepEventMetadata_Golden(t *testing.T) {
	t.Parallel()
	result := NewSuccessResult(goldenStep, json.RawMessage(`{"value":4}`), nil, goldenStarted, goldenDone, "worker-1")
	resultJSON, err := json.Marshal(result)
	require.NoError(t, err)

	tests := []struct {
		name  string
		ev    StepEvent
		at    time.Time
		extra map[string]any
		want  string
	}{
		{"enqueue has no data", StepEvent{Type: EventEnqueue}, metadataAt, nil,
			`{"event":"{\"type\":\"Enqueue\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"start with worker id, non-UTC time", StepEvent{Type: EventStart}, metadataAt.In(time.FixedZone("X", -5*3600)),
			map[string]any{"worker_id": "worker-1"},
			`{"event":"{\"type\":\"Start\"}","timestamp":"2025-08-27T22:18:32.123456Z","worker_id":"worker-1"}`},
		{"whole second keeps six digits", StepEvent{Type: EventRetry}, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), nil,
			`{"event":"{\"type\":\"Retry\"}","timestamp":"2025-01-02T03:04:05.000000Z"}`},
		{"cancel", StepEvent{Type: EventCancel}, metadataAt, nil,
			`{"event":"{\"type\":\"Cancel\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"resolve manually with body fields", StepEvent{Type: EventResolveManually}, metadataAt,
			map[string]any{"resolved_by": "ops", "reason": "fixed", "resolution_data": map[string]any{"k": 1}},
			`{"event":"{\"type\":\"ResolveManually\"}","reason":"fixed","resolution_data":{"k":1},"resolved_by":"ops","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"fail carries the message", StepEvent{Type: EventFail, Message: `boom <"x"> & co`, Result: &result}, metadataAt, nil,
			`{"event":"{\"type\":\"Fail\",\"data\":\"boom <\\\"x\\\"> & co\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"complete without result is null", StepEvent{Type: EventComplete}, metadataAt, nil,
			`{"event":"{\"type\":\"Complete\",\"data\":null}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := StepEventMetadata(tc.ev, tc.at, tc.extra)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}

	t.Run("complete carries the full result, type before data", func(t *testing.T) {
		got, err := StepEventMetadata(StepEvent{Type: EventComplete, Result: &result}, metadataAt, nil)
		require.NoError(t, err)
		var outer map[string]string
		require.NoError(t, json.Unmarshal(got, &outer))
		require.Equal(t, `{"type":"Complete","data":`+string(resultJSON)+`}`, outer["event"])
		require.Equal(t, "2025-08-27T22:18:32.123456Z", outer["timestamp"])
	})
}

func TestTaskEventMetadata_Golden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   TaskEvent
		want string
	}{
		{"start", TaskEvent{Type: EventStart}, `{"event":"{\"type\":\"Start\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"complete has no data", TaskEvent{Type: EventComplete}, `{"event":"{\"type\":\"Complete\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"reset", TaskEvent{Type: EventReset}, `{"event":"{\"type\":\"Reset\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
		{"fail carries the message", TaskEvent{Type: EventFail, Message: FinalizationFailMessage},
			`{"event":"{\"type\":\"Fail\",\"data\":\"Steps in error state\"}","timestamp":"2025-08-27T22:18:32.123456Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TaskEventMetadata(tc.ev, metadataAt, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}

func TestTransitionMetadata_Errors(t *testing.T) {
	t.Parallel()
	_, err := TransitionMetadata(EventComplete, func() {}, true, metadataAt, nil)
	require.ErrorContains(t, err, "encode Complete event")
	_, err = TransitionMetadata(EventStart, nil, false, metadataAt, map[string]any{"bad": make(chan int)})
	require.ErrorContains(t, err, "encode transition metadata")
}

func TestInitialTransitionMetadata(t *testing.T) {
	t.Parallel()
	require.JSONEq(t, `{"created_by":"task_initializer","initialization":true}`, string(InitialTransitionMetadata))
}
