package ports

// MessageReady is a wake-up from the message-ready NOTIFY trigger (contract
// §4.6). It is a hint only: the consumer then reads the queue with
// pgmq.read, never by msg_id.
type MessageReady struct {
	// Queue is the payload's queue_name; consumers accept only their own queues (D-h).
	Queue string
	// Namespace is the payload's namespace, as derived by the trigger.
	Namespace string
	// MsgID is the inserted message's id; under the statement-level trigger
	// (one notification per INSERT) the lowest of that statement's ids.
	// Informational only.
	MsgID int64
	// PollAll asks the consumer to read every queue it serves now, because
	// notifications may have been missed (sent after a reconnect).
	PollAll bool
}

// MessageNotifier delivers message-ready wake-ups from a dedicated
// LISTEN connection. Notifications are best effort; consumers keep polling.
type MessageNotifier interface {
	// Notifications is the stream of wake-ups; it is closed by Close.
	Notifications() <-chan MessageReady
	// Close stops listening and releases the connection.
	Close() error
}
