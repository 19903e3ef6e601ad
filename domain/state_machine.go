package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// EventType names a state-machine event. The names are the literal "type"
// values written into transition metadata (contract §3.3).
type EventType string

// Events of the task and step state machines (contract §3.1, §3.2).
const (
	EventEnqueue         EventType = "Enqueue"
	EventStart           EventType = "Start"
	EventComplete        EventType = "Complete"
	EventFail            EventType = "Fail"
	EventRetry           EventType = "Retry"
	EventReset           EventType = "Reset"
	EventCancel          EventType = "Cancel"
	EventResolveManually EventType = "ResolveManually"
)

// StepEvent is an event fired on a step. Result is carried by Complete (and
// persisted for Fail, contract D-a); Message is carried by Fail.
type StepEvent struct {
	Type    EventType
	Result  *StepExecutionResult
	Message string
}

// TaskEvent is an event fired on a task. Message is carried by Fail.
type TaskEvent struct {
	Type    EventType
	Message string
}

// StepGuard carries the facts the step state machine's guards need; the
// caller reads them under the step row lock.
type StepGuard struct {
	// DependenciesSatisfied is true when every parent is complete or resolved_manually.
	DependenciesSatisfied bool
}

// TaskGuard carries the facts the task state machine's guards need.
type TaskGuard struct {
	// AllStepsComplete is true when every step is complete or resolved_manually.
	AllStepsComplete bool
}

// InvalidTransitionError is returned when an event is not allowed from a state
// or its guard fails. Callers branch on it with errors.As.
type InvalidTransitionError struct {
	Entity string // "task" or "step"
	From   string
	Event  EventType
	Reason string
}

// Error names the entity, event, from-state and the reason it was rejected.
func (e *InvalidTransitionError) Error() string {
	msg := fmt.Sprintf("invalid %s transition: %s from state %s", e.Entity, e.Event, e.From)
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// NextStepState applies the step transition table (contract §3.2) and returns
// the target state, or an *InvalidTransitionError.
func NextStepState(from StepState, ev EventType, g StepGuard) (StepState, error) {
	bad := func(reason string) (StepState, error) {
		return "", &InvalidTransitionError{Entity: "step", From: string(from), Event: ev, Reason: reason}
	}
	if !from.Valid() {
		return bad("unknown state")
	}
	switch ev {
	case EventEnqueue:
		if from != StepPending {
			return bad("only a pending step can be enqueued")
		}
		if !g.DependenciesSatisfied {
			return bad("dependencies not satisfied")
		}
		return StepEnqueued, nil
	case EventStart:
		switch from {
		case StepEnqueued:
			return StepInProgress, nil
		case StepPending:
			if !g.DependenciesSatisfied {
				return bad("dependencies not satisfied")
			}
			return StepInProgress, nil
		}
		return bad("only a pending or enqueued step can start")
	case EventComplete:
		if from != StepInProgress {
			return bad("only an in_progress step can complete")
		}
		return StepComplete, nil
	case EventFail:
		if from == StepPending || from == StepEnqueued || from == StepInProgress {
			return StepError, nil
		}
		return bad("only a pending, enqueued or in_progress step can fail")
	case EventRetry:
		if from != StepError {
			return bad("only a step in error can be retried")
		}
		return StepPending, nil
	case EventCancel:
		if from == StepPending || from == StepEnqueued || from == StepInProgress || from == StepError {
			return StepCancelled, nil
		}
		return bad("step is already terminal")
	case EventResolveManually:
		return StepResolvedManually, nil
	}
	return bad("unknown step event")
}

// NextTaskState applies the task transition table (contract §3.1).
func NextTaskState(from TaskState, ev EventType, g TaskGuard) (TaskState, error) {
	bad := func(reason string) (TaskState, error) {
		return "", &InvalidTransitionError{Entity: "task", From: string(from), Event: ev, Reason: reason}
	}
	if !from.Valid() {
		return bad("unknown state")
	}
	switch ev {
	case EventStart:
		if from != TaskPending {
			return bad("only a pending task can start")
		}
		return TaskInProgress, nil
	case EventComplete:
		if from != TaskInProgress {
			return bad("only an in_progress task can complete")
		}
		if !g.AllStepsComplete {
			return bad("not every step is complete or resolved_manually")
		}
		return TaskComplete, nil
	case EventFail:
		if from == TaskPending || from == TaskInProgress {
			return TaskError, nil
		}
		return bad("only a pending or in_progress task can fail")
	case EventReset:
		if from != TaskError {
			return bad("only a task in error can be reset")
		}
		return TaskPending, nil
	case EventCancel:
		if from == TaskPending || from == TaskInProgress || from == TaskError {
			return TaskCancelled, nil
		}
		return bad("task is already terminal")
	case EventResolveManually:
		return TaskResolvedManually, nil
	}
	return bad("unknown task event")
}

// TransitionMetadata builds the metadata object of an event-driven transition
// row (contract §3.3): {"event": "<compact event JSON as a string>", "timestamp":
// RFC 3339 UTC}. extra keys (e.g. worker_id) are added at top level.
func TransitionMetadata(ev EventType, data any, hasData bool, at time.Time, extra map[string]any) (json.RawMessage, error) {
	var event any = struct {
		Type EventType `json:"type"`
	}{ev}
	if hasData {
		event = struct {
			Type EventType `json:"type"`
			Data any       `json:"data"`
		}{ev, data}
	}
	encoded, err := marshalNoEscape(event)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev, err)
	}
	m := make(map[string]any, len(extra)+2)
	for k, v := range extra {
		m[k] = v
	}
	m["event"] = string(encoded)
	m["timestamp"] = at.UTC().Format(TransitionTimestampLayout)
	out, err := marshalNoEscape(m)
	if err != nil {
		return nil, fmt.Errorf("encode transition metadata: %w", err)
	}
	return out, nil
}

// TransitionTimestampLayout is the metadata timestamp format: RFC 3339 UTC
// with exactly six fractional digits, e.g. 2025-08-27T22:18:32.123456Z (§3.3).
const TransitionTimestampLayout = "2006-01-02T15:04:05.000000Z"

// marshalNoEscape is compact json.Marshal without HTML escaping of <, > and &,
// so messages read the same as the reference's serde_json output.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// StepEventMetadata encodes the metadata of a step event per contract §3.3:
// Complete carries the full result (or null), Fail carries the message.
func StepEventMetadata(ev StepEvent, at time.Time, extra map[string]any) (json.RawMessage, error) {
	switch ev.Type {
	case EventComplete:
		return TransitionMetadata(ev.Type, ev.Result, true, at, extra)
	case EventFail:
		return TransitionMetadata(ev.Type, ev.Message, true, at, extra)
	}
	return TransitionMetadata(ev.Type, nil, false, at, extra)
}

// TaskEventMetadata encodes the metadata of a task event per contract §3.3.
func TaskEventMetadata(ev TaskEvent, at time.Time, extra map[string]any) (json.RawMessage, error) {
	if ev.Type == EventFail {
		return TransitionMetadata(ev.Type, ev.Message, true, at, extra)
	}
	return TransitionMetadata(ev.Type, nil, false, at, extra)
}

// InitialTransitionMetadata is the metadata of the pending rows written at task creation.
var InitialTransitionMetadata = json.RawMessage(`{"created_by":"task_initializer","initialization":true}`)
