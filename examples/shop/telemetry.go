package shop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
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
	tracer trace.Tracer
	// log writes the service's log lines over OTLP through OpenTelemetry's
	// slog bridge: a line logged with a span's context carries its trace.
	log        *slog.Logger
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
	// Logs as sdk.WithLogs sets them up, for this service alone.
	logOpts := []otlploggrpc.Option{otlploggrpc.WithEndpoint(cfg.OTLPEndpoint), otlploggrpc.WithInsecure()}
	if cfg.TLS != nil {
		logOpts[1] = otlploggrpc.WithTLSCredentials(credentials.NewTLS(cfg.TLS))
	}
	if cfg.OTLPHeaders != nil {
		logOpts = append(logOpts, otlploggrpc.WithHeaders(cfg.OTLPHeaders))
	}
	lexp, err := otlploggrpc.New(ctx, logOpts...)
	if err != nil {
		_ = tp.Shutdown(ctx)
		return nil, fmt.Errorf("%s: creating the OTLP log exporter for %s: %w", service, cfg.OTLPEndpoint, err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(lexp, sdklog.WithExportInterval(cfg.BatchTimeout))))
	// W3C traceparent and SkyWalking sw8 both ways: what lets order's calls
	// continue in payment's go2sky agent.
	prop := sdk.DefaultPropagator(res)
	return &telemetry{
		tracer:     tp.Tracer("github.com/skytrail/skytrail/examples/shop/" + service),
		log:        slog.New(otelslog.NewHandler("github.com/skytrail/skytrail/examples/shop/"+service, otelslog.WithLoggerProvider(lp))),
		propagator: prop,
		httpOpts:   []tracehttp.Option{tracehttp.WithOtelhttpOptions(otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))},
		shutdown: func(ctx context.Context) error {
			return errors.Join(tp.Shutdown(ctx), lp.Shutdown(ctx))
		},
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
