package sdk_test

import (
	"context"
	"github.com/skytrail/skytrail/sdk/internal/benchcpu"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/sdk"
	"github.com/skytrail/skytrail/sdk/sampling"
)

// The benchmarks compare the SDK's hot path with the bare OpenTelemetry SDK
// set up the usual way (ParentBased(AlwaysSample), W3C tracecontext and
// baggage). Both end spans into a synchronous processor that discards: the
// batch processor Start installs is the same in both, and its goroutine's
// share of the CPU would blur a difference of a few nanoseconds.
// docs/benchmarks.md has results.

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func bareProvider(b *testing.B) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithSyncer(discard{}),
		sdktrace.WithResource(resource.Empty()),
	)
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// skytrailProvider is what sdk.Start builds, with perSecond as the sampler's
// limit; high enough, every root span is kept, as in the bare SDK.
func skytrailProvider(b *testing.B, perSecond float64) *sdktrace.TracerProvider {
	adaptive, err := sampling.NewAdaptive(perSecond)
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(adaptive)),
		sdktrace.WithSyncer(discard{}),
		sdktrace.WithResource(resource.Empty()),
	)
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

func benchRootSpans(b *testing.B, tp *sdktrace.TracerProvider) {
	tracer := tp.Tracer("bench")
	ctx := context.Background()
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		_, span := tracer.Start(ctx, "GET /orders/{id}")
		span.End()
	}
	stop()
}

// BenchmarkRootSpan starts and ends root spans: where the head sampler runs.
func BenchmarkRootSpan(b *testing.B) {
	b.Run("bare-otel", func(b *testing.B) { benchRootSpans(b, bareProvider(b)) })
	b.Run("skytrail-all-kept", func(b *testing.B) { benchRootSpans(b, skytrailProvider(b, 1e12)) })
	// Far beyond 100/s most spans are dropped: the sampler's peak path.
	b.Run("skytrail-at-peak", func(b *testing.B) { benchRootSpans(b, skytrailProvider(b, 100)) })
}

func traceparentHeaders() http.Header {
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	return h
}

func sw8Headers() http.Header {
	h := http.Header{}
	h.Set("sw8", "1-NGJmOTJmMzU3N2IzNGRhNmEzY2U5MjlkMGUwZTQ3MzY=-MDBmMDY3YWEwYmE5MDJiNw==-0-Z2F0ZXdheQ==-Z3ctMQ==-L2NoZWNrb3V0-b3JkZXJzOjgwODA=")
	return h
}

// benchServerSpans extracts the caller's context from request headers and
// starts and ends the server span under it: the per-request hot path.
func benchServerSpans(b *testing.B, tp *sdktrace.TracerProvider, prop propagation.TextMapPropagator, h http.Header) {
	tracer := tp.Tracer("bench")
	carrier := propagation.HeaderCarrier(h)
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		ctx := prop.Extract(context.Background(), carrier)
		_, span := tracer.Start(ctx, "GET /orders/{id}", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
	}
	stop()
}

func bareProp() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// BenchmarkServerSpan is a request arriving with traceparent: the SDK's
// propagator also looks for sw8 and sw8-correlation.
func BenchmarkServerSpan(b *testing.B) {
	b.Run("bare-otel", func(b *testing.B) {
		benchServerSpans(b, bareProvider(b), bareProp(), traceparentHeaders())
	})
	b.Run("skytrail", func(b *testing.B) {
		benchServerSpans(b, skytrailProvider(b, 1e12), sdk.DefaultPropagator(nil), traceparentHeaders())
	})
	// A request from a SkyWalking agent: decoding sw8 and hashing IDs, which
	// the bare SDK cannot do at all (it would start a new trace).
	b.Run("skytrail-from-sw8", func(b *testing.B) {
		benchServerSpans(b, skytrailProvider(b, 1e12), sdk.DefaultPropagator(nil), sw8Headers())
	})
}

// BenchmarkInject is an outgoing call: the SDK writes sw8 besides traceparent.
func BenchmarkInject(b *testing.B) {
	run := func(b *testing.B, prop propagation.TextMapPropagator) {
		ctx, span := bareProvider(b).Tracer("bench").Start(context.Background(), "GET /orders/{id}")
		defer span.End()
		h := http.Header{}
		carrier := propagation.HeaderCarrier(h)
		b.ReportAllocs()
		stop := benchcpu.Start(b)
		for b.Loop() {
			prop.Inject(ctx, carrier)
		}
		stop()
	}
	res := resource.NewSchemaless(attribute.String("service.name", "orders"), attribute.String("service.instance.id", "orders-1"))
	b.Run("bare-otel", func(b *testing.B) { run(b, bareProp()) })
	b.Run("skytrail", func(b *testing.B) { run(b, sdk.DefaultPropagator(res)) })
}

// BenchmarkClock is the cost of the one clock read the sampler makes per root span.
func BenchmarkClock(b *testing.B) {
	epoch := time.Now()
	var d time.Duration
	for b.Loop() {
		d += time.Since(epoch)
	}
	_ = d
}
