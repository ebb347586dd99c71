package analysis

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// histogramTolerance is the histogram's resolution: neighbouring bucket
// boundaries differ by 2^(1/8), so an estimate is within 9% of the truth.
const histogramTolerance = 0.0905

// TestKnownTraffic sends 120 calls with 6 errors and latencies 10 ms,
// 20 ms ... 1200 ms through the OpenTelemetry SDK and reads exact counts
// and percentiles back through PromQL.
func TestKnownTraffic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	tracer, finish := h.tracer("checkout", attribute.String("service.instance.id", "checkout-1"))
	base := pastMinute()
	var latencies []float64
	for i := range 120 {
		start := base.Add(time.Duration(i) * 100 * time.Millisecond)
		latency := float64(i+1) * 10
		latencies = append(latencies, latency)
		_, span := tracer.Start(context.Background(), "POST /pay", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
		if i%20 == 0 {
			span.SetStatus(codes.Error, "declined")
		}
		span.End(trace.WithTimestamp(start.Add(ms(latency))))
	}
	finish()
	h.flush()

	for _, c := range []struct {
		query string
		want  float64
	}{
		{`sum_over_time(skytrail_service_calls:increase1m{service="checkout"}[10m])`, 120},
		{`sum_over_time(skytrail_service_errors:increase1m{service="checkout"}[10m])`, 6},
		{`sum_over_time(skytrail_instance_calls:increase1m{service="checkout",instance="checkout-1"}[10m])`, 120},
		{`sum_over_time(skytrail_endpoint_calls:increase1m{service="checkout",endpoint="POST /pay"}[10m])`, 120},
		{`sum_over_time(skytrail_endpoint_errors:increase1m{service="checkout",endpoint="POST /pay"}[10m])`, 6},
		// Apdex T = 500 ms: 47 successful calls within it, 67 within 2 s.
		{`sum_over_time(skytrail_service_apdex_satisfied:increase1m{service="checkout"}[10m])`, 47},
		{`sum_over_time(skytrail_service_apdex_tolerating:increase1m{service="checkout"}[10m])`, 67},
		{`sum_over_time(skytrail_edge_server_calls:increase1m{client="user",server="checkout"}[10m])`, 120},
	} {
		if got := h.scalar(c.query); got != c.want {
			t.Errorf("%s = %g, want %g", c.query, got, c.want)
		}
	}
	for _, q := range []float64{0.5, 0.75, 0.9, 0.95, 0.99} {
		want := latencies[int(math.Ceil(q*120))-1] / 1000
		got := h.scalar(`histogram_quantile(` + formatFloat(q) + `, sum_over_time(skytrail_service_duration_seconds:increase1m{service="checkout"}[10m]))`)
		within(t, "p"+formatFloat(q*100), got, want, histogramTolerance)
	}

	figs, err := h.analyser.ServiceFigures(context.Background(), time.Now().Add(-10*time.Minute), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := figs["checkout"]
	if f.Calls != 120 || f.Errors != 6 || f.SuccessRate != 0.95 {
		t.Errorf("figures: calls %d errors %d success %g, want 120, 6, 0.95", f.Calls, f.Errors, f.SuccessRate)
	}
	if f.Apdex == nil || math.Abs(*f.Apdex-(47+67.0/2)/120) > 1e-9 {
		t.Errorf("apdex = %v, want %g", f.Apdex, (47+67.0/2)/120)
	}
	within(t, "p50Ms", f.P50Ms, 600, histogramTolerance)
	within(t, "p99Ms", f.P99Ms, 1190, histogramTolerance)
	within(t, "meanMs", f.MeanMs, 605, 1e-9)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
