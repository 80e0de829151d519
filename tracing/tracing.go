// Package tracing wires optional OpenTelemetry tracing through jobgate: an
// HTTP request's span is the parent of the workflow it starts, which is the
// parent of the activities that do the work, across processes (the context
// travels in Temporal headers).
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// propagator carries the trace context in W3C headers, in HTTP and in
// Temporal headers alike.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// NewOTLP returns a tracer provider exporting spans over OTLP/gRPC to
// endpoint ("collector:4317"), and a function that flushes and stops it.
func NewOTLP(ctx context.Context, endpoint, role string, insecure bool) (*sdktrace.TracerProvider, func(context.Context) error, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint)}
	if insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exporter, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter for %s: %w", endpoint, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(5*time.Second)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("jobgate"), semconv.ServiceInstanceID(role))),
	)
	return tp, tp.Shutdown, nil
}

// Temporal returns the interceptor that traces workflow starts, workflows
// and activities with tp; give it to the Temporal client, and the workers
// built on that client use it too.
func Temporal(tp trace.TracerProvider) (interceptor.Interceptor, error) {
	return temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tp.Tracer("jobgate/temporal"),
		TextMapPropagator: propagator,
	})
}

// HTTP wraps h so that every request gets a server span named after its
// method and path, continuing a trace the caller sent in traceparent.
func HTTP(h http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, "jobgate",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}
