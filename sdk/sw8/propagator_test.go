package sw8

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/SkyAPM/go2sky/propagation"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	otelprop "go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func newProvider(t *testing.T) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(resource.NewSchemaless(
		attribute.String("service.name", "checkout"),
		attribute.String("service.instance.id", "checkout-1"),
	)))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// TestInjectDecodesInGo2sky checks what we send with go2sky's own decoder.
func TestInjectDecodesInGo2sky(t *testing.T) {
	ctx, span := newProvider(t).Tracer("t").Start(context.Background(), "client call")
	defer span.End()
	ctx = ContextWithEndpoint(ctx, "GET /orders/{id}")
	ctx = ContextWithPeer(ctx, "127.0.0.1:8080")
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	h := http.Header{}
	New().Inject(ctx, otelprop.HeaderCarrier(h))

	var sc propagation.SpanContext
	if err := sc.Decode(func(k string) (string, error) { return h.Get(k), nil }); err != nil {
		t.Fatalf("go2sky cannot decode %q: %v", h.Get("sw8"), err)
	}
	want := span.SpanContext()
	if !sc.Valid || sc.Sample != 1 || sc.TraceID != want.TraceID().String() ||
		sc.ParentSegmentID != want.SpanID().String() || sc.ParentSpanID != 0 ||
		sc.ParentService != "checkout" || sc.ParentServiceInstance != "checkout-1" ||
		sc.ParentEndpoint != "GET /orders/{id}" || sc.AddressUsedAtClient != "127.0.0.1:8080" {
		t.Errorf("go2sky decoded %+v from span %s/%s", sc, want.TraceID(), want.SpanID())
	}
	if sc.CorrelationContext["tenant"] != "acme" {
		t.Errorf("correlation %v, want tenant=acme", sc.CorrelationContext)
	}
	// And the mapping turns what go2sky will record back into our span.
	if SpanIDFromSegment(sc.ParentSegmentID, sc.ParentSpanID) != want.SpanID() {
		t.Error("parent segment does not map back to the injecting span")
	}
}

func TestInjectDefaultsAndUnsampled(t *testing.T) {
	ctx, span := newProvider(t).Tracer("t").Start(context.Background(), "work")
	defer span.End()
	m := otelprop.MapCarrier{}
	New(WithService("svc", "inst")).Inject(ctx, m)
	h, err := Parse(m["sw8"])
	if err != nil {
		t.Fatal(err)
	}
	if h.ParentService != "svc" || h.ParentServiceInstance != "inst" || h.ParentEndpoint != "work" || h.AddressUsedAtClient != "-" {
		t.Errorf("header %+v", h)
	}
	if _, ok := m["sw8-correlation"]; ok {
		t.Error("sw8-correlation written without baggage")
	}

	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1},
	}))
	m = otelprop.MapCarrier{}
	New().Inject(unsampled, m)
	if len(m) != 0 {
		t.Errorf("unsampled span injected %v", m)
	}
}

// TestExtractFromGo2sky feeds a header encoded by go2sky.
func TestInjectKeepsHeaderShort(t *testing.T) {
	ctx, span := newProvider(t).Tracer("t").Start(context.Background(), "x")
	defer span.End()
	long := strings.Repeat("é", 2000)
	ctx = ContextWithEndpoint(ContextWithPeer(ctx, long), long)
	m := otelprop.MapCarrier{}
	New(WithService(long, long)).Inject(ctx, m)
	h, err := Parse(m["sw8"])
	if err != nil {
		t.Fatalf("%d-byte header: %v", len(m["sw8"]), err)
	}
	if len(h.ParentEndpoint) != 256 || h.ParentEndpoint != strings.Repeat("é", 128) {
		t.Errorf("endpoint clipped to %d bytes", len(h.ParentEndpoint))
	}
}

func TestExtractFromGo2sky(t *testing.T) {
	in := propagation.SpanContext{
		Sample: 1, TraceID: "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001",
		ParentSegmentID: "6e4a083be8da11f1918c9e2254654e93", ParentSpanID: 3,
		ParentService: "gateway", ParentServiceInstance: "gw-1", ParentEndpoint: "/api",
		AddressUsedAtClient: "checkout:8080", CorrelationContext: map[string]string{"tenant": "acme"},
	}
	h := http.Header{}
	if err := in.Encode(func(k, v string) error { h.Set(k, v); return nil }); err != nil {
		t.Fatal(err)
	}
	ctx := New().Extract(context.Background(), otelprop.HeaderCarrier(h))
	sc := trace.SpanContextFromContext(ctx)
	if sc.TraceID().String() != "309b4b52ca8beb8d58fe0c183fde5c7d" || sc.SpanID().String() != "9f340c6cfa4d3f8d" ||
		!sc.IsSampled() || !sc.IsRemote() {
		t.Errorf("extracted %s/%s sampled=%v remote=%v", sc.TraceID(), sc.SpanID(), sc.IsSampled(), sc.IsRemote())
	}
	if got := baggage.FromContext(ctx).Member("tenant").Value(); got != "acme" {
		t.Errorf("baggage tenant=%q", got)
	}
	up, ok := FromContext(ctx)
	if !ok || up.ParentService != "gateway" || up.TraceID != in.TraceID {
		t.Errorf("FromContext = %+v, %v", up, ok)
	}

	// A span continuing this trace injects the caller's original trace ID
	// string, so SkyWalking agents downstream keep it.
	tp := newProvider(t)
	cctx, child := tp.Tracer("t").Start(ctx, "child")
	defer child.End()
	m := otelprop.MapCarrier{}
	New().Inject(cctx, m)
	out, err := Parse(m["sw8"])
	if err != nil || out.TraceID != in.TraceID {
		t.Errorf("re-injected trace ID %q (%v), want %q", out.TraceID, err, in.TraceID)
	}
}

func TestExtractIgnoresBadHeaders(t *testing.T) {
	for _, v := range []string{
		"", "1", "1-a-b-c-d-e-f", "2-MQ==-MQ==-0-YQ==-YQ==-YQ==-YQ==", "1-!!-MQ==-0-YQ==-YQ==-YQ==-YQ==",
		"1--MQ==-0-YQ==-YQ==-YQ==-YQ==", "1-MQ==-MQ==--1-YQ==-YQ==-YQ==-YQ==", "1-MQ==-MQ==-x-YQ==-YQ==-YQ==-YQ==",
		"1-MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=-MQ==-0-YQ==-YQ==-YQ==-YQ==", // all-zero trace ID
		"1-MQ==-MQ==-0-YQ==-YQ==-YQ==-" + strings.Repeat("A", MaxHeaderLen),
	} {
		ctx := New().Extract(context.Background(), otelprop.MapCarrier{"sw8": v})
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			t.Errorf("header %q extracted as %v", v, sc)
		}
	}
}

func TestParseExtraFieldsAndUnpadded(t *testing.T) {
	h, err := Parse("0-MQ-Mg-7-YQ-Yg-Yw-ZA-future")
	if err != nil {
		t.Fatal(err)
	}
	want := Header{TraceID: "1", ParentSegmentID: "2", ParentSpanID: 7, ParentService: "a",
		ParentServiceInstance: "b", ParentEndpoint: "c", AddressUsedAtClient: "d"}
	if h != want {
		t.Errorf("got %+v, want %+v", h, want)
	}
}
