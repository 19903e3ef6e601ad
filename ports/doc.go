// Package ports declares the small interfaces the app services need from the
// outside world (queues, stores, the orchestration API, the event bus, time).
// Adapters implement them; app code depends only on these and on domain.
package ports

import "errors"

// ErrNotFound is returned by stores when the requested row does not exist.
var ErrNotFound = errors.New("not found")
