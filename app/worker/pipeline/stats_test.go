package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/app/worker/outcome"
	"github.com/tasker-systems/tasker-go/domain"
)

func TestStatsCountsRatesAndRecentErrors(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	st := newStats(clock)
	b := outcome.Builder{}
	st.inflight("ns", 1)
	st.inflight("ns", 1)
	st.inflight("ns", -1)
	for i := 0; i < 30; i++ {
		st.finished("ns", "cb", "s", b.Success(uuid.New(), t0, t0.Add(10*time.Millisecond), successOf(1)))
	}
	for i := 0; i < RecentErrorsKept+5; i++ {
		st.finished("other", "cf", fmt.Sprint("s", i), b.WorkerFailure(uuid.New(), t0, t0.Add(30*time.Millisecond), "boom", fmt.Sprint(i)))
	}
	s := st.snapshot()
	require.Equal(t, uint64(55), s.Processed)
	require.Equal(t, uint64(30), s.Succeeded)
	require.Equal(t, uint64(25), s.Failed)
	require.InDelta(t, (30*10.0+25*30.0)/55, s.AverageDurationMs, 0.001)
	require.InDelta(t, 55.0/60, s.RatePerSecond, 0.001)
	require.Equal(t, 1, s.InFlight)
	require.Equal(t, 1, s.Namespaces["ns"].Active)
	require.InDelta(t, 30.0/60, s.Namespaces["ns"].RatePerSecond, 0.001)
	require.Len(t, s.RecentErrors, RecentErrorsKept)
	require.Equal(t, fmt.Sprint(RecentErrorsKept+4), s.RecentErrors[0].Message, "newest first")
	require.Equal(t, []domain.WorkerHandlerStats{
		{Namespace: "ns", Callable: "cb", Success: 30, LastUsed: s.Handlers[0].LastUsed},
		{Namespace: "other", Callable: "cf", Failure: 25, LastUsed: s.Handlers[1].LastUsed},
	}, s.Handlers)

	clock.Advance(61 * time.Second)
	s = st.snapshot()
	require.Zero(t, s.RatePerSecond, "the rate covers the last minute only")
	require.Zero(t, s.Namespaces["ns"].RatePerSecond)
	require.Equal(t, uint64(55), s.Processed, "totals stay")
	require.Equal(t, domain.ResultStatusFailed, b.WorkerFailure(uuid.New(), t0, t0, "x", "y").Status)
}
