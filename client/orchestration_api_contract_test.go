package client_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/httpclient/orchestrationapitest"
	"github.com/tasker-systems/tasker-go/client"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestOrchestrationAPIContract: the public client, built the way its
// documentation says (BaseURL only), keeps the OrchestrationAPI port's
// contract, so a program may hand it wherever the port is expected.
func TestOrchestrationAPIContract(t *testing.T) {
	orchestrationapitest.Run(t, func(t *testing.T, baseURL string) ports.OrchestrationAPI {
		c, err := client.New(client.Config{BaseURL: baseURL})
		require.NoError(t, err)
		t.Cleanup(c.CloseIdleConnections)
		return c
	})
}
