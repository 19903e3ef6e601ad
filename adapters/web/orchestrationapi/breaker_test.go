package orchestrationapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
)

// The breaker state in /health/detailed is the database breaker's: closed
// while pings succeed, open after the threshold of straight failures (and
// pings then stop reaching the database), closed again after a successful
// trial ping once the open timeout passed.
func TestDetailedHealthReportsTheDatabaseBreaker(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var pings atomic.Int32
	breaker := web.NewBreakerPinger(pingFunc(func(context.Context) error {
		pings.Add(1)
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}), 3, 50*time.Millisecond)
	s := web.New(web.Config{}, web.Deps{Tasks: &fakeTasks{running: true}, Templates: fakeTemplates{},
		DB: breaker, Breaker: breaker, Log: zap.NewNop()})
	state := func() string {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health/detailed", nil))
		require.Equal(t, http.StatusOK, w.Code)
		var body struct {
			Info struct {
				State string `json:"circuit_breaker_state"`
			} `json:"info"`
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
		return body.Info.State
	}
	require.Equal(t, web.BreakerClosed, state())
	down.Store(true)
	for range 3 {
		state()
	}
	require.Equal(t, web.BreakerOpen, state())
	before := pings.Load()
	state()
	require.Equal(t, before, pings.Load(), "an open breaker does not ping the database")

	down.Store(false)
	time.Sleep(60 * time.Millisecond)
	require.Equal(t, web.BreakerClosed, state(), "a successful trial ping closes it")
}
