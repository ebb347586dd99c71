package metricstore

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// TestClassicView: the native histograms ServeClassic names are also
// served as the _bucket, _count and _sum series of a classic histogram,
// which histogram_quantile and Grafana's metric browser find.
func TestClassicView(t *testing.T) {
	t.Parallel()
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.ServeClassic("latency_seconds")
	// Schema 0: bucket i holds (2^(i-1), 2^i]. Observed: 0 (the zero
	// bucket), 0.003, 0.3 twice, 5 and 300 (beyond the last finite bound).
	h := func(scale int64) *histogram.Histogram {
		return &histogram.Histogram{
			Schema: 0, ZeroThreshold: math.Ldexp(1, -20), ZeroCount: uint64(scale), Count: uint64(6 * scale), Sum: float64(scale) * 305.603,
			PositiveSpans: []histogram.Span{{Offset: -8, Length: 1}, {Offset: 6, Length: 1}, {Offset: 3, Length: 1}, {Offset: 5, Length: 1}},
			// Delta-encoded counts 1, 2, 1, 1 (times scale).
			PositiveBuckets: []int64{scale, scale, -scale, 0},
		}
	}
	end := time.Now().Truncate(time.Second)
	app := s.Appender(context.Background())
	for i, scale := range []int64{1, 2} {
		for _, name := range []string{"latency_seconds", "other_seconds"} {
			ts := end.Add(time.Duration(i-1) * time.Minute).UnixMilli()
			if _, err := app.AppendHistogram(0, labels.FromStrings("__name__", name, "service", "a"), ts, h(scale), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	query := func(q string) promql.Vector {
		t.Helper()
		v, err := s.InstantQuery(context.Background(), q, end)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	one := func(q string, want float64) {
		t.Helper()
		if v := query(q); len(v) != 1 || v[0].F != want {
			t.Errorf("%s = %v, want %g", q, v, want)
		}
	}
	one(`latency_seconds_count`, 12)
	one(`latency_seconds_sum`, 2*305.603)
	one(`latency_seconds_bucket{le="0.0009765625"}`, 2)
	one(`latency_seconds_bucket{le="0.00390625"}`, 4)
	one(`latency_seconds_bucket{le="0.5"}`, 8)
	one(`latency_seconds_bucket{le="8.0"}`, 10)
	one(`latency_seconds_bucket{le="256.0"}`, 10)
	one(`latency_seconds_bucket{le="+Inf"}`, 12)
	if v := query(`latency_seconds_bucket`); len(v) != len(ClassicBounds) {
		t.Errorf("%d bucket series, want %d", len(v), len(ClassicBounds))
	}
	// Counters: rate() and histogram_quantile() read them as Prometheus'.
	one(`latency_seconds_count - latency_seconds_count offset 1m`, 6)
	if v := query(`histogram_quantile(0.5, sum by (le) (rate(latency_seconds_bucket[2m])))`); len(v) != 1 || v[0].F <= 0.25 || v[0].F > 0.5 {
		t.Errorf("median from the buckets = %v, want within (0.25, 0.5]", v)
	}
	// Only the histograms named.
	if v := query(`other_seconds_bucket`); len(v) != 0 {
		t.Errorf("other_seconds_bucket = %v, want nothing", v)
	}
	q, err := s.Queryable().Querier(0, end.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	names, _, err := q.LabelValues(context.Background(), "__name__", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"latency_seconds", "latency_seconds_bucket", "latency_seconds_count", "latency_seconds_sum", "other_seconds"}
	if len(names) != len(want) {
		t.Fatalf("metric names %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("metric names %v, want %v", names, want)
		}
	}
}
