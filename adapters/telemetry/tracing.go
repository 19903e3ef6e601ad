package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// Values of OTEL_TRACES_EXPORTER understood by SetupTracing (the
// OpenTelemetry SDK environment specification).
const (
	ExporterNone    = "none"
	ExporterOTLP    = "otlp"
	ExporterConsole = "console"
	// ExporterStdout is accepted as an alias of console.
	ExporterStdout = "stdout"
)

// Batch span processor sizes (spans per export, spans queued before drops).
const (
	DefaultExportBatchSize = 2048
	DefaultExportQueueSize = 8192
)

// TracingShutdown flushes and stops the tracer provider.
type TracingShutdown func(context.Context) error

// SetupTracing installs the global tracer provider and W3C trace-context
// propagator from the standard OTEL_* environment variables, so operators
// configure tracing like any other OpenTelemetry service:
//
//   - OTEL_TRACES_EXPORTER: none (the default: no SDK is installed, the
//     global provider stays the API's no-op and tracing costs nothing),
//     otlp, or console/stdout (spans as JSON on standard output);
//   - OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL:
//     http/protobuf (default) or grpc; the endpoint, headers, timeout and TLS
//     come from the exporter's own OTEL_EXPORTER_OTLP_* variables;
//   - OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES name the service
//     (service defaults to serviceName); OTEL_TRACES_SAMPLER(_ARG) sample.
//
// It reports whether tracing is on. An unknown exporter or protocol is an
// error, so a typo does not silently disable tracing.
func SetupTracing(ctx context.Context, serviceName string, getenv func(string) string) (bool, TracingShutdown, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	noop := func(context.Context) error { return nil }
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	var exp sdktrace.SpanExporter
	var err error
	switch name {
	case "", ExporterNone:
		return false, noop, nil
	case ExporterConsole, ExporterStdout:
		exp, err = stdouttrace.New()
	case ExporterOTLP:
		proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
		if proto == "" {
			proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
		}
		switch proto {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			return false, noop, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: must be http/protobuf or grpc", proto)
		}
	default:
		return false, noop, fmt.Errorf("OTEL_TRACES_EXPORTER %q: must be none, otlp or console", name)
	}
	if err != nil {
		return false, noop, fmt.Errorf("trace exporter %s: %w", name, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(serviceName)))
	if err != nil {
		return false, noop, fmt.Errorf("trace resource: %w", err)
	}
	if envRes, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, envRes); err == nil {
			res = merged // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		}
	}
	// Larger batches than the SDK default (512): a busy worker ends a few
	// thousand spans a second, and fewer, larger exports cost less per span.
	// The standard OTEL_BSP_* variables still override these.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(DefaultExportBatchSize),
		sdktrace.WithMaxQueueSize(DefaultExportQueueSize)), sdktrace.WithResource(res))
	InstallTracerProvider(tp)
	return true, tp.Shutdown, nil
}

// TracingFlushTimeout bounds the flush of the last spans when a service
// stops, so an unreachable collector cannot hold the process past its
// shutdown deadline.
const TracingFlushTimeout = 5 * time.Second

// StartTracing is SetupTracing for a service's composition root. Besides
// whether tracing is on, it returns stop, for a defer: stop flushes the
// spans still queued within TracingFlushTimeout, and ignores a failed
// flush, since at exit there is nothing left to do about it.
func StartTracing(ctx context.Context, serviceName string, getenv func(string) string) (on bool, stop func(), err error) {
	on, shutdown, err := SetupTracing(ctx, serviceName, getenv)
	if err != nil {
		return false, func() {}, err
	}
	return on, func() {
		sctx, cancel := context.WithTimeout(context.Background(), TracingFlushTimeout)
		defer cancel()
		_ = shutdown(sctx)
	}, nil
}

// InstallTracerProvider makes tp the global provider with the W3C trace
// context propagator (tests install one with an in-memory recorder).
func InstallTracerProvider(tp *sdktrace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}
