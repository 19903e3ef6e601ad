package domain

import "fmt"

// NotClaimableError is returned when a claim's compare-and-set fails: the step
// was not pending-with-dependencies-satisfied or enqueued. Current carries the
// state the loser saw so it can re-decide (contract §9.3, D-b).
type NotClaimableError struct {
	StepUUID string
	Current  StepState
	// DependenciesSatisfied is meaningful when Current is pending.
	DependenciesSatisfied bool
}

// Error names the step and the state that made the claim fail.
func (e *NotClaimableError) Error() string {
	return fmt.Sprintf("step %s not claimable in state %s", e.StepUUID, e.Current)
}

// ValidationError names the offending field and why it was rejected.
type ValidationError struct {
	Field  string
	Reason string
}

// Error is "field: reason", the shape validation messages are reported in.
func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }
