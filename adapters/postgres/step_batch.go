package postgres

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/ports"
)

// stepBatch is what claims and outcomes share once commitGroup has made a
// batch of them: one transaction that locks every step row of the batch
// (lockStepsSQL, workflow_step_uuid order), admits each request against its
// locked row, and runs the batch statement once per round of distinct steps.
// A round holds at most one request per step (repeats go to the next round,
// in arrival order), so a repeat runs after, and sees, the earlier write.
type stepBatch[R any] struct {
	// query is the set-based statement a round runs.
	query string
	// step is the request's step.
	step func(R) uuid.UUID
	// admit resets the request's result and decides whether it runs, given
	// its step's task (owner) when the step row exists (locked). A non-nil
	// error rejects it alone: it becomes the request's error.
	admit func(r R, owner uuid.UUID, locked bool) error
	// setErr records a request's error (nil clears it).
	setErr func(R, error)
	// round runs query for one round and stores each request's result; an
	// error rolls the whole transaction back.
	round func(ctx context.Context, st *sqlx.Stmt, round []R) error
}

// run runs reqs in one transaction; when that fails with more than one
// request, each is retried in its own transaction so one failure cannot fail
// its neighbours.
func (b stepBatch[R]) run(ctx context.Context, s *StepStore, reqs []R) {
	err := b.tx(ctx, s, reqs)
	if err == nil {
		return
	}
	if len(reqs) == 1 {
		b.setErr(reqs[0], err)
		return
	}
	for _, r := range reqs {
		// An error returned by the transaction replaces the one admit may
		// have recorded; a committed transaction keeps admit's verdict.
		if err := b.tx(ctx, s, []R{r}); err != nil {
			b.setErr(r, err)
		}
	}
}

// tx is BEGIN, the lock, the admitted requests' rounds, COMMIT. The
// statements come from stmts.inTx, which never waits for a second pool
// connection while the transaction holds one.
func (b stepBatch[R]) tx(ctx context.Context, s *StepStore, reqs []R) error {
	ids := make([]string, len(reqs))
	for i, r := range reqs {
		ids[i] = b.step(r).String()
	}
	return WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		lockSt, err := s.stmts.inTx(ctx, tx, lockStepsSQL)
		if err != nil {
			return err
		}
		owners, err := lockSteps(ctx, lockSt, ids)
		if err != nil {
			return err
		}
		todo := make([]R, 0, len(reqs))
		for _, r := range reqs {
			owner, locked := owners[b.step(r)]
			err := b.admit(r, owner, locked)
			b.setErr(r, err)
			if err == nil {
				todo = append(todo, r)
			}
		}
		st, err := s.stmts.inTx(ctx, tx, b.query)
		if err != nil {
			return err
		}
		for len(todo) > 0 {
			var round []R
			round, todo = distinctRound(todo, b.step)
			if err := b.round(ctx, st, round); err != nil {
				return err
			}
		}
		return nil
	})
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
