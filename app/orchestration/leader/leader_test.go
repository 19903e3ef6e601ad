package leader_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasker-systems/tasker-go/app/orchestration/leader"
	"github.com/tasker-systems/tasker-go/ports"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// answer is one TryLead reply.
type answer struct {
	leading bool
	err     error
}

// scripted is a ports.Leadership whose TryLead replies what the test sends.
type scripted struct {
	answers  chan answer
	released chan struct{}
}

func (s *scripted) TryLead(ctx context.Context) (bool, error) {
	select {
	case a := <-s.answers:
		return a.leading, a.err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

func (s *scripted) Release(context.Context) error {
	close(s.released)
	return nil
}

// ticks is a ports.Clock whose waits end when the test sends a tick.
type ticks chan time.Time

func (ticks) Now() time.Time                         { return time.Time{} }
func (c ticks) After(time.Duration) <-chan time.Time { return c }

// gauge records what the election reports to tasker_orchestration_leader.
type gauge struct {
	ports.NopOrchestrationMetrics
	mu   sync.Mutex
	sets []bool
}

func (g *gauge) Leader(leading bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sets = append(g.sets, leading)
}

func (g *gauge) values() []bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]bool(nil), g.sets...)
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestElectionFollowsTheLeadership: the election stands by until it wins,
// wakes its consumers when it does, gives way when another instance leads,
// consumes when the election fails, and releases at shutdown; the gauge
// follows every change and nothing else.
func TestElectionFollowsTheLeadership(t *testing.T) {
	lead := &scripted{answers: make(chan answer), released: make(chan struct{})}
	clock := make(ticks)
	g := &gauge{}
	e := leader.New(leader.Config{}, leader.Deps{Leadership: lead, Metrics: g, Clock: clock})
	require.False(t, e.Leading(), "a standby until its first election")
	require.Equal(t, []bool{false}, g.values())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	// elect answers one election; when the tick is taken the answer is recorded.
	elect := func(leading bool, err error) {
		lead.answers <- answer{leading, err}
		clock <- time.Time{}
	}

	elect(false, nil)
	require.False(t, e.Leading())
	gained := e.Gained()
	require.False(t, closed(gained))

	elect(true, nil)
	require.True(t, e.Leading())
	require.True(t, closed(gained), "winning wakes the consumers")
	require.False(t, closed(e.Gained()), "the next Gained waits for the next win")

	elect(true, nil)
	elect(false, nil)
	require.False(t, e.Leading(), "another instance took over")

	elect(false, errors.New("connection refused"))
	require.True(t, e.Leading(), "a failed election consumes rather than stall")
	elect(true, errors.New("still refused"))
	require.True(t, e.Leading())

	cancel()
	<-done
	require.NoError(t, e.Release(context.Background()))
	require.True(t, closed(lead.released))
	require.False(t, e.Leading())
	require.Equal(t, []bool{false, true, false, true, false}, g.values())
}

// TestWithoutLeadershipTheInstanceLeads: no Leadership, no election: the
// instance consumes as it always did.
func TestWithoutLeadershipTheInstanceLeads(t *testing.T) {
	g := &gauge{}
	e := leader.New(leader.Config{}, leader.Deps{Metrics: g})
	require.True(t, e.Leading())
	e.Run(context.Background()) // returns at once
	require.NoError(t, e.Release(context.Background()))
	require.True(t, e.Leading())
	require.Equal(t, []bool{true}, g.values())
}
