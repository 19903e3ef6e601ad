package orchestrationapi

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults of the database circuit breaker (the same numbers as the worker's
// orchestration client breaker: five straight failures open it for 30 s).
const (
	DefaultBreakerFailures    = 5
	DefaultBreakerOpenTimeout = 30 * time.Second
)

// Breaker states reported in /health/detailed circuit_breaker_state.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// BreakerReporter reports a circuit breaker's state, one of the Breaker* constants.
type BreakerReporter interface {
	BreakerState() string
}

// BreakerPinger is a Pinger behind a circuit breaker. The readiness checks
// ping the database every few seconds; after Failures straight failures the
// breaker opens and pings fail at once (no connection attempt piles up on a
// dead database) until OpenTimeout has passed and a trial ping succeeds.
// Its state is what /health/detailed reports, so the field says something
// true about the database instead of a constant.
type BreakerPinger struct {
	db Pinger
	cb *gobreaker.CircuitBreaker[struct{}]
}

// NewBreakerPinger wraps db; zero failures or timeout select the defaults.
func NewBreakerPinger(db Pinger, failures uint32, openTimeout time.Duration) *BreakerPinger {
	if failures == 0 {
		failures = DefaultBreakerFailures
	}
	if openTimeout <= 0 {
		openTimeout = DefaultBreakerOpenTimeout
	}
	return &BreakerPinger{db: db, cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "orchestration_database",
		MaxRequests: 1,
		Timeout:     openTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// The caller giving up says nothing about the database.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	})}
}

// Ping implements Pinger through the breaker; an open breaker fails with
// gobreaker.ErrOpenState without touching the database.
func (b *BreakerPinger) Ping(ctx context.Context) error {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, b.db.Ping(ctx) })
	return err
}

// BreakerState implements BreakerReporter.
func (b *BreakerPinger) BreakerState() string {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerClosed
	}
}
