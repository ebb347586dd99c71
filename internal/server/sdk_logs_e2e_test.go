package server_test

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/bridges/otelzap"
	"go.opentelemetry.io/otel"
	"go.uber.org/zap"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/sdk"
)

// sdk.WithLogs: a service logging with log/slog inside a span has its
// lines in SkyTrail under that span's trace, with their fields.
//
// Not parallel: sdk.Start sets OpenTelemetry's globals and slog's default.
func TestSDKExportsSlogWithTraceContext(t *testing.T) {
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	ctx := context.Background()
	before := slog.Default()
	shutdown, err := sdk.Start(ctx, sdk.WithServiceName("invoices"), sdk.WithProtocol(sdk.ProtocolHTTP),
		sdk.WithEndpoint("http://"+s.Addrs["OTLP HTTP"]), sdk.WithBatchTimeout(20*time.Millisecond), sdk.WithLogs())
	if err != nil {
		t.Fatal(err)
	}
	sctx, span := otel.Tracer("test").Start(ctx, "POST /invoices")
	slog.ErrorContext(sctx, "invoice rejected", "order_id", 4004, "reason", "over limit")
	slog.Info("no span here", "order_id", 4004)
	// zap, through OpenTelemetry's zap bridge on the provider WithLogs made
	// global (docs/sdk.md): the context as a field carries the span.
	zlog := zap.New(otelzap.NewCore("invoices/zap"))
	zlog.Warn("invoice retried", zap.Int("order_id", 4004), zap.Any("ctx", sctx))
	span.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if slog.Default() != before {
		t.Error("shutdown left slog's default writing to the stopped exporter")
	}
	traceID := span.SpanContext().TraceID().String()
	var got logsAnswer
	poll.Until(t, 30*time.Second, "the two slog records", func() bool {
		servertest.GetJSON(t, api+"/api/v1/logs?field=order_id:4004", &got)
		return len(got.Logs) == 3
	})
	var tl logsAnswer
	servertest.GetJSON(t, api+"/api/v1/traces/"+url.PathEscape(traceID)+"/logs", &tl)
	if len(tl.Logs) != 2 {
		t.Fatalf("logs of the span's trace: %+v", tl.Logs)
	}
	if z := tl.Logs[1]; z.Body != "invoice retried" || z.SpanID != span.SpanContext().SpanID().String() || z.Severity != "warn" {
		t.Errorf("zap record stored as %+v", z)
	}
	l := tl.Logs[0]
	if l.Body != "invoice rejected" || l.Service != "invoices" || l.Severity != "ERROR" || l.SpanID != span.SpanContext().SpanID().String() ||
		l.Attributes["reason"] != "over limit" {
		t.Errorf("slog record stored as %+v", l)
	}
}
