package server_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// The OpenTelemetry SDK's metrics and logs exporters work against SkyTrail
// unmodified: metrics land in the metric store as agent_* series with the
// service and instance, Prometheus-style (a counter's _total, a
// histogram's buckets, an exponential histogram as a native one); log
// records are searchable by service.
func TestOpenTelemetryMetricsAndLogs(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	ctx := context.Background()
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("checkout"), semconv.ServiceInstanceID("checkout-1"))

	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: "payment.latency"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})))
	defer func() { _ = mp.Shutdown(ctx) }()
	meter := mp.Meter("shop")
	orders, _ := meter.Int64Counter("orders.placed")
	orders.Add(ctx, 3, metric.WithAttributes(semconv.HTTPRoute("/checkout")))
	latency, _ := meter.Float64Histogram("checkout.duration", metric.WithUnit("s"))
	latency.Record(ctx, 0.2)
	payment, _ := meter.Float64Histogram("payment.latency", metric.WithUnit("s"))
	payment.Record(ctx, 0.05)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := mexp.Export(ctx, &rm); err != nil {
		t.Fatalf("exporting metrics: %v", err)
	}

	for _, q := range []string{
		`agent_orders_placed_total{service="checkout",instance="checkout-1",http_route="/checkout"}`,
		`agent_checkout_duration_seconds_count{service="checkout"}`,
		`histogram_count(agent_payment_latency_seconds{service="checkout"})`,
	} {
		var prom struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		servertest.GetJSON(t, api+"/prometheus/api/v1/query?query="+url.QueryEscape(q), &prom)
		if len(prom.Data.Result) != 1 {
			t.Errorf("%s: %d series, want 1", q, len(prom.Data.Result))
		}
	}

	lexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	defer func() { _ = lp.Shutdown(ctx) }()
	var rec log.Record
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(log.SeverityError)
	rec.SetBody(attribute.StringValue("order 1001 failed"))
	rec.AddAttributes(attribute.Int("order_id", 1001))
	lp.Logger("shop").Emit(ctx, rec)

	var logs struct {
		Logs []struct {
			Service    string            `json:"service"`
			Body       string            `json:"body"`
			Attributes map[string]string `json:"attributes"`
		} `json:"logs"`
	}
	poll.Until(t, 30*time.Second, "the log record to be searchable", func() bool {
		servertest.GetJSON(t, api+"/api/v1/logs?service=checkout", &logs)
		return len(logs.Logs) == 1
	})
	if l := logs.Logs[0]; l.Body != "order 1001 failed" || l.Attributes["order_id"] != "1001" {
		t.Errorf("log record %+v", l)
	}
}
