package jaeger

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// otlpSink is an OTLP/gRPC trace service that keeps what it receives, so
// tests see spans exactly as the real SDK puts them on the wire.
type otlpSink struct {
	ptraceotlp.UnimplementedGRPCServer
	mu  sync.Mutex
	got ptrace.Traces
}

func (s *otlpSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.Traces().ResourceSpans().MoveAndAppendTo(s.got.ResourceSpans())
	return ptraceotlp.NewExportResponse(), nil
}

// startSink serves an otlpSink on 127.0.0.1 and returns its address.
func startSink(t *testing.T) (*otlpSink, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &otlpSink{got: ptrace.NewTraces()}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, sink)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return sink, lis.Addr().String()
}

// sdkProvider is a real SDK tracer provider exporting over OTLP/gRPC to addr.
func sdkProvider(t *testing.T, addr string, res ...attribute.KeyValue) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(resource.NewSchemaless(res...)))
}

// scenario is what sdkScenario recorded, for assertions.
type scenario struct {
	td          ptrace.Traces
	base        time.Time
	root        trace.SpanContext
	query       trace.SpanContext
	reserve     trace.SpanContext
	retry       trace.SpanContext
	linked      trace.SpanContext
	big         int64
	rootDur     time.Duration
	eventOffset time.Duration
}

// sdkScenario records one trace with the real OpenTelemetry SDK across three
// providers: checkout (host h1) serves GET /orders and queries a database,
// failing; inventory reserves stock under the query; a second checkout
// provider with the same resource retries. The root links to another trace.
func sdkScenario(t *testing.T, base time.Time) scenario {
	t.Helper()
	sink, addr := startSink(t)
	checkoutRes := []attribute.KeyValue{attribute.String("service.name", "checkout"), attribute.String("service.version", "1.2.3"), attribute.String("host.name", "h1")}
	checkout := sdkProvider(t, addr, checkoutRes...)
	inventory := sdkProvider(t, addr, attribute.String("service.name", "inventory"), attribute.Int("process.pid", 42))
	checkout2 := sdkProvider(t, addr, checkoutRes...)

	sc := scenario{base: base, big: 1 << 60, rootDur: 250 * time.Millisecond, eventOffset: 5 * time.Millisecond}
	sc.linked = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		SpanID:     trace.SpanID{0xbb, 1, 2, 3, 4, 5, 6, 7},
		TraceFlags: trace.FlagsSampled,
	})

	tr := checkout.Tracer("skytrail/test", trace.WithInstrumentationVersion("0.1.0"))
	ctx, root := tr.Start(context.Background(), "GET /orders",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(base),
		trace.WithLinks(trace.Link{SpanContext: sc.linked}),
		trace.WithAttributes(
			attribute.String("http.method", "GET"),
			attribute.Int("order.count", 3),
			attribute.Int64("order.big", sc.big),
			attribute.Bool("cache.hit", true),
			attribute.Float64("ratio", 0.25),
			attribute.StringSlice("labels", []string{"a", "b"}),
		))
	root.AddEvent("order.validated", trace.WithTimestamp(base.Add(sc.eventOffset)), trace.WithAttributes(attribute.Int("items", 2)))
	root.SetStatus(codes.Ok, "")

	qctx, query := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(10*time.Millisecond)))
	_, reserve := inventory.Tracer("inventory/db").Start(qctx, "reserve", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(20*time.Millisecond)))
	reserve.End(trace.WithTimestamp(base.Add(30 * time.Millisecond)))
	query.SetStatus(codes.Error, "db timeout")
	query.End(trace.WithTimestamp(base.Add(110 * time.Millisecond)))

	_, retry := checkout2.Tracer("skytrail/test", trace.WithInstrumentationVersion("0.1.0")).Start(ctx, "retry", trace.WithTimestamp(base.Add(120*time.Millisecond)))
	retry.End(trace.WithTimestamp(base.Add(130 * time.Millisecond)))
	root.End(trace.WithTimestamp(base.Add(sc.rootDur)))

	sc.root, sc.query, sc.reserve, sc.retry = root.SpanContext(), query.SpanContext(), reserve.SpanContext(), retry.SpanContext()
	for _, tp := range []*sdktrace.TracerProvider{checkout, inventory, checkout2} {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if n := sink.got.SpanCount(); n != 4 {
		t.Fatalf("sink received %d spans, want 4", n)
	}
	sc.td = sink.got
	return sc
}
