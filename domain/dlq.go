package domain

import (
	"time"

	"github.com/google/uuid"
)

// DLQReason says why work was dead-lettered: the orchestration gave up
// waiting for it, or could never process it.
type DLQReason string

// DLQ reasons.
const (
	// DLQEnqueuedTimeout: a step stayed enqueued past the threshold with no
	// claim (no worker serves its namespace, or its message was lost).
	DLQEnqueuedTimeout DLQReason = "enqueued_timeout"
	// DLQMessageArchived: the step's message was archived (a worker gave up
	// on it at the receive limit), so nothing will ever run the step.
	DLQMessageArchived DLQReason = "message_archived"
	// DLQTaskTimeout: the task stayed in_progress past the threshold with no
	// transition of its own or of any step.
	DLQTaskTimeout DLQReason = "task_timeout"
	// DLQPoisonMessage: an orchestration queue message that can never be
	// processed (a permanent database error, or the receive limit reached);
	// the message is kept in the entry so requeue can send it again.
	DLQPoisonMessage DLQReason = "poison_message"
)

// Valid reports whether r is one of the DLQ reasons.
func (r DLQReason) Valid() bool {
	switch r {
	case DLQEnqueuedTimeout, DLQMessageArchived, DLQTaskTimeout, DLQPoisonMessage:
		return true
	}
	return false
}

// DLQStatus is where an entry is in its handling.
type DLQStatus string

// DLQ entry statuses.
const (
	// DLQOpen: waiting for an operator.
	DLQOpen DLQStatus = "open"
	// DLQRequeued: the work was sent again (step re-enqueued with a fresh
	// attempt budget, or the message re-sent).
	DLQRequeued DLQStatus = "requeued"
	// DLQResolved: an operator closed it with a note.
	DLQResolved DLQStatus = "resolved"
)

// Valid reports whether s is one of the DLQ statuses.
func (s DLQStatus) Valid() bool {
	return s == DLQOpen || s == DLQRequeued || s == DLQResolved
}

// DLQEntry is one dead-lettered piece of work.
type DLQEntry struct {
	EntryUUID uuid.UUID
	// TaskUUID and StepUUID are uuid.Nil when unknown (a poison request
	// message names no task; a task timeout names no step).
	TaskUUID  uuid.UUID
	StepUUID  uuid.UUID
	Namespace string
	Reason    DLQReason
	Status    DLQStatus
	// Detail says what was seen, for the operator.
	Detail string
	// QueueName and Message are the poison message and where it came from.
	QueueName      string
	Message        []byte
	ResolutionNote string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}
