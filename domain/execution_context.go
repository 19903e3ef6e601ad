package domain

import "math"

// Execution status values of the task execution context (contract §2.11).
const (
	ExecutionStatusHasReadySteps          = "has_ready_steps"
	ExecutionStatusProcessing             = "processing"
	ExecutionStatusBlockedByFailures      = "blocked_by_failures"
	ExecutionStatusAllComplete            = "all_complete"
	ExecutionStatusWaitingForDependencies = "waiting_for_dependencies"
)

// Recommended action values of the task execution context (contract §2.11).
const (
	ActionExecuteReadySteps   = "execute_ready_steps"
	ActionWaitForCompletion   = "wait_for_completion"
	ActionHandleFailures      = "handle_failures"
	ActionFinalizeTask        = "finalize_task"
	ActionWaitForDependencies = "wait_for_dependencies"
)

// Health status values of the task execution context (contract §2.11).
const (
	HealthHealthy    = "healthy"
	HealthRecovering = "recovering"
	HealthBlocked    = "blocked"
)

// StepCounts are the per-task step counts by current state (contract §2.11).
// Completed counts complete and resolved_manually; Failed counts error;
// PermanentlyFailed counts error steps that may not run again (D-e).
type StepCounts struct {
	Total             int64
	Pending           int64
	Enqueued          int64
	InProgress        int64
	Completed         int64
	Failed            int64
	Ready             int64
	PermanentlyFailed int64
}

// ExecutionContext is the derived summary the API reports for a task
// (contract §2.11, §7.3).
type ExecutionContext struct {
	ExecutionStatus      string  `json:"execution_status"`
	RecommendedAction    string  `json:"recommended_action"`
	HealthStatus         string  `json:"health_status"`
	CompletionPercentage float64 `json:"completion_percentage"`
}

// DeriveExecutionContext applies the first-match tables of contract §2.11.
// Note that execution_status counts enqueued steps as processing while
// recommended_action only waits for in_progress ones, as the contract says.
func DeriveExecutionContext(c StepCounts) ExecutionContext {
	allComplete := c.Total > 0 && c.Completed == c.Total
	var ec ExecutionContext
	switch {
	case c.Ready > 0:
		ec.ExecutionStatus = ExecutionStatusHasReadySteps
	case c.InProgress+c.Enqueued > 0:
		ec.ExecutionStatus = ExecutionStatusProcessing
	case c.PermanentlyFailed > 0:
		ec.ExecutionStatus = ExecutionStatusBlockedByFailures
	case allComplete:
		ec.ExecutionStatus = ExecutionStatusAllComplete
	default:
		ec.ExecutionStatus = ExecutionStatusWaitingForDependencies
	}
	switch {
	case c.Ready > 0:
		ec.RecommendedAction = ActionExecuteReadySteps
	case c.InProgress > 0:
		ec.RecommendedAction = ActionWaitForCompletion
	case c.PermanentlyFailed > 0:
		ec.RecommendedAction = ActionHandleFailures
	case allComplete:
		ec.RecommendedAction = ActionFinalizeTask
	default:
		ec.RecommendedAction = ActionWaitForDependencies
	}
	switch {
	case c.Failed == 0:
		ec.HealthStatus = HealthHealthy
	case c.Ready > 0:
		ec.HealthStatus = HealthRecovering
	case c.PermanentlyFailed > 0:
		ec.HealthStatus = HealthBlocked
	default:
		ec.HealthStatus = HealthRecovering
	}
	if c.Total > 0 {
		ec.CompletionPercentage = math.Round(float64(c.Completed)/float64(c.Total)*100*100) / 100
	}
	return ec
}

// StepFacts is what finalization and the step counts need to know about one
// step. Attempts and RetryLimit are the COALESCEd column values (NULL attempts
// reads as 0, NULL retry_limit as 3); Ready is the step's readiness (§2.11 R1–R8).
type StepFacts struct {
	State      StepState
	Retryable  bool
	Attempts   int
	RetryLimit int
	Ready      bool
}

// PermanentlyFailed reports an error step that may not run again: not
// retryable, or out of attempts (contract §2.11, D-e).
func (s StepFacts) PermanentlyFailed() bool {
	return s.State == StepError && (!s.Retryable || s.Attempts >= s.RetryLimit)
}

// Progressing reports a step that can still move the task forward (contract
// §10.4): ready, enqueued or in_progress, or in error and retryable with
// attempts left (waiting out its backoff). Pending steps blocked behind a
// permanent failure are not progressing.
func (s StepFacts) Progressing() bool {
	if s.Ready || s.State == StepEnqueued || s.State == StepInProgress {
		return true
	}
	return s.State == StepError && s.Retryable && s.Attempts < s.RetryLimit
}

// CountSteps builds the §2.11 counts from per-step facts, for callers that
// load steps rather than aggregate in SQL.
func CountSteps(steps []StepFacts) StepCounts {
	c := StepCounts{Total: int64(len(steps))}
	for _, s := range steps {
		switch s.State {
		case StepPending:
			c.Pending++
		case StepEnqueued:
			c.Enqueued++
		case StepInProgress:
			c.InProgress++
		case StepComplete, StepResolvedManually:
			c.Completed++
		case StepError:
			c.Failed++
		}
		if s.Ready {
			c.Ready++
		}
		if s.PermanentlyFailed() {
			c.PermanentlyFailed++
		}
	}
	return c
}

// FinalizationAction is the outcome of finalization evaluation (contract §10.4).
type FinalizationAction string

// Finalization outcomes.
const (
	// FinalizeNone: leave the task alone; the enqueue cycle continues.
	FinalizeNone FinalizationAction = "none"
	// FinalizeComplete: every step is done. The caller fires task Start first
	// when the task is still pending, then Complete (D-e).
	FinalizeComplete FinalizationAction = "complete"
	// FinalizeFail: some step failed permanently and nothing can progress; the
	// caller fires task Fail(FinalizationFailMessage).
	FinalizeFail FinalizationAction = "fail"
)

// FinalizationFailMessage is the Fail message of a task moved to error by
// finalization (contract §10.4).
const FinalizationFailMessage = "Steps in error state"

// DecideFinalization is the pure decision of contract §10.4, first match wins:
// a terminal or error task → none; every step complete or resolved_manually →
// complete; at least one permanently failed step and none progressing → fail;
// otherwise none. A task without steps is left alone (none): task creation
// never makes one (D-t), so there is nothing to finalize. The caller holds the
// task row lock while it reads the facts and applies the action.
func DecideFinalization(taskState TaskState, steps []StepFacts) FinalizationAction {
	if taskState.IsTerminal() || taskState == TaskError || len(steps) == 0 {
		return FinalizeNone
	}
	allDone, anyPermanent, anyProgressing := true, false, false
	for _, s := range steps {
		if !s.State.SatisfiesDependency() {
			allDone = false
		}
		if s.PermanentlyFailed() {
			anyPermanent = true
		}
		if s.Progressing() {
			anyProgressing = true
		}
	}
	switch {
	case allDone:
		return FinalizeComplete
	case anyPermanent && !anyProgressing:
		return FinalizeFail
	}
	return FinalizeNone
}
