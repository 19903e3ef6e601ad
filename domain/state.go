package domain

import (
	"fmt"
	"slices"
)

// StepState is the state of a workflow step: the to_state of its most recent
// transition row (contract §2.11, §3.2). A step with no transition row is pending.
type StepState string

// Step states (contract §3.2).
const (
	StepPending          StepState = "pending"
	StepEnqueued         StepState = "enqueued"
	StepInProgress       StepState = "in_progress"
	StepComplete         StepState = "complete"
	StepError            StepState = "error"
	StepCancelled        StepState = "cancelled"
	StepResolvedManually StepState = "resolved_manually"
)

// AllStepStates lists every step state in contract order.
var AllStepStates = []StepState{StepPending, StepEnqueued, StepInProgress, StepComplete, StepError, StepCancelled, StepResolvedManually}

// IsTerminal reports whether no further transition except ResolveManually can leave the state.
func (s StepState) IsTerminal() bool {
	return s == StepComplete || s == StepCancelled || s == StepResolvedManually
}

// SatisfiesDependency reports whether a parent in this state lets its dependants run.
func (s StepState) SatisfiesDependency() bool {
	return s == StepComplete || s == StepResolvedManually
}

// Valid reports whether s is one of the step states of the contract.
func (s StepState) Valid() bool { return slices.Contains(AllStepStates, s) }

// ParseStepState converts a stored to_state into a StepState; an empty string
// (no transition row) reads as pending.
func ParseStepState(v string) (StepState, error) {
	return parseState(v, StepPending, StepState.Valid, "step")
}

// TaskState is the state of a task (contract §3.1).
type TaskState string

// Task states (contract §3.1).
const (
	TaskPending          TaskState = "pending"
	TaskInProgress       TaskState = "in_progress"
	TaskComplete         TaskState = "complete"
	TaskError            TaskState = "error"
	TaskCancelled        TaskState = "cancelled"
	TaskResolvedManually TaskState = "resolved_manually"
)

// AllTaskStates lists every task state in contract order.
var AllTaskStates = []TaskState{TaskPending, TaskInProgress, TaskComplete, TaskError, TaskCancelled, TaskResolvedManually}

// IsTerminal reports whether the task can no longer make progress.
func (s TaskState) IsTerminal() bool {
	return s == TaskComplete || s == TaskCancelled || s == TaskResolvedManually
}

// Valid reports whether s is one of the task states of the contract.
func (s TaskState) Valid() bool { return slices.Contains(AllTaskStates, s) }

// ParseTaskState converts a stored to_state into a TaskState; an empty string
// (no transition row) reads as pending.
func ParseTaskState(v string) (TaskState, error) {
	return parseState(v, TaskPending, TaskState.Valid, "task")
}

// parseState is the one reading of a stored to_state for both state
// machines: "" (no transition row) is the initial state pending, anything
// valid is itself, anything else is an error naming kind's machine.
func parseState[S ~string](v string, pending S, valid func(S) bool, kind string) (S, error) {
	if v == "" {
		return pending, nil
	}
	s := S(v)
	if !valid(s) {
		return "", fmt.Errorf("unknown %s state %q", kind, v)
	}
	return s, nil
}
