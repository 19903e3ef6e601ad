package httpclient_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient"
	"github.com/tasker-systems/tasker-go/adapters/httpclient/orchestrationapitest"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestOrchestrationAPIContract runs the OrchestrationAPI port's contract
// suite against the HTTP client with its default retries and breaker.
func TestOrchestrationAPIContract(t *testing.T) {
	orchestrationapitest.Run(t, func(t *testing.T, baseURL string) ports.OrchestrationAPI {
		cfg := httpclient.DefaultConfig()
		cfg.BaseURL = baseURL
		c, err := httpclient.New(cfg)
		require.NoError(t, err)
		t.Cleanup(c.CloseIdleConnections)
		return c
	})
}
