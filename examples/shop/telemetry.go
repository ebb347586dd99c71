package shop

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/skytrail/skytrail/sdk"
	"github.com/skytrail/skytrail/sdk/tracehttp"
)

// telemetry is what an OpenTelemetry-instrumented service holds: its
// tracer, the propagator for headers it writes itself (queue messages), and
// the wrappers' options that make them use both.
//
// A service in a process of its own needs none of this: it calls
//
//	shutdown, err := sdk.Start(ctx, sdk.WithServiceName("order"))
//
// once in main, and the wrappers use the global tracer provider and
// propagator sdk.Start installs. Here three services share one process, so
// each builds its own provider, as sdk.Start does, and passes it on.
type telemetry struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	httpOpts   []tracehttp.Option
	shutdown   func(context.Context) error
}

func newTelemetry(ctx context.Context, service string, cfg Config) (*telemetry, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint), otlptracegrpc.WithInsecure()}
	if cfg.TLS != nil {
		opts[1] = otlptracegrpc.WithTLSCredentials(credentials.NewTLS(cfg.TLS))
	}
	if cfg.OTLPHeaders != nil {
		opts = append(opts, otlptracegrpc.WithHeaders(cfg.OTLPHeaders))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: creating the OTLP exporter for %s: %w", service, cfg.OTLPEndpoint, err)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(
			semconv.ServiceName(service),
			semconv.ServiceInstanceID(service+"-1"),
			semconv.ServiceVersion("1.0.0"),
			semconv.DeploymentEnvironmentNameKey.String("demo"),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: describing the service: %w", service, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(cfg.BatchTimeout)),
	)
	// W3C traceparent and SkyWalking sw8 both ways: what lets order's calls
	// continue in payment's go2sky agent.
	prop := sdk.DefaultPropagator(res)
	return &telemetry{
		tracer:     tp.Tracer("github.com/skytrail/skytrail/examples/shop/" + service),
		propagator: prop,
		httpOpts:   []tracehttp.Option{tracehttp.WithOtelhttpOptions(otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))},
		shutdown:   tp.Shutdown,
	}, nil
}

// handler traces the requests mux serves, continuing the caller's trace.
func (t *telemetry) handler(mux *http.ServeMux) http.Handler {
	return tracehttp.NewHandler(mux, t.httpOpts...)
}

// client makes traced calls that carry the trace to the callee.
func (t *telemetry) client() *http.Client {
	return tracehttp.NewClient(t.httpOpts...)
}
