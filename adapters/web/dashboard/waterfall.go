package dashboard

import (
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/ports"
)

// wfSegment is one stretch of a step's life in one state.
type wfSegment struct {
	State       string
	Left, Width float64 // percent of the task's time span
	Title       string
}

// wfRow is one step's line of the waterfall.
type wfRow struct {
	Step     string
	Attempts int
	Segments []wfSegment
	// Total is the time from the step's first to its last transition.
	Total string
}

// waterfall turns the step transitions into rows on a shared time axis from
// the task's creation to end (its last transition, or now while it runs):
// each transition opens a segment in its to_state that lasts until the next
// one, so retries show as repeated enqueued/in_progress stretches. The final
// state gets a thin mark rather than a bar.
func waterfall(steps []ports.StepView, trans []ports.StepTransition, start, end time.Time) []wfRow {
	byStep := map[uuid.UUID][]ports.StepTransition{}
	for _, t := range trans {
		byStep[t.StepUUID] = append(byStep[t.StepUUID], t)
		if t.CreatedAt.After(end) {
			end = t.CreatedAt
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Millisecond
	}
	pct := func(t time.Time) float64 {
		p := float64(t.Sub(start)) / float64(span) * 100
		return min(max(p, 0), 100)
	}
	type keyed struct {
		first time.Time
		row   wfRow
	}
	var rows []keyed
	for _, s := range steps {
		ts := byStep[s.WorkflowStepUUID]
		r := wfRow{Step: s.Name, Attempts: s.Attempts}
		first := s.CreatedAt
		for i, t := range ts {
			next := end
			if i+1 < len(ts) {
				next = ts[i+1].CreatedAt
			}
			seg := wfSegment{State: t.ToState, Left: pct(t.CreatedAt),
				Title: t.ToState + " at " + t.CreatedAt.Format("15:04:05.000")}
			if i+1 < len(ts) {
				seg.Width = max(pct(next)-seg.Left, 0.4)
				seg.Title += " for " + next.Sub(t.CreatedAt).Round(time.Millisecond).String()
			} else {
				seg.Width = 0.8
			}
			r.Segments = append(r.Segments, seg)
		}
		if len(ts) > 0 {
			first = ts[0].CreatedAt
			r.Total = ts[len(ts)-1].CreatedAt.Sub(first).Round(time.Millisecond).String()
		}
		rows = append(rows, keyed{first: first, row: r})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].first.Before(rows[j].first) })
	out := make([]wfRow, len(rows))
	for i, k := range rows {
		out[i] = k.row
	}
	return out
}
