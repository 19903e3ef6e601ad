package workerapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tasker-systems/tasker-go/domain"
)

func readyError(t *testing.T, res response) ErrorResponse {
	t.Helper()
	require.Equal(t, http.StatusServiceUnavailable, res.code, string(res.body))
	var body ErrorResponse
	require.NoError(t, json.Unmarshal(res.body, &body))
	require.Equal(t, CodeServiceUnavailable, body.Error)
	require.Equal(t, res.header.Get("x-request-id"), body.RequestID)
	return body
}

func TestReadiness_FailingChecksAreNamed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		mutate  func(*env)
		failing []string
		message string
	}{
		{"database down", func(e *env) { e.db.setDown(errors.New("connection refused")) }, []string{CheckDatabase}, "connection refused"},
		{"shutting down", func(e *env) { e.status.update(func(s *domain.WorkerStatus) { s.ShuttingDown = true }) }, []string{CheckCommandProcessor}, "shutting down"},
		{"pipeline stopped", func(e *env) { e.status.update(func(s *domain.WorkerStatus) { s.PipelineRunning = false }) }, []string{CheckCommandProcessor}, "pipeline is not running"},
		{"dispatcher stopped", func(e *env) { e.status.update(func(s *domain.WorkerStatus) { s.DispatcherRunning = false }) }, []string{CheckCommandProcessor}, "dispatcher is not running"},
		{"both", func(e *env) {
			e.db.setDown(errors.New("connection refused"))
			e.status.update(func(s *domain.WorkerStatus) { s.ShuttingDown = true })
		}, []string{CheckCommandProcessor, CheckDatabase}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			tc.mutate(e)
			body := readyError(t, e.do(t, http.MethodGet, "/health/ready"))
			require.Equal(t, "Worker is not ready to process steps", body.Message)
			names := make([]string, 0, len(body.Checks))
			for n, hc := range body.Checks {
				names = append(names, n)
				require.Equal(t, StatusUnhealthy, hc.Status)
				require.NotNil(t, hc.Message)
				require.Contains(t, *hc.Message, tc.message)
			}
			require.ElementsMatch(t, tc.failing, names, "only failing checks, every one of them")
		})
	}
}

func TestReadiness_QueueBacklogIsInformational(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		depth  int64
		status string
	}{{9999, StatusHealthy}, {10000, StatusDegraded}, {50000, StatusUnhealthy}} {
		e := setup(t)
		e.queues.depths["examples_queue"] = tc.depth
		res := e.do(t, http.MethodGet, "/health/ready")
		require.Equal(t, http.StatusOK, res.code)
		var body DetailedHealthResponse
		require.NoError(t, json.Unmarshal(res.body, &body))
		require.Equal(t, tc.status, body.Checks[CheckQueueProcessing].Status, "depth %d", tc.depth)
	}
}

// TestReadiness_ChecksTheDatabaseOnEveryProbe is issue 13 defect 4: the
// readiness probe used a cached check and said 200 for seconds after the
// database went away (and 503 for seconds after it came back), and
// /status/namespaces said healthy with depth 0 during the outage.
func TestReadiness_ChecksTheDatabaseOnEveryProbe(t *testing.T) {
	t.Parallel()
	e := setup(t)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/ready").code)
	e.db.setDown(errors.New("connection refused"))
	e.queues.setErr(errors.New("connection refused"))
	down := e.do(t, http.MethodGet, "/health/ready")
	body := readyError(t, down)
	require.Contains(t, body.Checks, CheckDatabase, "the very next probe sees the outage")
	t.Logf("database down: GET /health/ready → %d %s", down.code, down.body)
	nsRes := e.do(t, http.MethodGet, "/status/namespaces")
	ns := nsRes.list(t)
	require.NotEmpty(t, ns)
	t.Logf("database down: GET /status/namespaces → %d %s", nsRes.code, nsRes.body)
	for _, n := range ns {
		require.Equal(t, "unknown", n["health_status"], "no queue depth is known during an outage")
	}
	e.db.setDown(nil)
	e.queues.setErr(nil)
	up := e.do(t, http.MethodGet, "/health/ready")
	require.Equal(t, http.StatusOK, up.code, "and the next one sees the recovery")
	t.Logf("database back: GET /health/ready → %d", up.code)
	for _, n := range e.do(t, http.MethodGet, "/status/namespaces").list(t) {
		require.Equal(t, StatusHealthy, n["health_status"])
	}
}

func TestLoopStall_FailsReadinessAndLivenessUnlessSaturated(t *testing.T) {
	t.Parallel()
	e := setup(t) // poll interval 100ms → stall after 300ms without a tick
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)
	e.clock.advance(200 * time.Millisecond)
	e.status.update(func(s *domain.WorkerStatus) { s.LoopTicks["intake:other_queue"]++ })
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)

	e.clock.advance(200 * time.Millisecond) // examples_queue: 400ms without a tick
	res := e.do(t, http.MethodGet, "/health/live")
	body := readyError(t, res)
	require.Equal(t, []string{"intake:examples_queue"}, keys(body.Checks))
	body = readyError(t, e.do(t, http.MethodGet, "/health/ready"))
	require.Contains(t, *body.Checks[CheckCommandProcessor].Message, "intake:examples_queue")

	e.status.update(func(s *domain.WorkerStatus) { s.IntakeSaturated = true })
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code, "waiting for a free slot is back-pressure")

	e.clock.advance(time.Second) // saturated for a while, no ticks
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)
	e.status.update(func(s *domain.WorkerStatus) { s.IntakeSaturated = false })
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code, "the end of saturation is not a long silence")
	e.clock.advance(400 * time.Millisecond)
	e.status.update(func(s *domain.WorkerStatus) { s.LoopTicks["intake:other_queue"]++ })
	require.Equal(t, []string{"intake:examples_queue"}, keys(readyError(t, e.do(t, http.MethodGet, "/health/live")).Checks),
		"a loop still silent 3 × poll after saturation ended is wedged")
	e.status.update(func(s *domain.WorkerStatus) { s.LoopTicks["intake:examples_queue"]++ })
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code, "ticking again recovers")
}

func TestLoopStall_OnlyCheckedLoops(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.status.update(func(s *domain.WorkerStatus) { s.LoopTicks["dispatcher"] = 1 })
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)
	e.clock.advance(time.Second)
	e.status.update(func(s *domain.WorkerStatus) {
		s.LoopTicks["intake:examples_queue"]++
		s.LoopTicks["intake:other_queue"]++
	})
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code, "an idle dispatcher is not checked by default")

	hc := testHealth()
	hc.DispatcherStallAfter = 900 * time.Millisecond
	e = setupHealth(t, hc)
	e.status.update(func(s *domain.WorkerStatus) { s.LoopTicks["dispatcher"] = 1 })
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)
	e.clock.advance(time.Second)
	e.status.update(func(s *domain.WorkerStatus) {
		s.LoopTicks["intake:examples_queue"]++
		s.LoopTicks["intake:other_queue"]++
	})
	require.Equal(t, []string{"dispatcher"}, keys(readyError(t, e.do(t, http.MethodGet, "/health/live")).Checks))
}

func keys(m map[string]HealthCheck) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestServe_RealListenerRefreshesAndStops runs the server on a real port:
// the background monitor notices a database outage without any probe
// forcing it, and cancelling the context stops everything (goleak).
func TestServe_RealListenerRefreshesAndStops(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.HealthCheckInterval = 20 * time.Millisecond })
	e.clock = nil
	srv, err := New(e.srv.cfg, Deps{Health: e.srv.deps.Health, Status: e.status, Templates: e.catalog, Handlers: fakeRegistry{}, DB: e.db, Queues: e.queues,
		Metrics: http.NotFoundHandler()})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String() + "/health/ready"
	status := func() int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Eventually(t, func() bool { return status() == http.StatusOK }, 5*time.Second, 10*time.Millisecond)
	e.db.setDown(errors.New("connection refused"))
	require.Eventually(t, func() bool { return status() == http.StatusServiceUnavailable }, 5*time.Second, 10*time.Millisecond)
	e.db.setDown(nil)
	require.Eventually(t, func() bool { return status() == http.StatusOK }, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestListenAndServe_BadAddress(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.BindAddress = "256.0.0.1:bad" })
	err := e.srv.ListenAndServe(context.Background())
	require.ErrorContains(t, err, "listen on 256.0.0.1:bad")
}

func TestLiveness_StoppedLoops(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mut    func(*domain.WorkerStatus)
		failed []string
	}{
		{"dispatcher stopped", func(s *domain.WorkerStatus) { s.DispatcherRunning = false }, []string{"dispatcher"}},
		{"pipeline stopped", func(s *domain.WorkerStatus) { s.PipelineRunning = false }, []string{"pipeline"}},
		{"still starting", func(s *domain.WorkerStatus) { s.Started, s.PipelineRunning, s.DispatcherRunning = false, false, false }, nil},
		{"shutting down", func(s *domain.WorkerStatus) {
			s.ShuttingDown, s.PipelineRunning, s.DispatcherRunning = true, false, false
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.status.update(tc.mut)
			res := e.do(t, http.MethodGet, "/health/live")
			if tc.failed == nil {
				require.Equal(t, http.StatusOK, res.code)
				return
			}
			require.ElementsMatch(t, tc.failed, keys(readyError(t, res).Checks))
		})
	}
}

func TestLiveness_WaitsLongerThanReadiness(t *testing.T) {
	t.Parallel()
	hc := testHealth()
	hc.LivenessStallAfter = 0 // default 30 s
	e := setupHealth(t, hc)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)
	e.clock.advance(5 * time.Second) // intake silent 5 s: a slow read, not yet a wedge
	require.Contains(t, readyError(t, e.do(t, http.MethodGet, "/health/ready")).Checks, CheckCommandProcessor)
	require.Equal(t, http.StatusOK, e.do(t, http.MethodGet, "/health/live").code)
	e.clock.advance(26 * time.Second)
	checks := readyError(t, e.do(t, http.MethodGet, "/health/live")).Checks
	require.ElementsMatch(t, []string{"intake:examples_queue", "intake:other_queue"}, keys(checks))
	require.Contains(t, *checks["intake:examples_queue"].Message, "30s")
}

func TestNamespaces_RateDerivedFromProcessedOverTime(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.status.update(func(s *domain.WorkerStatus) {
		s.Namespaces = map[string]domain.WorkerNamespaceStats{"examples": {Processed: 100}, "other": {Processed: 0}}
	})
	get := func() map[string]NamespaceHealth {
		var nh []NamespaceHealth
		require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, "/status/namespaces").body, &nh))
		out := map[string]NamespaceHealth{}
		for _, n := range nh {
			out[n.Namespace] = n
		}
		return out
	}
	require.Zero(t, get()["examples"].ProcessingRate, "one sample: no rate yet")
	e.clock.advance(30 * time.Second)
	e.status.update(func(s *domain.WorkerStatus) { s.Namespaces["examples"] = domain.WorkerNamespaceStats{Processed: 160} })
	require.InDelta(t, 2.0, get()["examples"].ProcessingRate, 1e-9, "60 steps in 30 s")
	e.clock.advance(60 * time.Second)
	e.status.update(func(s *domain.WorkerStatus) { s.Namespaces["examples"] = domain.WorkerNamespaceStats{Processed: 190} })
	// window keeps the sample at 30 s (the last one at or beyond a minute old): 30 steps in 60 s
	require.InDelta(t, 0.5, get()["examples"].ProcessingRate, 1e-9)
	require.Zero(t, get()["other"].ProcessingRate)
	for i := 0; i < 100; i++ { // a burst of requests stores one sample per second at most
		get()
	}
	require.LessOrEqual(t, len(e.srv.rates.samples["examples"]), 3)

	e.status.update(func(s *domain.WorkerStatus) {
		s.Namespaces["examples"] = domain.WorkerNamespaceStats{Processed: 190, RatePerSecond: 7}
	})
	require.Equal(t, 7.0, get()["examples"].ProcessingRate, "a provider's own rate wins")
}

func TestNamespaces_SingleNamespaceActiveFromInFlight(t *testing.T) {
	t.Parallel()
	e := setup(t, func(c *Config) { c.Namespaces = []string{"examples"} })
	e.status.update(func(s *domain.WorkerStatus) {
		s.InFlight = 4
		s.Namespaces = map[string]domain.WorkerNamespaceStats{"examples": {Processed: 1}}
	})
	var nh []NamespaceHealth
	require.NoError(t, json.Unmarshal(e.do(t, http.MethodGet, "/status/namespaces").body, &nh))
	require.Len(t, nh, 1)
	require.Equal(t, uint64(4), nh[0].ActiveSteps)
}
