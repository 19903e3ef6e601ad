package pgmq

import (
	"fmt"
	"regexp"
)

// MaxQueueNameLen is pgmq's limit on queue names (contract §4.1, D-k).
const MaxQueueNameLen = 47

var queueNameRE = regexp.MustCompile(`^[a-z0-9_]+$`)

// InvalidQueueNameError rejects a queue name before any SQL runs: names become
// table suffixes and NOTIFY channel parts, so they are checked strictly.
type InvalidQueueNameError struct {
	Name   string
	Reason string
}

func (e *InvalidQueueNameError) Error() string {
	return fmt.Sprintf("invalid queue name %q: %s", e.Name, e.Reason)
}

// ValidateQueueName returns an *InvalidQueueNameError unless name matches
// ^[a-z0-9_]+$ and has at most MaxQueueNameLen characters.
func ValidateQueueName(name string) error {
	if !queueNameRE.MatchString(name) {
		return &InvalidQueueNameError{Name: name, Reason: "must match ^[a-z0-9_]+$"}
	}
	if len(name) > MaxQueueNameLen {
		return &InvalidQueueNameError{Name: name, Reason: fmt.Sprintf("longer than %d characters", MaxQueueNameLen)}
	}
	return nil
}
