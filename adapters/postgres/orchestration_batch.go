package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

var _ ports.TaskBatchProcessor = (*OrchestrationStore)(nil)

// ProcessTasks implements ports.TaskBatchProcessor: the whole batch in one
// transaction of at most six round trips, BEGIN and COMMIT included, whatever
// its size: lock the tasks (batchLockSQL), read them and their steps, lock
// the ready ones and delete the consumed messages (batchReadSQL), write the
// bookkeeping and finalization transitions (batchFinalizeSQL, only when
// there are any), enqueue (batchEnqueueSQL, only when a step is ready). A
// batch that finalizes some tasks and enqueues for others, with no
// bookkeeping, writes both in one statement (batchFinalizeEnqueueSQL), five
// round trips in all.
// The decisions between the statements are the same Go code per task as for
// a task alone (finalizeLocked's rule, the enqueue of locked ready steps), so
// a task ends exactly as if processed alone.
func (s *OrchestrationStore) ProcessTasks(ctx context.Context, b ports.TaskBatch) (ports.TaskBatchReport, error) {
	var rep ports.TaskBatchReport
	if len(b.Results) == 0 && len(b.Tasks) == 0 {
		return rep, nil
	}
	lockQuery := fmt.Sprintf(batchLockSQL, "")
	if b.SkipLocked {
		lockQuery = fmt.Sprintf(batchLockSQL, " SKIP LOCKED")
	}
	err := withBatchTx(ctx, s.db, func(tx *sqlx.Tx) error {
		// Statements come from stmts.inTx: prepared on the transaction's
		// own connection, never waiting for a second one.
		stmt := func(q string) (*sqlx.Stmt, error) { return s.stmts.inTx(ctx, tx, q) }
		rep = ports.TaskBatchReport{}
		st, err := stmt(lockQuery)
		if err != nil {
			return err
		}
		locked, stepTask, err := s.batchLock(ctx, st, b)
		if err != nil {
			return err
		}
		consumed := batchConsumed(b, locked, stepTask, &rep)
		if len(locked) == 0 {
			return nil
		}
		if st, err = stmt(batchReadSQL); err != nil {
			return err
		}
		snaps, err := s.batchRead(ctx, tx, st, locked, b.Queue, consumed)
		if err != nil {
			return err
		}
		plan, err := planBatch(b, locked, stepTask, snaps, time.Now())
		if err != nil {
			return err
		}
		rep.Finalized, rep.Retries = plan.finalized, plan.retries
		if len(plan.bkSteps) == 0 && len(plan.chainTasks) > 0 && len(plan.enqueue) > 0 {
			if st, err = stmt(batchFinalizeEnqueueSQL); err != nil {
				return err
			}
			rep.Enqueued, err = s.batchFinalizeEnqueue(ctx, tx, st, b.TraceHeaders, plan, snaps)
			return err
		}
		if len(plan.bkSteps) > 0 || len(plan.chainTasks) > 0 {
			if st, err = stmt(batchFinalizeSQL); err != nil {
				return err
			}
			if err := batchFinalize(ctx, st, plan); err != nil {
				return err
			}
		}
		if len(plan.enqueue) == 0 {
			return nil
		}
		if st, err = stmt(batchEnqueueSQL); err != nil {
			return err
		}
		rep.Enqueued, err = s.batchEnqueue(ctx, tx, st, b.TraceHeaders, plan, snaps)
		return err
	})
	var missing *ports.QueueMissingError
	if errors.As(err, &missing) {
		// Nothing was written; what finalization read stays useful to
		// the caller, which creates the queue and runs the batch again.
		return ports.TaskBatchReport{Finalized: rep.Finalized}, fmt.Errorf("process task batch: %w", err)
	}
	if err != nil {
		return ports.TaskBatchReport{}, fmt.Errorf("process task batch: %w", err)
	}
	return rep, nil
}

// batchLock runs batchLockSQL: the locked tasks in task_uuid order and the
// task of every result step that exists.
func (s *OrchestrationStore) batchLock(ctx context.Context, st *sqlx.Stmt, b ports.TaskBatch) ([]uuid.UUID, map[uuid.UUID]uuid.UUID, error) {
	tasks := make([]uuid.UUID, len(b.Tasks))
	for i, t := range b.Tasks {
		tasks[i] = t.TaskUUID
	}
	steps := make([]uuid.UUID, len(b.Results))
	for i, r := range b.Results {
		steps[i] = r.StepUUID
	}
	var rows []struct {
		StepUUID uuid.NullUUID `db:"step_uuid"`
		TaskUUID uuid.UUID     `db:"task_uuid"`
		Locked   bool          `db:"locked"`
	}
	if err := st.SelectContext(ctx, &rows, pq.Array(orchUUIDStrings(tasks)), pq.Array(orchUUIDStrings(steps))); err != nil {
		return nil, nil, fmt.Errorf("lock tasks: %w", err)
	}
	var locked []uuid.UUID
	stepTask := map[uuid.UUID]uuid.UUID{}
	for _, r := range rows {
		if r.Locked {
			locked = append(locked, r.TaskUUID)
		} else if r.StepUUID.Valid {
			stepTask[r.StepUUID.UUID] = r.TaskUUID
		}
	}
	slices.SortFunc(locked, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return locked, stepTask, nil
}

// batchConsumed fills rep's unknown and skipped items and returns the
// messages the batch deletes: those of existing steps and tasks whose task it
// holds. A message of a task skipped under SkipLocked stays for a later try.
func batchConsumed(b ports.TaskBatch, locked []uuid.UUID, stepTask map[uuid.UUID]uuid.UUID, rep *ports.TaskBatchReport) []int64 {
	isLocked := make(map[uuid.UUID]bool, len(locked))
	for _, id := range locked {
		isLocked[id] = true
	}
	var consumed []int64
	skipped := map[uuid.UUID]bool{}
	for i, r := range b.Results {
		task, ok := stepTask[r.StepUUID]
		switch {
		case !ok:
			rep.UnknownResults = append(rep.UnknownResults, i)
		case !isLocked[task]:
			skipped[task] = true
		case r.MsgID != 0:
			consumed = append(consumed, r.MsgID)
		}
	}
	known := map[uuid.UUID]bool{}
	for _, id := range stepTask {
		known[id] = true
	}
	for i, t := range b.Tasks {
		switch {
		case isLocked[t.TaskUUID]:
			if t.MsgID != 0 {
				consumed = append(consumed, t.MsgID)
			}
		case b.SkipLocked:
			// Missing and locked elsewhere look alike here; a skipped
			// task that does not exist has nothing to do anyway.
			skipped[t.TaskUUID] = true
		default:
			rep.UnknownTasks = append(rep.UnknownTasks, i)
		}
	}
	for id := range skipped {
		rep.Skipped = append(rep.Skipped, id)
	}
	slices.SortFunc(rep.Skipped, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return consumed
}

// batchRead runs batchReadSQL (st, bound to tx) (and batchTaskStatesSQL for locked tasks
// without steps) and returns a snapshot per locked task.
func (s *OrchestrationStore) batchRead(ctx context.Context, tx *sqlx.Tx, st *sqlx.Stmt, locked []uuid.UUID, queue string, consumed []int64) (map[uuid.UUID]*taskSnapshot, error) {
	if consumed == nil {
		consumed = []int64{}
	}
	rows, err := scanBatchRead(ctx, st, pq.Array(orchUUIDStrings(locked)), queue, pq.Array(consumed))
	if err != nil {
		return nil, fmt.Errorf("read tasks and steps: %w", err)
	}
	if len(rows) == 0 && len(consumed) > 0 {
		// Only tasks without steps: the read returned no row, so its
		// delete never ran.
		if _, err := tx.ExecContext(ctx, `SELECT pgmq.delete($1::text, $2::bigint[])`, queue, pq.Array(consumed)); err != nil {
			return nil, fmt.Errorf("delete consumed messages: %w", err)
		}
	}
	snaps := make(map[uuid.UUID]*taskSnapshot, len(locked))
	for _, r := range rows {
		snap := snaps[r.TaskUUID]
		if snap == nil {
			state, err := domain.ParseTaskState(r.TaskState.String)
			if err != nil {
				return nil, fmt.Errorf("read state of task %s: %w", r.TaskUUID, err)
			}
			snap = &taskSnapshot{state: state, hasState: r.TaskState.Valid, namespace: r.Namespace.String,
				taskName: r.TaskName.String, createdAt: r.TaskCreatedAt.Time}
			snaps[r.TaskUUID] = snap
		}
		v, err := r.view()
		if err != nil {
			return nil, err
		}
		snap.steps = append(snap.steps, v)
		if r.Locked {
			snap.locked = append(snap.locked, r.WorkflowStepUUID)
		}
	}
	var bare []uuid.UUID
	for _, id := range locked {
		if snaps[id] == nil {
			bare = append(bare, id)
		}
	}
	if len(bare) == 0 {
		return snaps, nil
	}
	var states []struct {
		TaskUUID  uuid.UUID      `db:"task_uuid"`
		TaskState sql.NullString `db:"task_state"`
	}
	if err := tx.SelectContext(ctx, &states, batchTaskStatesSQL, pq.Array(orchUUIDStrings(bare))); err != nil {
		return nil, fmt.Errorf("read state of tasks without steps: %w", err)
	}
	for _, r := range states {
		state, err := domain.ParseTaskState(r.TaskState.String)
		if err != nil {
			return nil, fmt.Errorf("read state of task %s: %w", r.TaskUUID, err)
		}
		snaps[r.TaskUUID] = &taskSnapshot{state: state, hasState: r.TaskState.Valid}
	}
	return snaps, nil
}

// scanBatchRead runs batchReadSQL and scans its rows by position: the
// statement returns a row per step of every task of the batch, and sqlx's
// reflective mapping of each row's 23 columns cost more Go CPU than the
// rest of the batch's decisions.
func scanBatchRead(ctx context.Context, st *sqlx.Stmt, args ...any) ([]taskStepsRow, error) {
	rs, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rs.Close() }()
	var out []taskStepsRow
	var deleted sql.NullInt64
	for rs.Next() {
		var r taskStepsRow
		var results []byte
		if err := rs.Scan(&r.TaskState, &r.Namespace, &r.TaskName, &r.TaskCreatedAt, &r.Locked, &deleted,
			&r.WorkflowStepUUID, &r.TaskUUID, &r.NamedStepUUID, &r.Name, &r.CurrentState, &r.Attempts, &r.RetryLimit,
			&r.Retryable, &r.BackoffRequestSeconds, &r.LastAttemptedAt, &r.CreatedAt, &r.UpdatedAt, &r.ProcessedAt,
			&results, &r.LastFailureAt, &r.TotalParents, &r.CompletedParents, &r.ReadyForExecution); err != nil {
			return nil, err
		}
		if results != nil {
			raw := json.RawMessage(results)
			r.Results = &raw
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// batchPlan is what a batch writes, decided in Go from its snapshots.
type batchPlan struct {
	// Bookkeeping of result steps (batchFinalizeSQL $1–$3).
	bkSteps        []string
	bkBackoff      []sql.NullInt64 // NULL: keep the current backoff
	bkNotRetryable []bool
	// Finalization chains (batchFinalizeSQL $4–$11).
	chainTasks    []string
	chainComplete []bool
	rowTask       []string
	rowTo         []string
	rowFrom       []string
	rowMeta       []string
	rowOrd        []int64
	rowLast       []bool
	finalized     []ports.FinalizationReport
	// enqueue are the tasks that stay active and have locked ready steps.
	enqueue []uuid.UUID
	// retries are the active tasks with a step waiting out its backoff.
	retries []ports.ScheduledRetry
}

// planBatch decides the bookkeeping of each result step, then finalization
// (§10.4) of each locked task on its steps as the bookkeeping leaves them,
// and which tasks enqueue their locked ready steps.
func planBatch(b ports.TaskBatch, locked []uuid.UUID, stepTask map[uuid.UUID]uuid.UUID, snaps map[uuid.UUID]*taskSnapshot, now time.Time) (*batchPlan, error) {
	p := &batchPlan{}
	backoffs := map[uuid.UUID]int{}
	if b.Bookkeeping != nil {
		seen := map[uuid.UUID]bool{}
		for _, r := range b.Results {
			task, ok := stepTask[r.StepUUID]
			snap := snaps[task]
			if !ok || snap == nil || seen[r.StepUUID] {
				continue
			}
			seen[r.StepUUID] = true
			i := slices.IndexFunc(snap.steps, func(v ports.StepView) bool { return v.WorkflowStepUUID == r.StepUUID })
			if i < 0 {
				continue
			}
			v := &snap.steps[i]
			bk := b.Bookkeeping(ports.StepResultView{TaskUUID: task, StepUUID: r.StepUUID, State: v.CurrentState,
				Retryable: v.Retryable, Attempts: v.Attempts, RetryLimit: v.RetryLimit, Results: v.Results})
			if v.CurrentState != domain.StepError || (bk.BackoffSeconds == nil && !bk.NotRetryable) {
				continue
			}
			backoff := sql.NullInt64{}
			if bk.BackoffSeconds != nil {
				backoff = sql.NullInt64{Int64: int64(*bk.BackoffSeconds), Valid: true}
			}
			if bk.NotRetryable {
				v.Retryable = false
			}
			if bk.BackoffSeconds != nil {
				backoffs[r.StepUUID] = *bk.BackoffSeconds
			}
			p.bkSteps = append(p.bkSteps, r.StepUUID.String())
			p.bkBackoff = append(p.bkBackoff, backoff)
			p.bkNotRetryable = append(p.bkNotRetryable, bk.NotRetryable)
		}
	}
	for _, id := range locked {
		snap := snaps[id]
		if snap == nil {
			continue // deleted between lock and read: nothing to do
		}
		fin := ports.FinalizationReport{TaskUUID: id, From: snap.state, To: snap.state,
			Namespace: snap.namespace, TaskName: snap.taskName, CreatedAt: snap.createdAt}
		events, allDone := finalizationEvents(snap)
		if len(events) > 0 {
			to, err := p.addChain(id, snap.state, events, allDone, now)
			if err != nil {
				return nil, err
			}
			fin.To = to
		} else if snap.state == domain.TaskPending || snap.state == domain.TaskInProgress {
			if len(snap.locked) > 0 {
				p.enqueue = append(p.enqueue, id)
			}
			if at, ok := nextRetry(snap.steps, backoffs); ok {
				p.retries = append(p.retries, ports.ScheduledRetry{TaskUUID: id, At: at})
			}
		}
		p.finalized = append(p.finalized, fin)
	}
	return p, nil
}

// nextRetry is the earliest time one of steps in error, retryable with
// attempts left but not ready yet, passes both R7 (last_attempted_at +
// backoff_request_seconds, with the backoff the batch just recorded) and R8
// (last failure + LEAST(2^attempts, 30) s).
func nextRetry(steps []ports.StepView, backoffs map[uuid.UUID]int) (time.Time, bool) {
	var first time.Time
	found := false
	for _, v := range steps {
		if v.CurrentState != domain.StepError || !v.Retryable || v.Attempts >= v.RetryLimit || v.ReadyForExecution {
			continue
		}
		var at time.Time
		backoff, ok := backoffs[v.WorkflowStepUUID]
		if !ok && v.BackoffRequestSeconds != nil {
			backoff, ok = *v.BackoffRequestSeconds, true
		}
		if ok && v.LastAttemptedAt != nil {
			at = v.LastAttemptedAt.Add(time.Duration(backoff) * time.Second)
		}
		if v.LastFailureAt != nil {
			floorAttempts := v.Attempts
			if floorAttempts == 0 {
				floorAttempts = 1
			}
			if r8 := v.LastFailureAt.Add(orchR8Floor(floorAttempts)); r8.After(at) {
				at = r8
			}
		}
		if at.IsZero() {
			continue
		}
		if !found || at.Before(first) {
			first, found = at, true
		}
	}
	return first, found
}

// finalizationEvents is the decision of §10.4 for a locked task: the task
// events to fire (none, Start+Complete, Complete, or Fail) and whether every
// step is done (the Complete guard).
func finalizationEvents(snap *taskSnapshot) ([]domain.TaskEvent, bool) {
	facts := make([]domain.StepFacts, len(snap.steps))
	allDone := true
	for i, st := range snap.steps {
		facts[i] = st.Facts()
		allDone = allDone && st.CurrentState.SatisfiesDependency()
	}
	switch domain.DecideFinalization(snap.state, facts) {
	case domain.FinalizeComplete:
		if snap.state == domain.TaskPending {
			return []domain.TaskEvent{{Type: domain.EventStart}, {Type: domain.EventComplete}}, allDone
		}
		return []domain.TaskEvent{{Type: domain.EventComplete}}, allDone
	case domain.FinalizeFail:
		return []domain.TaskEvent{{Type: domain.EventFail, Message: domain.FinalizationFailMessage}}, allDone
	default:
		return nil, allDone
	}
}

// addChain validates events against the task state machine, starting from
// from, and adds their rows to the plan; it returns the final state.
func (p *batchPlan) addChain(task uuid.UUID, from domain.TaskState, events []domain.TaskEvent, allDone bool, now time.Time) (domain.TaskState, error) {
	state := from
	for i, ev := range events {
		to, err := domain.NextTaskState(state, ev.Type, domain.TaskGuard{AllStepsComplete: allDone})
		if err != nil {
			return from, fmt.Errorf("transition task %s: %w", task, err)
		}
		meta, err := domain.TaskEventMetadata(ev, now, nil)
		if err != nil {
			return from, fmt.Errorf("transition task %s: %w", task, err)
		}
		p.rowTask = append(p.rowTask, task.String())
		p.rowTo = append(p.rowTo, string(to))
		p.rowFrom = append(p.rowFrom, string(state))
		p.rowMeta = append(p.rowMeta, string(meta))
		p.rowOrd = append(p.rowOrd, int64(i+1))
		p.rowLast = append(p.rowLast, i == len(events)-1)
		state = to
	}
	p.chainTasks = append(p.chainTasks, task.String())
	p.chainComplete = append(p.chainComplete, state == domain.TaskComplete)
	return state, nil
}

// finalizeCounts are what batchFinalizeSQL (and batchFinalizeEnqueueSQL)
// report having written.
type finalizeCounts struct {
	Bookkept int `db:"bookkept"`
	Flipped  int `db:"flipped"`
	Inserted int `db:"inserted"`
	Updated  int `db:"updated"`
}

// finalizeArgs are the parameters $1–$11 of batchFinalizeSQL.
func (p *batchPlan) finalizeArgs() []any {
	return []any{
		pq.Array(nonNilStrings(p.bkSteps)), pq.Array(p.bkBackoff), pq.Array(nonNilBools(p.bkNotRetryable)),
		pq.Array(nonNilStrings(p.chainTasks)), pq.Array(nonNilBools(p.chainComplete)),
		pq.Array(nonNilStrings(p.rowTask)), pq.Array(nonNilStrings(p.rowTo)), pq.Array(nonNilStrings(p.rowFrom)),
		pq.Array(nonNilStrings(p.rowMeta)), pq.Array(nonNilInts(p.rowOrd)), pq.Array(nonNilBools(p.rowLast)),
	}
}

// batchFinalize runs batchFinalizeSQL (st) and checks that every row it
// meant to write was written.
func batchFinalize(ctx context.Context, st *sqlx.Stmt, p *batchPlan) error {
	var n finalizeCounts
	if err := st.GetContext(ctx, &n, p.finalizeArgs()...); err != nil {
		return fmt.Errorf("write bookkeeping and finalization: %w", err)
	}
	return p.checkFinalized(n)
}

// checkFinalized checks that every transition and task update the plan
// meant to write was written.
func (p *batchPlan) checkFinalized(n finalizeCounts) error {
	// A bookkeeping row may legitimately match nothing (the step left error
	// meanwhile cannot happen under the task lock, but a missing row must
	// not fail the batch); the transitions must all be written.
	if n.Inserted != len(p.rowTask) || n.Updated != len(p.chainTasks) || n.Flipped > len(p.chainTasks) {
		return fmt.Errorf("write finalization: wrote %d of %d transitions, updated %d of %d tasks (flipped %d)",
			n.Inserted, len(p.rowTask), n.Updated, len(p.chainTasks), n.Flipped)
	}
	return nil
}

// enqueueRow is a row of batchEnqueueSQL: a step enqueued, with the counts
// of everything the statement wrote.
type enqueueRow struct {
	ID          uuid.UUID `db:"id"`
	TaskUUID    uuid.UUID `db:"task_uuid"`
	State       string    `db:"state"`
	Transitions int       `db:"transitions"`
	Touched     int       `db:"touched"`
	Sent        int       `db:"sent"`
	Started     int       `db:"started"`
	TaskTouched int       `db:"task_touched"`
}

// batchEnqueue runs batchEnqueueSQL (st, bound to tx) for the locked ready steps of the plan's
// active tasks and reports, per task, what it did. A namespace queue not in
// pgmq.meta is a *ports.QueueMissingError before anything is sent.
func (s *OrchestrationStore) batchEnqueue(ctx context.Context, tx *sqlx.Tx, st *sqlx.Stmt, traceHeaders func(uuid.UUID) json.RawMessage,
	p *batchPlan, snaps map[uuid.UUID]*taskSnapshot) ([]ports.EnqueueReport, error) {
	args, err := s.enqueueArgs(ctx, tx, traceHeaders, p, snaps)
	if err != nil {
		return nil, err
	}
	var rows []enqueueRow
	if err := st.SelectContext(ctx, &rows, args...); err != nil {
		return nil, fmt.Errorf("enqueue ready steps: %w", err)
	}
	return enqueueReports(rows, snaps)
}

// batchFinalizeEnqueue runs batchFinalizeEnqueueSQL (st, bound to tx): the
// work of batchFinalize and batchEnqueue in one round trip, for a plan with
// finalization chains, steps to enqueue and no bookkeeping.
func (s *OrchestrationStore) batchFinalizeEnqueue(ctx context.Context, tx *sqlx.Tx, st *sqlx.Stmt, traceHeaders func(uuid.UUID) json.RawMessage,
	p *batchPlan, snaps map[uuid.UUID]*taskSnapshot) ([]ports.EnqueueReport, error) {
	args, err := s.enqueueArgs(ctx, tx, traceHeaders, p, snaps)
	if err != nil {
		return nil, err
	}
	var rows []struct {
		finalizeCounts
		ID          uuid.NullUUID  `db:"id"`
		TaskUUID    uuid.NullUUID  `db:"task_uuid"`
		State       sql.NullString `db:"state"`
		Transitions int            `db:"transitions"`
		Touched     int            `db:"touched"`
		Sent        int            `db:"sent"`
		Started     int            `db:"started"`
		TaskTouched int            `db:"task_touched"`
	}
	if err := st.SelectContext(ctx, &rows, append(p.finalizeArgs(), args...)...); err != nil {
		return nil, fmt.Errorf("finalize and enqueue: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("finalize and enqueue: the statement returned no row")
	}
	if err := p.checkFinalized(rows[0].finalizeCounts); err != nil {
		return nil, err
	}
	enq := make([]enqueueRow, 0, len(rows))
	for _, r := range rows {
		if r.ID.Valid {
			enq = append(enq, enqueueRow{ID: r.ID.UUID, TaskUUID: r.TaskUUID.UUID, State: r.State.String, Transitions: r.Transitions,
				Touched: r.Touched, Sent: r.Sent, Started: r.Started, TaskTouched: r.TaskTouched})
		}
	}
	return enqueueReports(enq, snaps)
}

// enqueueArgs are the parameters $1–$9 of batchEnqueueSQL for the locked
// ready steps of the plan's active tasks. A namespace queue not in
// pgmq.meta is a *ports.QueueMissingError.
func (s *OrchestrationStore) enqueueArgs(ctx context.Context, tx *sqlx.Tx, traceHeaders func(uuid.UUID) json.RawMessage,
	p *batchPlan, snaps map[uuid.UUID]*taskSnapshot) ([]any, error) {
	var steps, tasks, queues, pending []string
	hdrTasks, hdrs := []string{}, []string{}
	for _, id := range p.enqueue {
		snap := snaps[id]
		queue := domain.QueueName(snap.namespace)
		if err := s.ensureQueueKnown(ctx, tx, queue); err != nil {
			return nil, err
		}
		tasks = append(tasks, id.String())
		queues = append(queues, queue)
		if traceHeaders != nil && len(snap.locked) > 0 {
			if h := traceHeaders(id); h != nil {
				hdrTasks, hdrs = append(hdrTasks, id.String()), append(hdrs, string(h))
			}
		}
		if snap.state == domain.TaskPending {
			pending = append(pending, id.String())
		}
		for _, step := range snap.locked {
			steps = append(steps, step.String())
		}
	}
	meta, err := enqueueMetadata(time.Now())
	if err != nil {
		return nil, err
	}
	return []any{pq.Array(steps), pq.Array(tasks), pq.Array(queues),
		meta.retry, meta.enqueue, meta.start, pq.Array(nonNilStrings(pending)), pq.Array(hdrTasks), pq.Array(hdrs)}, nil
}

// enqueueReports turns the rows of the enqueue into a report per task and
// checks that everything the steps enqueued needed was written.
func enqueueReports(rows []enqueueRow, snaps map[uuid.UUID]*taskSnapshot) ([]ports.EnqueueReport, error) {
	byTask := map[uuid.UUID]*ports.EnqueueReport{}
	var order []uuid.UUID
	retried := 0
	for _, r := range rows {
		rep := byTask[r.TaskUUID]
		if rep == nil {
			rep = &ports.EnqueueReport{TaskUUID: r.TaskUUID, Namespace: snaps[r.TaskUUID].namespace,
				TaskStarted: snaps[r.TaskUUID].state == domain.TaskPending}
			byTask[r.TaskUUID] = rep
			order = append(order, r.TaskUUID)
		}
		rep.StepsEnqueued++
		es := ports.EnqueuedStep{StepUUID: r.ID, Retry: r.State == string(domain.StepError)}
		if snap := snaps[r.TaskUUID]; snap != nil {
			if i := slices.IndexFunc(snap.steps, func(v ports.StepView) bool { return v.WorkflowStepUUID == r.ID }); i >= 0 {
				es.Name, es.Attempts = snap.steps[i].Name, snap.steps[i].Attempts
			}
		}
		rep.Steps = append(rep.Steps, es)
		if es.Retry {
			rep.StepsRetried++
			retried++
		}
	}
	if len(rows) > 0 {
		r, started := rows[0], 0
		for _, rep := range byTask {
			if rep.TaskStarted {
				started++
			}
		}
		if r.Transitions != len(rows)+retried || r.Touched != len(rows) || r.Sent != len(rows) ||
			r.Started != started || r.TaskTouched != started {
			return nil, fmt.Errorf("enqueue ready steps: %d steps ready but %d transitions, %d step updates, %d messages, %d task starts (%d touched) written for %d starting tasks",
				len(rows), r.Transitions, r.Touched, r.Sent, r.Started, r.TaskTouched, started)
		}
	}
	out := make([]ports.EnqueueReport, len(order))
	for i, id := range order {
		out[i] = *byTask[id]
	}
	return out, nil
}

// enqueueMeta is the transition metadata the enqueue writes.
type enqueueMeta struct{ retry, enqueue, start string }

func enqueueMetadata(now time.Time) (enqueueMeta, error) {
	retry, err := domain.StepEventMetadata(domain.StepEvent{Type: domain.EventRetry}, now, nil)
	if err != nil {
		return enqueueMeta{}, fmt.Errorf("encode Retry metadata: %w", err)
	}
	enqueue, err := domain.StepEventMetadata(domain.StepEvent{Type: domain.EventEnqueue}, now, nil)
	if err != nil {
		return enqueueMeta{}, fmt.Errorf("encode Enqueue metadata: %w", err)
	}
	start, err := domain.TaskEventMetadata(domain.TaskEvent{Type: domain.EventStart}, now, nil)
	if err != nil {
		return enqueueMeta{}, fmt.Errorf("encode Start metadata: %w", err)
	}
	return enqueueMeta{retry: string(retry), enqueue: string(enqueue), start: string(start)}, nil
}

// nonNil* keep empty arrays non-NULL: unnest(NULL) and ANY(NULL) behave like
// empty arrays here, but an explicit '{}' keeps the statements' intent plain.
func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilBools(s []bool) []bool {
	if s == nil {
		return []bool{}
	}
	return s
}

func nonNilInts(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}
