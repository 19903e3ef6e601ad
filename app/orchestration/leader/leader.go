// Package leader keeps this orchestration instance's standing in the
// election of the one instance that consumes the orchestration queues and
// runs the enqueue sweep (ports.Leadership). Instances that consume the same
// queues at once halve each other's batches, double the commits and wait on
// each other's task locks; with one consumer the others stand by, serve the
// HTTP API and take over when the leader goes away.
//
// Leadership only saves work: when an election fails the instance consumes,
// as it would alone, so a database the elector cannot reach never stalls the
// orchestration, and two instances consuming at once stay correct.
package leader

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/ports"
)

// Defaults.
const (
	// DefaultInterval is the orchestration's default queue poll interval
	// (result.DefaultPollInterval): a standby notices a leader that went away
	// no later than a consumer notices a message whose notification was lost.
	DefaultInterval = 500 * time.Millisecond
	// DefaultTimeout bounds one election call. An election that does not
	// answer in time has failed, and a failed election means consuming.
	DefaultTimeout = 5 * time.Second
)

// Config tunes the election.
type Config struct {
	// Interval is how often a standby tries to take over and a leader
	// confirms it still leads: a failover takes up to this long once the
	// old leader's session has ended. Each attempt is one short query.
	Interval time.Duration
	// Timeout bounds one election call (DefaultTimeout).
	Timeout time.Duration
}

// Deps are the election's collaborators. A nil Leadership means no election:
// the instance always leads (tests, embedding, one instance). Metrics, Log
// and Clock may be nil.
type Deps struct {
	Leadership ports.Leadership
	Metrics    ports.OrchestrationMetrics
	Log        *zap.Logger
	Clock      ports.Clock
}

// Election is this instance's standing: whether it leads, and a wake-up
// when it becomes the leader.
type Election struct {
	cfg     Config
	lead    ports.Leadership
	metrics ports.OrchestrationMetrics
	log     *zap.Logger
	clock   ports.Clock
	leading atomic.Bool
	// failing is whether the last election failed (logged once per run of
	// failures, not every Interval); only Run touches it.
	failing bool

	mu sync.Mutex
	// gained is closed when this instance next becomes the leader.
	gained chan struct{}
}

// New returns an election. Without a Leadership the instance leads from the
// start; with one it stands by until its first election, which Run holds
// at once.
func New(cfg Config, d Deps) *Election {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	e := &Election{cfg: cfg, lead: d.Leadership, metrics: d.Metrics, log: d.Log, clock: d.Clock, gained: make(chan struct{})}
	if e.metrics == nil {
		e.metrics = ports.NopOrchestrationMetrics{}
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.clock == nil {
		e.clock = ports.SystemClock{}
	}
	e.leading.Store(e.lead == nil)
	e.metrics.Leader(e.lead == nil)
	return e
}

// Leading reports whether this instance consumes the orchestration queues
// now: the answer of its last election, true when that failed or when there
// is no election.
func (e *Election) Leading() bool { return e.leading.Load() }

// Gained is closed the next time this instance becomes the leader, so that
// its consumers read at once instead of at their next poll. Call it again
// after it fires for the next time.
func (e *Election) Gained() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gained
}

// Run holds an election every Interval until ctx ends. Without a Leadership
// it returns at once. It does not release leadership: Release does, once the
// consumers have stopped.
func (e *Election) Run(ctx context.Context) {
	if e.lead == nil {
		return
	}
	for {
		e.elect(ctx)
		select {
		case <-ctx.Done():
			return
		case <-e.clock.After(e.cfg.Interval):
		}
	}
}

// elect asks the Leadership once and records the answer; an error counts
// as leading (ports.Leadership).
func (e *Election) elect(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	leading, err := e.lead.TryLead(cctx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the answer may be the cancellation's
	}
	switch {
	case err != nil && !e.failing:
		e.log.Warn("leader election failed; consuming the orchestration queues meanwhile", zap.Error(err))
	case err == nil && e.failing:
		e.log.Info("leader election works again")
	}
	e.failing = err != nil
	e.set(leading || err != nil)
}

// set records leading and, when it changed, counts, logs and wakes.
func (e *Election) set(leading bool) {
	if e.leading.Swap(leading) == leading {
		return
	}
	e.metrics.Leader(leading)
	if !leading {
		e.log.Info("standing by: another orchestration instance consumes the orchestration queues")
		return
	}
	e.log.Info("leading: this instance consumes the orchestration queues")
	e.mu.Lock()
	close(e.gained)
	e.gained = make(chan struct{})
	e.mu.Unlock()
}

// Release gives leadership up at shutdown, after the consumers stopped, so
// that a standby takes over at its next attempt instead of waiting for this
// session to end.
func (e *Election) Release(ctx context.Context) error {
	if e.lead == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	err := e.lead.Release(cctx)
	if e.leading.Swap(false) {
		e.metrics.Leader(false)
	}
	return err
}
