package telemetry_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"

	"github.com/tasker-systems/tasker-go/adapters/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// SetupTracing follows OTEL_TRACES_EXPORTER: off by default (the global
// provider is left alone), a typo is an error, otlp/console install an SDK.
func TestSetupTracingFromEnvironment(t *testing.T) {
	ctx := context.Background()
	before := otel.GetTracerProvider()
	for _, e := range []map[string]string{{}, {"OTEL_TRACES_EXPORTER": "none"}} {
		on, shutdown, err := telemetry.SetupTracing(ctx, "svc", env(e))
		require.NoError(t, err)
		require.False(t, on)
		require.NoError(t, shutdown(ctx))
		require.Same(t, before, otel.GetTracerProvider(), "off: nothing installed")
	}
	for _, e := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
	} {
		on, _, err := telemetry.SetupTracing(ctx, "svc", env(e))
		require.Error(t, err, "%v", e)
		require.False(t, on)
	}
	t.Cleanup(func() { otel.SetTracerProvider(before) })
	for _, e := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		{"OTEL_TRACES_EXPORTER": "console"},
	} {
		on, shutdown, err := telemetry.SetupTracing(ctx, "svc", env(e))
		require.NoError(t, err, "%v", e)
		require.True(t, on)
		require.NotSame(t, before, otel.GetTracerProvider())
		sctx, cancel := context.WithTimeout(ctx, 0)
		_ = shutdown(sctx) // nothing listens on :1; shutting down must not hang
		cancel()
	}
}

// StartTracing passes SetupTracing's answer through and gives a stop that
// can always be deferred: a no-op when off or on error, a bounded flush when on.
func TestStartTracing(t *testing.T) {
	ctx := context.Background()
	before := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(before) })

	on, stop, err := telemetry.StartTracing(ctx, "svc", env(map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}))
	require.Error(t, err)
	require.False(t, on)
	require.NotNil(t, stop)
	stop()

	on, stop, err = telemetry.StartTracing(ctx, "svc", env(nil))
	require.NoError(t, err)
	require.False(t, on)
	stop()
	require.Same(t, before, otel.GetTracerProvider(), "off: nothing installed")

	on, stop, err = telemetry.StartTracing(ctx, "svc", env(map[string]string{
		"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}))
	require.NoError(t, err)
	require.True(t, on)
	require.NotSame(t, before, otel.GetTracerProvider())
	stop() // nothing listens on :1; the flush is bounded, so stop returns
}
