package domain

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDeriveExecutionContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    StepCounts
		want ExecutionContext
	}{
		{"no steps", StepCounts{},
			ExecutionContext{ExecutionStatusWaitingForDependencies, ActionWaitForDependencies, HealthHealthy, 0}},
		{"fresh task with ready roots", StepCounts{Total: 4, Pending: 4, Ready: 1},
			ExecutionContext{ExecutionStatusHasReadySteps, ActionExecuteReadySteps, HealthHealthy, 0}},
		{"ready wins over in progress and permanent failures", StepCounts{Total: 5, InProgress: 1, Failed: 1, PermanentlyFailed: 1, Ready: 1, Pending: 2},
			ExecutionContext{ExecutionStatusHasReadySteps, ActionExecuteReadySteps, HealthRecovering, 0}},
		{"in progress", StepCounts{Total: 3, InProgress: 1, Completed: 1, Pending: 1},
			ExecutionContext{ExecutionStatusProcessing, ActionWaitForCompletion, HealthHealthy, 33.33}},
		{"only enqueued: processing, but waits for dependencies", StepCounts{Total: 3, Enqueued: 1, Completed: 2},
			ExecutionContext{ExecutionStatusProcessing, ActionWaitForDependencies, HealthHealthy, 66.67}},
		{"in progress beats permanent failure", StepCounts{Total: 3, InProgress: 1, Failed: 1, PermanentlyFailed: 1, Pending: 1},
			ExecutionContext{ExecutionStatusProcessing, ActionWaitForCompletion, HealthBlocked, 0}},
		{"blocked by failures", StepCounts{Total: 4, Completed: 1, Failed: 1, PermanentlyFailed: 1, Pending: 2},
			ExecutionContext{ExecutionStatusBlockedByFailures, ActionHandleFailures, HealthBlocked, 25}},
		{"all complete", StepCounts{Total: 7, Completed: 7},
			ExecutionContext{ExecutionStatusAllComplete, ActionFinalizeTask, HealthHealthy, 100}},
		{"retryable failure waiting out backoff", StepCounts{Total: 3, Completed: 1, Failed: 1, Pending: 1},
			ExecutionContext{ExecutionStatusWaitingForDependencies, ActionWaitForDependencies, HealthRecovering, 33.33}},
		{"retryable failure now ready", StepCounts{Total: 2, Completed: 1, Failed: 1, Ready: 1},
			ExecutionContext{ExecutionStatusHasReadySteps, ActionExecuteReadySteps, HealthRecovering, 50}},
		{"rounding to two decimals", StepCounts{Total: 6, Completed: 1, Pending: 5},
			ExecutionContext{ExecutionStatusWaitingForDependencies, ActionWaitForDependencies, HealthHealthy, 16.67}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, DeriveExecutionContext(tc.c))
		})
	}
}

func TestCountSteps(t *testing.T) {
	t.Parallel()
	steps := []StepFacts{
		{State: StepPending, Retryable: true, RetryLimit: 3, Ready: true},
		{State: StepPending, Retryable: true, RetryLimit: 3},
		{State: StepEnqueued, Retryable: true, RetryLimit: 3},
		{State: StepInProgress, Retryable: true, Attempts: 1, RetryLimit: 3},
		{State: StepComplete, Retryable: true, Attempts: 1, RetryLimit: 3},
		{State: StepResolvedManually, Retryable: true, Attempts: 3, RetryLimit: 3},
		{State: StepError, Retryable: true, Attempts: 1, RetryLimit: 3, Ready: true},
		{State: StepError, Retryable: true, Attempts: 3, RetryLimit: 3},
		{State: StepError, Retryable: false, Attempts: 1, RetryLimit: 3},
		{State: StepCancelled, Retryable: true, RetryLimit: 3},
	}
	require.Equal(t, StepCounts{
		Total: 10, Pending: 2, Enqueued: 1, InProgress: 1, Completed: 2, Failed: 3, Ready: 2, PermanentlyFailed: 2,
	}, CountSteps(steps))
}

func TestDecideFinalization(t *testing.T) {
	t.Parallel()
	done := StepFacts{State: StepComplete, Retryable: true, Attempts: 1, RetryLimit: 3}
	resolved := StepFacts{State: StepResolvedManually, Retryable: true, Attempts: 3, RetryLimit: 3}
	exhausted := StepFacts{State: StepError, Retryable: true, Attempts: 3, RetryLimit: 3}
	notRetryable := StepFacts{State: StepError, Retryable: false, Attempts: 1, RetryLimit: 3}
	backingOff := StepFacts{State: StepError, Retryable: true, Attempts: 1, RetryLimit: 3}
	blocked := StepFacts{State: StepPending, Retryable: true, RetryLimit: 3}
	ready := StepFacts{State: StepPending, Retryable: true, RetryLimit: 3, Ready: true}
	enqueued := StepFacts{State: StepEnqueued, Retryable: true, RetryLimit: 3}
	running := StepFacts{State: StepInProgress, Retryable: true, Attempts: 1, RetryLimit: 3}
	cancelled := StepFacts{State: StepCancelled, Retryable: true, RetryLimit: 3}

	tests := []struct {
		name  string
		task  TaskState
		steps []StepFacts
		want  FinalizationAction
	}{
		{"in progress, all done", TaskInProgress, []StepFacts{done, resolved}, FinalizeComplete},
		{"pending, all done (caller starts first)", TaskPending, []StepFacts{done}, FinalizeComplete},
		{"complete task is left alone", TaskComplete, []StepFacts{done}, FinalizeNone},
		{"cancelled task is left alone", TaskCancelled, []StepFacts{exhausted}, FinalizeNone},
		{"resolved task is left alone", TaskResolvedManually, []StepFacts{done}, FinalizeNone},
		{"error task is left alone", TaskError, []StepFacts{done}, FinalizeNone},
		{"no steps", TaskInProgress, nil, FinalizeNone},
		{"exhausted step, dependants blocked", TaskInProgress, []StepFacts{done, exhausted, blocked}, FinalizeFail},
		{"non-retryable step", TaskInProgress, []StepFacts{notRetryable}, FinalizeFail},
		{"permanent failure while another step runs", TaskInProgress, []StepFacts{exhausted, running}, FinalizeNone},
		{"permanent failure while another is enqueued", TaskInProgress, []StepFacts{exhausted, enqueued}, FinalizeNone},
		{"permanent failure while another is ready", TaskInProgress, []StepFacts{exhausted, ready}, FinalizeNone},
		{"permanent failure while another backs off", TaskInProgress, []StepFacts{exhausted, backingOff}, FinalizeNone},
		{"retryable failure only", TaskInProgress, []StepFacts{done, backingOff, blocked}, FinalizeNone},
		{"still working", TaskInProgress, []StepFacts{done, running, blocked}, FinalizeNone},
		{"cancelled step is not done", TaskInProgress, []StepFacts{done, cancelled}, FinalizeNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, DecideFinalization(tc.task, tc.steps))
		})
	}
}
