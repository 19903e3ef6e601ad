package workerapi

import (
	"sync"
	"time"

	"github.com/tasker-systems/tasker-go/domain"
)

// rateWindow is the averaging window of per-namespace processing rates
// (contract §8.2: steps finished per second, 1-minute average).
const rateWindow = time.Minute

// rateSampleEvery bounds the samples kept per namespace to ~60.
const rateSampleEvery = time.Second

// rateTracker derives per-namespace processing rates from the cumulative
// processed counts of successive snapshots, for providers that report
// totals only. Samples are taken by the background monitor and by every
// namespace request, and kept for one window.
type rateTracker struct {
	mu      sync.Mutex
	samples map[string][]rateSample
}

type rateSample struct {
	at        time.Time
	processed uint64
}

func newRateTracker() *rateTracker { return &rateTracker{samples: map[string][]rateSample{}} }

// observe records the counts at now and returns each namespace's rate over
// the oldest sample still inside the window (0 until two samples exist).
func (r *rateTracker) observe(now time.Time, namespaces map[string]domain.WorkerNamespaceStats) map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]float64, len(namespaces))
	for ns, st := range namespaces {
		s := r.samples[ns]
		// At most one stored sample per second, however often it is asked.
		if len(s) == 0 || now.Sub(s[len(s)-1].at) >= rateSampleEvery {
			s = append(s, rateSample{at: now, processed: st.Processed})
		}
		// Keep one sample at or beyond the window edge so a full minute is covered.
		for len(s) > 2 && now.Sub(s[1].at) >= rateWindow {
			s = s[1:]
		}
		r.samples[ns] = s
		first := s[0]
		if dt := now.Sub(first.at).Seconds(); dt > 0 && st.Processed >= first.processed {
			out[ns] = float64(st.Processed-first.processed) / dt
		}
	}
	return out
}
