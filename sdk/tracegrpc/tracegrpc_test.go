package tracegrpc

import (
	"context"
	"net"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/skytrail/skytrail/sdk/sw8"
)

func TestGRPCRoundTrip(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(sw8.New(), propagation.TraceContext{}))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})

	type seen struct {
		incoming sw8.Header
		outgoing sw8.Header
		span     trace.SpanContext
	}
	got := make(chan seen, 1)
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		var s seen
		if v := md.Get("sw8"); len(v) == 1 {
			s.incoming, _ = sw8.Parse(v[0])
		}
		// What a call made from this handler would send.
		out := propagation.MapCarrier{}
		sw8.New().Inject(ctx, out)
		s.outgoing, _ = sw8.Parse(out["sw8"])
		s.span = trace.SpanContextFromContext(ctx)
		got <- s
		return h(ctx, req)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(ServerOptions(), grpc.ChainUnaryInterceptor(record))...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), append(DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, root := tp.Tracer("t").Start(context.Background(), "caller")
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	root.End()

	s := <-got
	if s.incoming.AddressUsedAtClient != lis.Addr().String() {
		t.Errorf("sw8 target address %q, want %q", s.incoming.AddressUsedAtClient, lis.Addr())
	}
	if s.span.TraceID() != root.SpanContext().TraceID() {
		t.Error("server span is in another trace")
	}
	if s.outgoing.ParentEndpoint != "grpc.health.v1.Health/Check" {
		t.Errorf("calls from the handler would name endpoint %q", s.outgoing.ParentEndpoint)
	}
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
	}
	want := map[string]bool{"grpc.health.v1.Health/Check": false}
	for _, n := range names {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	if !want["grpc.health.v1.Health/Check"] {
		t.Errorf("spans %q: no span named by the full method", names)
	}
}

func TestPeer(t *testing.T) {
	for in, want := range map[string]string{
		"dns:///orders:50051":        "orders:50051",
		"passthrough:///127.0.0.1:1": "127.0.0.1:1",
		"orders:50051":               "orders:50051",
	} {
		if got := peer(in); got != want {
			t.Errorf("peer(%q) = %q, want %q", in, got, want)
		}
	}
}
