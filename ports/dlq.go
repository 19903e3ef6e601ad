package ports

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
)

// ErrDLQUnavailable marks a DLQ operation on a database without the
// tasker_go_dlq_entries table (migrated by tasker-core only); the API maps it
// to 503 and the consumers fall back to archiving without an entry.
var ErrDLQUnavailable = errors.New("dead-letter queue unavailable: table tasker_go_dlq_entries is missing (run tasker-orchestration migrate)")

// PoisonMessage is an orchestration queue message given up on.
type PoisonMessage struct {
	Queue   string
	MsgID   int64
	ReadCt  int
	Message json.RawMessage
	// TaskUUID and StepUUID, when the message names them (step results).
	TaskUUID uuid.UUID
	StepUUID uuid.UUID
	// Detail is why: the permanent error, or the receive count.
	Detail string
}

// DeadLetterRecorder records poison messages as DLQ entries.
type DeadLetterRecorder interface {
	RecordPoison(ctx context.Context, m PoisonMessage) (domain.DLQEntry, error)
}

// StalenessPolicy is what the detector looks for and does.
type StalenessPolicy struct {
	// EnqueuedTimeout: steps enqueued longer than this with no claim.
	EnqueuedTimeout time.Duration
	// TaskTimeout: tasks in_progress with no transition for this long.
	TaskTimeout time.Duration
	// FailTask moves the task (and the stale step) to error; false only records.
	FailTask bool
	// Limit caps the entries of one scan so one pass stays short.
	Limit int
}

// StalenessScanner finds stale work, records it as DLQ entries and (per
// policy) fails its task, in one transaction per scan. Rows locked by another
// instance are skipped, so several scanners may run at once.
type StalenessScanner interface {
	ScanStale(ctx context.Context, p StalenessPolicy) ([]domain.DLQEntry, error)
}

// DLQFilter selects entries for GET /v1/dlq.
type DLQFilter struct {
	Namespace string
	Reason    domain.DLQReason
	Status    domain.DLQStatus
	Page      int
	PerPage   int
}

// DLQPage is one page of entries, newest first, with the total count.
type DLQPage struct {
	Entries    []domain.DLQEntry
	TotalCount int64
}

// DLQStore reads and handles DLQ entries.
type DLQStore interface {
	ListDLQ(ctx context.Context, f DLQFilter) (DLQPage, error)
	GetDLQ(ctx context.Context, entryUUID uuid.UUID) (domain.DLQEntry, error)
	// RequeueDLQ sends the work again: a step is moved back to pending with
	// a fresh attempt budget and its task reset to pending (the enqueue
	// cycle then enqueues it and starts the task); a poison message is sent
	// again to its queue. Only open entries can be requeued (ConflictError).
	RequeueDLQ(ctx context.Context, entryUUID uuid.UUID) (domain.DLQEntry, error)
	// ResolveDLQ closes an open entry with a note.
	ResolveDLQ(ctx context.Context, entryUUID uuid.UUID, note string) (domain.DLQEntry, error)
}
