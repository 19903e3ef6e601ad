package pipeline

import (
	"sort"
	"sync"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

// RecentErrorsKept is how many latest failures the status keeps (the
// worker API's error_details shows the 20 latest, contract §8.2).
const RecentErrorsKept = 20

type handlerKey struct{ ns, callable string }

type stats struct {
	clock  ports.Clock
	mu     sync.Mutex
	s      domain.WorkerStatus
	durMs  float64
	hs     map[handlerKey]*domain.WorkerHandlerStats
	rate   rateBuckets
	nsRate map[string]*rateBuckets
}

// rateBuckets count events per unix second over the last 60 seconds.
type rateBuckets struct {
	sec [60]int64
	n   [60]uint64
}

func (r *rateBuckets) add(now int64) {
	i := now % 60
	if r.sec[i] != now {
		r.sec[i], r.n[i] = now, 0
	}
	r.n[i]++
}

func (r *rateBuckets) perSecond(now int64) float64 {
	var total uint64
	for i := range r.sec {
		if now-r.sec[i] < 60 {
			total += r.n[i]
		}
	}
	return float64(total) / 60
}

func newStats(c ports.Clock) *stats {
	return &stats{clock: c, hs: map[handlerKey]*domain.WorkerHandlerStats{}, nsRate: map[string]*rateBuckets{},
		s: domain.WorkerStatus{Decisions: map[string]uint64{}, LoopTicks: map[string]uint64{}, Namespaces: map[string]domain.WorkerNamespaceStats{}}}
}

func (st *stats) decision(d Decision) {
	st.mu.Lock()
	st.s.Decisions[string(d)]++
	if d == DecisionArchivedPoison {
		st.s.PoisonArchived++
	}
	st.mu.Unlock()
}

func (st *stats) tick(loop string) {
	st.mu.Lock()
	st.s.LoopTicks[loop]++
	st.mu.Unlock()
}

func (st *stats) inflight(ns string, delta int) {
	st.mu.Lock()
	st.s.InFlight += delta
	nss := st.s.Namespaces[ns]
	nss.Active += delta
	st.s.Namespaces[ns] = nss
	st.mu.Unlock()
}

func (st *stats) lateCompletion() {
	st.mu.Lock()
	st.s.LateCompletions++
	st.mu.Unlock()
}

func (st *stats) discarded() {
	st.mu.Lock()
	st.s.Discarded++
	st.mu.Unlock()
}

func (st *stats) finished(ns, callable, stepName string, res domain.StepExecutionResult) {
	now := st.clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Processed++
	st.durMs += float64(res.Metadata.ExecutionTimeMs)
	st.s.LastProcessedAt = &now
	nss := st.s.Namespaces[ns]
	nss.Processed++
	nss.LastProcessed = &now
	var hsEntry *domain.WorkerHandlerStats
	if callable != "" {
		k := handlerKey{ns, callable}
		if hsEntry = st.hs[k]; hsEntry == nil {
			hsEntry = &domain.WorkerHandlerStats{Namespace: ns, Callable: callable}
			st.hs[k] = hsEntry
		}
		hsEntry.LastUsed = &now
	}
	if res.Success {
		st.s.Succeeded++
		nss.Succeeded++
		if hsEntry != nil {
			hsEntry.Success++
		}
	} else {
		st.s.Failed++
		nss.Failed++
		if hsEntry != nil {
			hsEntry.Failure++
		}
		rec := domain.WorkerErrorRecord{At: now, Namespace: ns, StepName: stepName}
		if res.Error != nil {
			rec.Message = res.Error.Message
			if res.Error.ErrorType != nil {
				rec.ErrorType = *res.Error.ErrorType
			}
		}
		st.s.RecentErrors = append([]domain.WorkerErrorRecord{rec}, st.s.RecentErrors...)
		if len(st.s.RecentErrors) > RecentErrorsKept {
			st.s.RecentErrors = st.s.RecentErrors[:RecentErrorsKept]
		}
	}
	st.s.Namespaces[ns] = nss
	st.rate.add(now.Unix())
	r := st.nsRate[ns]
	if r == nil {
		r = &rateBuckets{}
		st.nsRate[ns] = r
	}
	r.add(now.Unix())
}

func (st *stats) snapshot() domain.WorkerStatus {
	now := st.clock.Now().Unix()
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.s
	out.RecentErrors = append([]domain.WorkerErrorRecord(nil), st.s.RecentErrors...)
	out.Decisions = make(map[string]uint64, len(st.s.Decisions))
	for k, v := range st.s.Decisions {
		out.Decisions[k] = v
	}
	out.LoopTicks = make(map[string]uint64, len(st.s.LoopTicks))
	for k, v := range st.s.LoopTicks {
		out.LoopTicks[k] = v
	}
	out.Namespaces = make(map[string]domain.WorkerNamespaceStats, len(st.s.Namespaces))
	for k, v := range st.s.Namespaces {
		if r := st.nsRate[k]; r != nil {
			v.RatePerSecond = r.perSecond(now)
		}
		out.Namespaces[k] = v
	}
	if st.s.Processed > 0 {
		out.AverageDurationMs = st.durMs / float64(st.s.Processed)
	}
	out.RatePerSecond = st.rate.perSecond(now)
	out.Handlers = make([]domain.WorkerHandlerStats, 0, len(st.hs))
	for _, h := range st.hs {
		out.Handlers = append(out.Handlers, *h)
	}
	sort.Slice(out.Handlers, func(i, j int) bool {
		if out.Handlers[i].Namespace != out.Handlers[j].Namespace {
			return out.Handlers[i].Namespace < out.Handlers[j].Namespace
		}
		return out.Handlers[i].Callable < out.Handlers[j].Callable
	})
	return out
}

// Status returns a snapshot of the pipeline's counters: the pipeline's part
// of the worker status (the worker fills in its lifecycle and intake).
func (p *Pipeline) Status() domain.WorkerStatus { return p.stats.snapshot() }

// Tick counts one iteration of a named background loop (liveness).
func (p *Pipeline) Tick(loop string) { p.stats.tick(loop) }
