package traceslog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestHandlerAddsTraceAndSpanIDs(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil))).With("service", "checkout")

	ctx, span := tp.Tracer("t").Start(context.Background(), "work")
	log.InfoContext(ctx, "charged card", "amount", 12)
	span.End()

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec[TraceIDKey] != span.SpanContext().TraceID().String() || rec[SpanIDKey] != span.SpanContext().SpanID().String() ||
		rec["service"] != "checkout" || rec["amount"] != float64(12) {
		t.Errorf("record %v", rec)
	}

	buf.Reset()
	log.InfoContext(context.Background(), "no span here")
	rec = nil
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec[TraceIDKey]; ok {
		t.Errorf("record without a span got a trace ID: %v", rec)
	}
}
