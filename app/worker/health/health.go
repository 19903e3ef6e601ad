// Package health is the worker's health policy (contract §8.2): which of
// its loops count as wedged and after how long, when it is ready to take
// steps, when it is alive, and what a queue depth means. It judges the
// worker's status model (domain.WorkerStatus); the web adapter runs the
// database checks, renders the verdicts and decides nothing itself.
package health

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tasker-systems/tasker-go/domain"
)

// Defaults of the policy's tunables.
const (
	// DefaultPollInterval is pgmq.poll_interval_ms's default: a checked
	// loop is wedged after 3 × the poll interval without a tick.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultLivenessStallAfter is the least silence that fails liveness.
	DefaultLivenessStallAfter = 30 * time.Second
	// QueueDegradedAt and QueueUnhealthyAt are the total depths of the
	// served queues at which queue processing is degraded or unhealthy.
	QueueDegradedAt  = 10000
	QueueUnhealthyAt = 50000
	// ServiceDispatcherStallAfter is the DispatcherStallAfter of the worker
	// service: its dispatcher ticks every second while idle, so three silent
	// seconds mean it is wedged. (The zero Config leaves the dispatcher
	// unchecked, for embedders whose dispatcher ticks differently.)
	ServiceDispatcherStallAfter = 3 * time.Second
)

// DefaultStallCheckedLoops are the loop-name prefixes checked by default:
// the intake readers, which tick every poll interval even when idle.
func DefaultStallCheckedLoops() []string { return []string{domain.IntakeLoopPrefix} }

// Config tunes the policy. Zero values select the defaults.
type Config struct {
	// PollInterval is pgmq.poll_interval_ms: a checked loop that has not
	// ticked for 3 × PollInterval (while intake is not saturated) is wedged.
	PollInterval time.Duration
	// StallCheckedLoops are loop-name prefixes whose ticks must move within
	// 3 × PollInterval (default: the intake readers). A loop that ticks only
	// on work would look wedged when idle, so only timer-driven loops belong
	// here. An empty, non-nil slice checks none.
	StallCheckedLoops []string
	// DispatcherStallAfter, when positive, also requires the dispatcher loop
	// to tick within it. The dispatcher ticks at least once a second while
	// idle, so 3 s is a safe value; 0 leaves it unchecked.
	DispatcherStallAfter time.Duration
	// LivenessStallAfter is the least silence that fails liveness (readiness
	// uses the thresholds above as they are), so a database hiccup holding
	// one read for a few seconds does not get the process restarted; a truly
	// wedged loop still is.
	LivenessStallAfter time.Duration
}

func (c *Config) applyDefaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.LivenessStallAfter <= 0 {
		c.LivenessStallAfter = DefaultLivenessStallAfter
	}
	if c.StallCheckedLoops == nil {
		c.StallCheckedLoops = DefaultStallCheckedLoops()
	}
}

// Policy judges a worker's status. It remembers when each loop's tick count
// last moved, so it must see the status regularly (Observe, or any verdict).
// It is safe for concurrent use.
type Policy struct {
	cfg  Config
	mu   sync.Mutex
	seen map[string]loopSeen
}

type loopSeen struct {
	count   uint64
	changed time.Time
}

// New returns a Policy with cfg's zero values defaulted.
func New(cfg Config) *Policy {
	cfg.applyDefaults()
	return &Policy{cfg: cfg, seen: map[string]loopSeen{}}
}

// Config returns the policy's effective configuration.
func (p *Policy) Config() Config { return p.cfg }

// Observe records st's loop ticks at now. A loop seen for the first time
// counts as having just ticked: absence of history is not evidence of a
// wedge. While intake is saturated every loop counts as having just ticked
// (readers wait for a free slot, the dispatcher for a free handler: that is
// back-pressure), so the moment saturation ends is not mistaken for a long
// silence.
func (p *Policy) Observe(now time.Time, st domain.WorkerStatus) map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]time.Time, len(st.LoopTicks))
	for name, n := range st.LoopTicks {
		prev, ok := p.seen[name]
		if !ok || prev.count != n || st.IntakeSaturated {
			prev = loopSeen{count: n, changed: now}
			p.seen[name] = prev
		}
		out[name] = prev.changed
	}
	return out
}

// Stalled names, sorted, the checked loops whose ticks have not moved within
// their limit (StallLimit). None while intake is saturated.
func (p *Policy) Stalled(now time.Time, st domain.WorkerStatus, liveness bool) []string {
	last := p.Observe(now, st)
	if st.IntakeSaturated {
		return nil
	}
	var stalled []string
	for name, at := range last {
		if limit := p.StallLimit(name, liveness); limit > 0 && now.Sub(at) > limit {
			stalled = append(stalled, name)
		}
	}
	sort.Strings(stalled)
	return stalled
}

// StallLimit is how long loop name may go without a tick; 0 = unchecked.
// Liveness waits at least LivenessStallAfter: a restart is costly, and a
// read blocked for a few seconds on a slow database is not a wedge.
func (p *Policy) StallLimit(name string, liveness bool) time.Duration {
	var limit time.Duration
	switch {
	case name == domain.LoopDispatcher && p.cfg.DispatcherStallAfter > 0:
		limit = p.cfg.DispatcherStallAfter
	case p.stallChecked(name):
		limit = 3 * p.cfg.PollInterval
	default:
		return 0
	}
	if liveness {
		limit = max(limit, p.cfg.LivenessStallAfter)
	}
	return limit
}

func (p *Policy) stallChecked(name string) bool {
	for _, prefix := range p.cfg.StallCheckedLoops {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// ReadinessProblems says why the worker cannot take steps now (the
// command_processor check): shutting down, pipeline or dispatcher not
// running, or a checked loop wedged. None means ready as far as the worker
// itself goes; the database check is the adapter's.
func (p *Policy) ReadinessProblems(now time.Time, st domain.WorkerStatus) []string {
	var problems []string
	if st.ShuttingDown {
		problems = append(problems, "worker is shutting down")
	}
	if !st.PipelineRunning {
		problems = append(problems, "step pipeline is not running")
	}
	if !st.DispatcherRunning {
		problems = append(problems, "event dispatcher is not running")
	}
	if stalled := p.Stalled(now, st, false); len(stalled) > 0 {
		problems = append(problems, "loops not ticking: "+strings.Join(stalled, ", "))
	}
	return problems
}

// LivenessProblems maps each loop that cannot make progress to why: a
// checked loop wedged past the liveness limit, or the pipeline or
// dispatcher stopped although the worker is neither starting nor shutting
// down. A database outage is not among them: restarting the process would
// not fix it.
func (p *Policy) LivenessProblems(now time.Time, st domain.WorkerStatus) map[string]string {
	problems := map[string]string{}
	for _, name := range p.Stalled(now, st, true) {
		problems[name] = fmt.Sprintf("no tick within %s", p.StallLimit(name, true))
	}
	if st.Started && !st.ShuttingDown {
		if !st.PipelineRunning {
			problems[domain.LoopPipeline] = domain.LoopPipeline + " stopped unexpectedly"
		}
		if !st.DispatcherRunning {
			problems[domain.LoopDispatcher] = domain.LoopDispatcher + " stopped unexpectedly"
		}
	}
	return problems
}

// QueueDepth judges the total depth of the served queues; reason is empty
// when healthy.
func (p *Policy) QueueDepth(total int64) (level domain.CheckLevel, reason string) {
	switch {
	case total >= QueueUnhealthyAt:
		return domain.CheckUnhealthy, fmt.Sprintf("%d messages waiting in served queues", total)
	case total >= QueueDegradedAt:
		return domain.CheckDegraded, fmt.Sprintf("%d messages waiting in served queues", total)
	}
	return domain.CheckHealthy, ""
}
