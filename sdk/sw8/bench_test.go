package sw8

import (
	"context"
	"github.com/skytrail/skytrail/sdk/internal/benchcpu"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// BenchmarkExtractWithoutSW8 is the cost sw8 adds to every request that
// arrives with traceparent only.
func BenchmarkExtractWithoutSW8(b *testing.B) {
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	carrier := propagation.HeaderCarrier(h)
	p := New()
	ctx := context.Background()
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		_ = p.Extract(ctx, carrier)
	}
	stop()
}

func BenchmarkExtract(b *testing.B) {
	h := http.Header{}
	h.Set("sw8", "1-NGJmOTJmMzU3N2IzNGRhNmEzY2U5MjlkMGUwZTQ3MzY=-MDBmMDY3YWEwYmE5MDJiNw==-0-Z2F0ZXdheQ==-Z3ctMQ==-L2NoZWNrb3V0-b3JkZXJzOjgwODA=")
	carrier := propagation.HeaderCarrier(h)
	p := New()
	ctx := context.Background()
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		_ = p.Extract(ctx, carrier)
	}
	stop()
}

func BenchmarkInject(b *testing.B) {
	tp := sdktrace.NewTracerProvider()
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("b").Start(context.Background(), "GET /orders/{id}")
	defer span.End()
	ctx = ContextWithPeer(ctx, "inventory:8080")
	p := New(WithService("orders", "orders-1"))
	h := http.Header{}
	carrier := propagation.HeaderCarrier(h)
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		p.Inject(ctx, carrier)
	}
	stop()
}
