package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/ports"
)

// stepOp is one request of a step batch: a claim (*claimReq) or an outcome
// (*outcomeReq). Claims and outcomes share one commit group, so under load a
// worker's claims of its next messages ride in the transaction that
// persists its finished steps' outcomes: one BEGIN, one lock statement and
// one COMMIT (one WAL flush) instead of two of each.
type stepOp interface {
	// stepID is the step whose row the batch locks for the request.
	stepID() uuid.UUID
	// admit resets the request's result and decides whether it runs, given
	// its step's task (owner) when the step row exists (locked). A non-nil
	// error rejects it alone: it becomes the request's error.
	admit(owner uuid.UUID, locked bool) error
	// setErr records the request's error (nil clears it).
	setErr(err error)
}

// runOps runs a commit group's requests in one transaction (opsTx); when
// that fails with more than one request, each is retried in its own
// transaction so one failure cannot fail its neighbours.
func (s *StepStore) runOps(ctx context.Context, ops []stepOp) {
	err := s.opsTx(ctx, ops)
	if err == nil {
		return
	}
	if len(ops) == 1 {
		ops[0].setErr(err)
		return
	}
	for _, op := range ops {
		// An error returned by the transaction replaces the one admit may
		// have recorded; a committed transaction keeps admit's verdict.
		if err := s.opsTx(ctx, []stepOp{op}); err != nil {
			op.setErr(err)
		}
	}
}

// opsTx is BEGIN, one statement locking every step row of the batch
// (lockStepsSQL, workflow_step_uuid order), the admitted claims' rounds of
// claimStepsSQL, the admitted outcomes' rounds of persistOutcomesSQL,
// COMMIT. A round holds at most one request per step (repeats go to the next
// round, in arrival order), so a repeat runs after, and sees, the earlier
// write; a claim and an outcome of one step (a duplicate message of a step
// in flight) are ordered claim first, and each compare-and-set sees the
// other's write as it would across transactions. The statements come from
// stmts.inTx, which never waits for a second pool connection while the
// transaction holds one.
func (s *StepStore) opsTx(ctx context.Context, ops []stepOp) error {
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.stepID().String()
	}
	return withBatchTx(ctx, s.db, func(tx *sqlx.Tx) error {
		lockSt, err := s.stmts.inTx(ctx, tx, lockStepsSQL)
		if err != nil {
			return err
		}
		owners, err := lockSteps(ctx, lockSt, ids)
		if err != nil {
			return err
		}
		var claims []*claimReq
		var outcomes []*outcomeReq
		for _, op := range ops {
			owner, locked := owners[op.stepID()]
			err := op.admit(owner, locked)
			op.setErr(err)
			if err != nil {
				continue
			}
			switch r := op.(type) {
			case *claimReq:
				claims = append(claims, r)
			case *outcomeReq:
				outcomes = append(outcomes, r)
			default:
				return fmt.Errorf("step batch: unknown request %T", op)
			}
		}
		if err := runRounds(ctx, s, tx, claimStepsSQL, claims, claimRound); err != nil {
			return err
		}
		return runRounds(ctx, s, tx, persistOutcomesSQL, outcomes, persistRound)
	})
}

// runRounds runs query once per round of distinct steps of todo; an error
// rolls the whole transaction back.
func runRounds[R stepOp](ctx context.Context, s *StepStore, tx *sqlx.Tx, query string, todo []R,
	round func(context.Context, *sqlx.Stmt, []R) error) error {
	if len(todo) == 0 {
		return nil
	}
	st, err := s.stmts.inTx(ctx, tx, query)
	if err != nil {
		return err
	}
	for len(todo) > 0 {
		var r []R
		r, todo = distinctRound(todo, func(op R) uuid.UUID { return op.stepID() })
		if err := round(ctx, st, r); err != nil {
			return err
		}
	}
	return nil
}

// notLocked is admit's error for a step row that does not exist.
func notLocked(step uuid.UUID) error {
	return fmt.Errorf("lock step %s: %w", step, ports.ErrNotFound)
}

// distinctRound splits reqs into the first occurrence of each key, in order
// (the round), and the repeats, in order (the rest).
func distinctRound[R any](reqs []R, key func(R) uuid.UUID) (round, rest []R) {
	seen := make(map[uuid.UUID]struct{}, len(reqs))
	for _, r := range reqs {
		k := key(r)
		if _, dup := seen[k]; dup {
			rest = append(rest, r)
			continue
		}
		seen[k] = struct{}{}
		round = append(round, r)
	}
	return round, rest
}
