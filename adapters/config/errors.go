package config

import (
	"errors"
	"strings"
)

// ErrUnknownEnvironment is wrapped by the error Load returns when the
// environment is not development, test or production.
var ErrUnknownEnvironment = errors.New("must be one of development, test, production")

// Problem is one rejected configuration value.
type Problem struct {
	// Source is where the value came from when known: a file such as
	// "base/pgmq.toml" or an environment variable name. Empty for problems
	// found on the merged result, where the origin is no longer known.
	Source string
	// Key is the dotted key path, e.g. "worker_web.bind_address".
	Key string
	// Reason says what is wrong, e.g. "must be host:port".
	Reason string
}

// String renders "source: key: reason" (source omitted when empty).
func (p Problem) String() string {
	if p.Source == "" {
		return p.Key + ": " + p.Reason
	}
	return p.Source + ": " + p.Key + ": " + p.Reason
}

// ValidationError carries every problem found at once, so an operator fixes
// a configuration in one round instead of one restart per mistake. Callers
// that need the individual problems use errors.As.
type ValidationError struct {
	Problems []Problem
}

// Error lists all problems on one line (start-up failures print one line).
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// HasKey reports whether some problem concerns key; convenient in tests and
// in callers that want to hint at a specific setting.
func (e *ValidationError) HasKey(key string) bool {
	for _, p := range e.Problems {
		if p.Key == key {
			return true
		}
	}
	return false
}

func problemsError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: problems}
}
