package ports

import "context"

// Leadership elects the one orchestration instance that consumes the
// orchestration queues and runs the enqueue sweep while the others stand by.
// Instances that share a database and consume the same queues at once halve
// each other's batches, double the commits and wait on each other's task
// locks; one consumer does the same work in fewer, larger transactions.
//
// It is a performance optimisation, never a correctness mechanism: two
// instances that both believe they lead (for a poll interval after a
// failover, or when an election fails) stay correct, as they are without it.
type Leadership interface {
	// TryLead takes leadership when no instance holds it, or confirms that
	// this instance still holds it, and reports whether this instance leads.
	// When it cannot tell (database unreachable, any error) it returns true
	// with the error: an instance that cannot elect consumes as if alone
	// rather than stall.
	TryLead(ctx context.Context) (bool, error)
	// Release gives leadership up (at shutdown), so that a standby takes
	// over at its next attempt instead of waiting for this session to end.
	Release(ctx context.Context) error
}
