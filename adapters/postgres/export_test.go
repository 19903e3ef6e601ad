package postgres

import (
	"context"
	"sync"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/tasker-systems/tasker-go/ports"
)

// BatchClaim is one claim of ClaimBatchForTest; Task nil claims any task.
type BatchClaim struct {
	Step uuid.UUID
	Task *uuid.UUID
	NS   *string
	Meta string // transition metadata; "" = {"worker_id": workerID}
}

// ClaimBatchForTest runs claims as one group-commit batch (what concurrent
// claims share), so tests can pin a batch's contents instead of hoping
// goroutines coincide.
func (s *StepStore) ClaimBatchForTest(ctx context.Context, claims []BatchClaim, workerID string) ([]ports.StepSnapshot, []bool, []error) {
	reqs := make([]*claimReq, len(claims))
	for i, c := range claims {
		reqs[i] = &claimReq{step: c.Step, meta: `{"worker_id":"` + workerID + `"}`, task: c.Task, ns: c.NS}
		if c.Meta != "" {
			reqs[i].meta = c.Meta
		}
	}
	ops := make([]stepOp, len(reqs))
	for i, r := range reqs {
		ops[i] = r
	}
	s.runOps(ctx, ops)
	snaps, claimed, errs := make([]ports.StepSnapshot, len(reqs)), make([]bool, len(reqs)), make([]error, len(reqs))
	for i, r := range reqs {
		if errs[i] = r.err; errs[i] == nil {
			snaps[i], errs[i] = r.row.snapshot()
			claimed[i] = r.row.Claimed
		}
	}
	return snaps, claimed, errs
}

// PersistBatchForTest runs outcomes as one group-commit batch.
func (s *StepStore) PersistBatchForTest(ctx context.Context, outcomes []ports.StepOutcome) ([]bool, []error) {
	reqs := make([]*outcomeReq, len(outcomes))
	persisted, errs := make([]bool, len(outcomes)), make([]error, len(outcomes))
	for i, o := range outcomes {
		r, err := newOutcomeReq(o)
		if err != nil {
			panic(err) // test input must be valid
		}
		reqs[i] = r
	}
	ops := make([]stepOp, len(reqs))
	for i, r := range reqs {
		ops[i] = r
	}
	s.runOps(ctx, ops)
	for i, r := range reqs {
		persisted[i], errs[i] = r.persisted, r.err
	}
	return persisted, errs
}

// PrepareConcurrentlyForTest makes n concurrent first uses of one statement
// on a fresh statement cache and returns how many distinct statements they
// got back.
func PrepareConcurrentlyForTest(ctx context.Context, db *sqlx.DB, query string, n int) (int, error) {
	c := newStmtCache(db)
	var mu sync.Mutex
	got := map[*sqlx.Stmt]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			st, err := c.pooled(ctx, query)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			got[st] = true
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		return 0, err
	}
	for st := range got {
		_ = st.Close()
	}
	return len(got), nil
}

// StmtCacheForTest exposes a fresh statement cache to the external tests.
type StmtCacheForTest struct{ c *stmtCache }

// NewStmtCacheForTest returns an empty statement cache over db.
func NewStmtCacheForTest(db *sqlx.DB) StmtCacheForTest { return StmtCacheForTest{newStmtCache(db)} }

// InTx is stmtCache.inTx.
func (t StmtCacheForTest) InTx(ctx context.Context, tx *sqlx.Tx, query string) (*sqlx.Stmt, error) {
	return t.c.inTx(ctx, tx, query)
}

// PoolPrepared reports whether the pool-level statement of query exists.
func (t StmtCacheForTest) PoolPrepared(query string) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, ok := t.c.m[query]
	return ok
}

// Close closes the pool-level statements.
func (t StmtCacheForTest) Close() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for _, st := range t.c.m {
		_ = st.Close()
	}
}

// MixedBatchForTest runs claims and outcomes as one group-commit batch, the
// way a worker's next claims share the transaction of its outcomes.
func (s *StepStore) MixedBatchForTest(ctx context.Context, claims []BatchClaim, outcomes []ports.StepOutcome, workerID string) (claimed []bool, claimErrs []error, persisted []bool, outcomeErrs []error) {
	var ops []stepOp
	creqs := make([]*claimReq, len(claims))
	for i, c := range claims {
		creqs[i] = &claimReq{step: c.Step, meta: `{"worker_id":"` + workerID + `"}`, task: c.Task, ns: c.NS}
		ops = append(ops, creqs[i])
	}
	oreqs := make([]*outcomeReq, len(outcomes))
	for i, o := range outcomes {
		r, err := newOutcomeReq(o)
		if err != nil {
			panic(err) // test input must be valid
		}
		oreqs[i] = r
		ops = append(ops, r)
	}
	s.runOps(ctx, ops)
	for _, r := range creqs {
		claimed, claimErrs = append(claimed, r.row.Claimed), append(claimErrs, r.err)
	}
	for _, r := range oreqs {
		persisted, outcomeErrs = append(persisted, r.persisted), append(outcomeErrs, r.err)
	}
	return claimed, claimErrs, persisted, outcomeErrs
}
