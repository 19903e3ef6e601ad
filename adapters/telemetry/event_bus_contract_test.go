package telemetry_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/eventbus"
	"github.com/tasker-systems/tasker-go/adapters/eventbus/eventbustest"
	"github.com/tasker-systems/tasker-go/adapters/telemetry"
	"github.com/tasker-systems/tasker-go/ports"
)

// TestInstrumentedEventBusContract: the metrics wrapper the composition roots
// hand to the pipeline and the dispatcher keeps the EventBus port's contract
// of the bus it wraps.
func TestInstrumentedEventBusContract(t *testing.T) {
	eventbustest.Run(t, func(t *testing.T, buffer int) ports.EventBus {
		m, err := telemetry.NewWorkerMetrics(telemetry.WorkerInfo{}, telemetry.WorkerSources{})
		require.NoError(t, err)
		return m.InstrumentEventBus(eventbus.New(eventbus.Config{PublisherBufferSize: buffer, SubscriberBufferSize: buffer}))
	})
}
