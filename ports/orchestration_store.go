package ports

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
)

// EnqueueReport says what one per-task enqueue transaction did (contract §10.2).
type EnqueueReport struct {
	TaskUUID      uuid.UUID
	Namespace     string
	StepsEnqueued int
	// StepsRetried counts error steps moved back to pending (D-d) before being re-sent.
	StepsRetried int
	// Steps are the steps sent, in workflow_step_uuid order (batch path only;
	// nil elsewhere), for per-step logs, metrics and trace context.
	Steps []EnqueuedStep
	// TaskStarted is true when the task went pending → in_progress.
	TaskStarted bool
}

// EnqueuedStep is one step message a batch sent.
type EnqueuedStep struct {
	StepUUID uuid.UUID
	// Name is the step's name in its template.
	Name string
	// Attempts is the number of attempts made before this send (0 = first).
	Attempts int
	// Retry is true when the step was in error and is sent again.
	Retry bool
}

// QueueMissingError is returned (with nothing written) when the namespace
// queue does not exist yet. The caller creates it outside the transaction,
// as §4.1 requires, and tries again.
type QueueMissingError struct {
	Queue string
}

// Error names the missing queue.
func (e *QueueMissingError) Error() string {
	return fmt.Sprintf("queue %s does not exist", e.Queue)
}

// StepEnqueuer runs the per-task enqueue transaction of §10.2: lock the task,
// re-check readiness of each ready step under its row lock, Retry error
// steps, send the step message and mark it enqueued atomically (D-m), Start
// the task.
type StepEnqueuer interface {
	// CandidateTasks lists up to limit tasks that §10.2 step 1 selects
	// (incomplete, pending or in_progress, a ready step, no live foreign
	// claim), by computed priority then age. It reads without locking, so
	// one scan serves a whole cycle; EnqueueTask takes each lock with SKIP
	// LOCKED, so a task another instance holds is skipped, as with FOR
	// UPDATE SKIP LOCKED on the scan itself.
	CandidateTasks(ctx context.Context, claimerID string, limit int) ([]uuid.UUID, error)
	// EnqueueTask locks the task (SKIP LOCKED) and enqueues its ready steps.
	// found is false when the task is locked by another instance, not
	// active, or has no ready step.
	EnqueueTask(ctx context.Context, taskUUID uuid.UUID) (rep EnqueueReport, found bool, err error)
	// EnqueueNewTasks enqueues the root steps of tasks just created, in one
	// statement with no transaction of its own: each task still pending and
	// not locked by another transaction goes pending → in_progress and its
	// root steps still pending go pending → enqueued and onto the queue, as
	// the batch path would write them. It returns the reports of the tasks
	// it enqueued and the tasks it left (locked elsewhere, no longer pending,
	// or a root step no longer pending) for the batch path, which evaluates
	// them in full. A queue missing from pgmq.meta is a *QueueMissingError,
	// with nothing written. traceHeaders, when set, gives a task's messages
	// their pgmq headers.
	EnqueueNewTasks(ctx context.Context, tasks []NewTaskRoots, traceHeaders func(uuid.UUID) json.RawMessage) (enqueued []EnqueueReport, left []uuid.UUID, err error)
}

// NewTaskRoots names a task just created and its root steps (the steps
// without dependencies), which are ready by construction.
type NewTaskRoots struct {
	TaskUUID  uuid.UUID
	Namespace string
	// Roots are the root steps, Attempts 0 and Retry false.
	Roots []EnqueuedStep
}

// StepResultView is what result processing reads about a step (contract
// §10.3): TaskBatch.Bookkeeping decides on it.
type StepResultView struct {
	TaskUUID   uuid.UUID
	StepUUID   uuid.UUID
	State      domain.StepState
	Retryable  bool
	Attempts   int
	RetryLimit int
	// Results is the stored results column, possibly NULL or a legacy shape.
	// It is read for steps in error only (the only state bookkeeping acts
	// on) and is nil otherwise.
	Results json.RawMessage
}

// FinalizationReport is the outcome of a finalization evaluation (§10.4).
type FinalizationReport struct {
	TaskUUID uuid.UUID
	// From and To are the task state before and after; equal when nothing changed.
	From domain.TaskState
	To   domain.TaskState
	// Namespace, TaskName and CreatedAt identify the task for logs and the
	// task duration histogram; empty/zero when the store did not read them.
	Namespace string
	TaskName  string
	CreatedAt time.Time
}

// ConsumedMessages are queue messages whose processing a transaction
// completes. They are deleted inside it, so they disappear exactly when its
// effects commit and the consumer pays no separate delete (a commit of its
// own) per message. The zero value deletes nothing.
type ConsumedMessages struct {
	Queue  string
	MsgIDs []int64
}

// TaskFinalizer runs finalization evaluation in one transaction holding the task row lock.
type TaskFinalizer interface {
	FinalizeTask(ctx context.Context, taskUUID uuid.UUID) (FinalizationReport, error)
	// FinalizeAndEnqueue finalizes and, when the task stays active, enqueues
	// its ready steps in the same transaction (the result processor's path),
	// which also deletes consumed. A missing namespace queue is a
	// *QueueMissingError with nothing written (and nothing deleted).
	FinalizeAndEnqueue(ctx context.Context, taskUUID uuid.UUID, consumed ConsumedMessages) (FinalizationReport, EnqueueReport, error)
}

// ManualResolution is the body of PATCH …/workflow_steps/{step_uuid} (§7.5).
type ManualResolution struct {
	ResolutionData json.RawMessage
	ResolvedBy     string
	Reason         string
}

// TaskCanceller cancels tasks and resolves steps manually (§10.5, §7.5).
type TaskCanceller interface {
	// CancelTask cancels every unfinished step and the task in one
	// transaction. Unknown task → NotFoundError; terminal task → ConflictError.
	CancelTask(ctx context.Context, taskUUID uuid.UUID) (cancelledSteps int, err error)
	// ResolveStep fires ResolveManually on the step (resets and restarts a task
	// in error) and runs finalization, in one transaction. An invalid
	// transition is a ConflictError; an unknown or foreign step NotFoundError.
	ResolveStep(ctx context.Context, taskUUID, stepUUID uuid.UUID, r ManualResolution) (FinalizationReport, error)
}

// TaskBatch is the work of one set-based orchestration transaction over
// many tasks (contract §10.2 step 2, §10.3, §10.4): lock every task involved
// in task_uuid order, read all their steps in one statement, record the
// results' bookkeeping, finalize each task, enqueue the ready steps of the
// tasks that stay active with one pgmq.send_batch per namespace queue, delete
// the consumed messages, commit once. Each task ends exactly as if it had
// been processed alone; the batch only shares the round trips and the commit
// (and with it the serialised commit of a NOTIFY-issuing transaction).
type TaskBatch struct {
	// Queue is the queue the items' messages came from; their MsgIDs are
	// deleted in the transaction. Empty when no item carries a message.
	Queue string
	// Results are completion messages (§10.3): each step's task is
	// finalized and enqueued, after Bookkeeping recorded its backoff.
	Results []ResultItem
	// Tasks are tasks to finalize and enqueue: finalization requests, new
	// tasks, enqueue-cycle candidates.
	Tasks []TaskItem
	// SkipLocked leaves a task that another transaction holds to that
	// transaction instead of waiting for it (the enqueue cycle and the
	// enqueue after creation: whoever holds the lock is doing the same work).
	// Such tasks are reported in TaskBatchReport.Skipped.
	SkipLocked bool
	// Bookkeeping decides §10.3 step 3 for the step of a result, read under
	// its task's lock. Nil records nothing.
	Bookkeeping func(StepResultView) ResultBookkeeping
	// TraceHeaders, when set, is asked for the pgmq headers (W3C trace
	// context) of the step messages a task of the batch is about to send;
	// nil headers (and a nil func) send headers NULL.
	TraceHeaders func(taskUUID uuid.UUID) json.RawMessage
}

// ResultItem is one completion message of a TaskBatch.
type ResultItem struct {
	// MsgID is deleted in the batch when the step exists; 0 = no message.
	MsgID    int64
	StepUUID uuid.UUID
}

// TaskItem is one task of a TaskBatch.
type TaskItem struct {
	// MsgID is deleted in the batch when the task exists; 0 = no message.
	MsgID    int64
	TaskUUID uuid.UUID
}

// ResultBookkeeping is what result processing records for a step in error
// (§10.3 step 3) before finalization evaluates it.
type ResultBookkeeping struct {
	// BackoffSeconds, when set, becomes backoff_request_seconds.
	BackoffSeconds *int
	// NotRetryable sets retryable = false: the handler said retrying cannot
	// help (§9.2), so the step is permanently failed (D-e).
	NotRetryable bool
}

// TaskBatchReport says what a TaskBatch did.
type TaskBatchReport struct {
	// Finalized has one entry per task the batch locked and evaluated, in
	// task_uuid order; From == To when finalization changed nothing.
	Finalized []FinalizationReport
	// Enqueued has one entry per task whose steps the batch enqueued.
	Enqueued []EnqueueReport
	// UnknownResults are indexes into Results whose step does not exist
	// (their messages were not deleted: archive them).
	UnknownResults []int
	// UnknownTasks are indexes into Tasks whose task does not exist.
	UnknownTasks []int
	// Skipped are tasks left to another transaction (SkipLocked only).
	Skipped []uuid.UUID
	// Retries are the tasks that stay active with a step in error waiting
	// out its backoff (R7, R8), each with the earliest time one becomes
	// ready: no message will wake the orchestration then, so the caller
	// schedules the task's next batch itself.
	Retries []ScheduledRetry
}

// ScheduledRetry is when a task's next retryable step becomes ready.
type ScheduledRetry struct {
	TaskUUID uuid.UUID
	At       time.Time
}

// TaskBatchProcessor runs TaskBatches. A namespace queue that does not exist
// yet is a *QueueMissingError with nothing written and nothing deleted: the
// caller creates the queue outside the transaction (§4.1) and runs the batch
// again.
type TaskBatchProcessor interface {
	ProcessTasks(ctx context.Context, b TaskBatch) (TaskBatchReport, error)
}
