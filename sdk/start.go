// Package sdk sets up OpenTelemetry tracing for a Go service in one call,
// the way SkyTrail (or any OTLP backend) needs it: a resource that names the
// service and a stable instance, an OTLP exporter behind a batch processor,
// W3C and SkyWalking sw8 propagation, and an adaptive parent-based sampler.
//
//	shutdown, err := sdk.Start(ctx, sdk.WithServiceName("checkout"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer shutdown(context.Background())
package sdk

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc/credentials"

	"github.com/skytrail/skytrail/sdk/sampling"
	"github.com/skytrail/skytrail/sdk/sw8"
)

// Start sets up tracing, makes it global (otel.SetTracerProvider,
// otel.SetTextMapPropagator) and returns a shutdown that flushes the spans
// still buffered and stops the exporter; call it before the process exits.
// Start checks once that the endpoint is reachable and logs the outcome; an
// unreachable endpoint is not an error, since the service must run anyway.
func Start(ctx context.Context, opts ...Option) (shutdown func(context.Context) error, err error) {
	c := &config{tracesPerSecond: DefaultTracesPerSecond, startupCheck: DefaultStartupCheck}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	t, err := resolveTarget(c)
	if err != nil {
		return nil, err
	}
	res, err := newResource(ctx, c)
	if err != nil {
		return nil, err
	}
	exp := c.exporter
	if exp == nil {
		otlp, err := newExporter(ctx, c, t)
		if err != nil {
			return nil, err
		}
		if c.startupCheck > 0 {
			checkReachable(ctx, t, c.tlsConfig, c.startupCheck, c.logger)
		}
		exp = otlp
	}
	sampler, stopSampler := c.sampler, func() {}
	if sampler == nil {
		adaptive, err := sampling.NewAdaptive(c.tracesPerSecond)
		if err != nil {
			_ = exp.Shutdown(ctx)
			return nil, fmt.Errorf("skytrail sdk: %w", err)
		}
		sampler, stopSampler = sdktrace.ParentBased(adaptive), adaptive.Stop
	}

	var batchOpts []sdktrace.BatchSpanProcessorOption
	if c.batchTimeout > 0 {
		batchOpts = append(batchOpts, sdktrace.WithBatchTimeout(c.batchTimeout))
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithBatcher(exp, batchOpts...),
	}
	for _, p := range c.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	stopLogs := func(context.Context) error { return nil }
	if c.logs {
		if stopLogs, err = startLogs(ctx, c, t, res); err != nil {
			stopSampler()
			_ = tp.Shutdown(ctx)
			return nil, err
		}
	}

	prop := c.propagator
	if prop == nil {
		prop = DefaultPropagator(res)
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(prop)
	return func(ctx context.Context) error {
		defer stopSampler()
		logErr := stopLogs(ctx)
		if err := tp.Shutdown(ctx); err != nil {
			return err
		}
		return logErr
	}, nil
}

// DefaultPropagator is the propagation Start installs: it extracts either sw8
// or W3C traceparent (traceparent wins when both arrive, as it carries
// tracestate) and injects both, with W3C baggage and sw8-correlation. The
// sw8 parent service and instance come from res.
func DefaultPropagator(res *resource.Resource) propagation.TextMapPropagator {
	var service, instance string
	if res != nil {
		if v, ok := res.Set().Value(semconv.ServiceNameKey); ok {
			service = v.AsString()
		}
		if v, ok := res.Set().Value(semconv.ServiceInstanceIDKey); ok {
			instance = v.AsString()
		}
	}
	// Composite extraction lets later propagators overwrite earlier ones, so
	// sw8 goes first and traceparent, when present, decides.
	return propagation.NewCompositeTextMapPropagator(
		sw8.New(sw8.WithService(service, instance)),
		propagation.TraceContext{},
		propagation.Baggage{},
	)
}

func newExporter(ctx context.Context, c *config, t target) (*otlptrace.Exporter, error) {
	var (
		exp *otlptrace.Exporter
		err error
	)
	switch t.protocol {
	case ProtocolHTTP:
		o := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(t.url.String())}
		if c.tlsConfig != nil && t.url.Scheme == "https" {
			o = append(o, otlptracehttp.WithTLSClientConfig(c.tlsConfig))
		}
		if c.headers != nil {
			o = append(o, otlptracehttp.WithHeaders(c.headers))
		}
		if c.timeout > 0 {
			o = append(o, otlptracehttp.WithTimeout(c.timeout))
		}
		exp, err = otlptracehttp.New(ctx, o...)
	default:
		o := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(t.url.String())}
		if c.tlsConfig != nil && t.url.Scheme == "https" {
			o = append(o, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(c.tlsConfig)))
		}
		if c.headers != nil {
			o = append(o, otlptracegrpc.WithHeaders(c.headers))
		}
		if c.timeout > 0 {
			o = append(o, otlptracegrpc.WithTimeout(c.timeout))
		}
		exp, err = otlptracegrpc.New(ctx, o...)
	}
	if err != nil {
		return nil, fmt.Errorf("skytrail sdk: creating the %s exporter for %s: %w", t.protocol, t.url, err)
	}
	return exp, nil
}
