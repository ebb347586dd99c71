// The server's tests are an external package: they run the server the way
// every other package's tests do, through servertest.
package server_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// waitTimeout bounds every wait for data to become searchable (after the
// store's one second flush interval), generous for a busy CI machine
// running tests in parallel.
const waitTimeout = 30 * time.Second

func provider(t *testing.T, exp *otlptrace.Exporter, service string) *sdktrace.TracerProvider {
	t.Helper()
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service), attribute.String("host.name", "test-host"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// checkoutTrace records frontend -> payment, the payment call failing
// after 30 ms, and returns its trace ID. Each span starts a millisecond
// after its parent, so the API lists them in that order.
func checkoutTrace(t *testing.T, frontend, payment *sdktrace.TracerProvider, orderID int) trace.TraceID {
	ctx := context.Background()
	start := time.Now()
	ctx, root := frontend.Tracer("shop").Start(ctx, "GET /checkout", trace.WithTimestamp(start),
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Int("order_id", orderID), attribute.String("http.route", "/checkout")))
	cctx, call := frontend.Tracer("shop").Start(ctx, "POST payment", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(time.Millisecond)))
	// The context crosses to payment as it would over HTTP: in a traceparent header.
	headers := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(cctx, headers)
	pctx := propagation.TraceContext{}.Extract(context.Background(), headers)
	_, charge := payment.Tracer("pay").Start(pctx, "charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(2*time.Millisecond)),
		trace.WithAttributes(attribute.Bool("retry", false), attribute.Float64("amount", 12.5)))
	// The charge takes 30 ms, by its timestamps rather than by sleeping.
	end := start.Add(32 * time.Millisecond)
	charge.AddEvent("card checked", trace.WithTimestamp(end), trace.WithAttributes(attribute.String("card.brand", "visa")))
	charge.SetStatus(codes.Error, "card declined")
	charge.End(trace.WithTimestamp(end))
	call.SetStatus(codes.Error, "payment failed")
	call.End(trace.WithTimestamp(end.Add(time.Millisecond)))
	root.End(trace.WithTimestamp(end.Add(2 * time.Millisecond)))
	return root.SpanContext().TraceID()
}

type nativeTrace struct {
	Summary struct {
		RootService string   `json:"rootService"`
		SpanCount   int      `json:"spanCount"`
		Services    []string `json:"services"`
		Error       bool     `json:"error"`
	} `json:"summary"`
	Spans []struct {
		SpanID, ParentSpanID, Name, Kind, Service, StatusCode, StatusMessage string
		Attributes                                                           map[string]any
		Events                                                               []struct{ Name string }
	} `json:"spans"`
}
