// Package metricstoretest is the metric store's contract as a test suite:
// what the analysis, the rules engine and the PromQL API rely on from
// metricstore.Store, embedded (a TSDB in-process) or remote (a
// Prometheus-compatible store over HTTP). Both implementations' tests call
// Run, so the two cannot drift apart.
package metricstoretest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser/posrange"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/skytrail/skytrail/internal/analysis/red"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// visible is how long a written sample may take to be read back: a remote
// store flushes its in-memory buffers about once a second.
const visible = 20 * time.Second

// Run checks the contract on stores open returns (a new, empty one per
// call).
func Run(t *testing.T, open func(t *testing.T) *metricstore.Store) {
	t.Run("Floats", func(t *testing.T) { floats(t, open(t)) })
	t.Run("NativeHistogram", func(t *testing.T) { nativeHistogram(t, open(t)) })
	t.Run("ClassicView", func(t *testing.T) { classicView(t, open(t)) })
	t.Run("StartZero", func(t *testing.T) { startZero(t, open(t)) })
	t.Run("LiveSource", func(t *testing.T) { liveSource(t, open(t)) })
	t.Run("RulesAppender", func(t *testing.T) { rulesAppender(t, open(t)) })
	t.Run("Labels", func(t *testing.T) { labelLookups(t, open(t)) })
}

func lbls(kv ...string) labels.Labels { return labels.FromStrings(kv...) }

// at is a whole minute a little in the past, so a remote store's own
// "too recent" rules do not apply.
func at() time.Time { return time.Now().Add(-2 * time.Minute).Truncate(time.Minute) }

func commit(t *testing.T, app storage.Appender) {
	t.Helper()
	if err := app.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// scalar runs expr at ts and returns its single value, or an error saying
// what came back instead.
func scalar(ctx context.Context, s *metricstore.Store, expr string, ts time.Time) (float64, error) {
	v, err := s.InstantQuery(ctx, expr, ts)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 || v[0].H != nil {
		return 0, fmt.Errorf("%s = %v, want one float", expr, v)
	}
	return v[0].F, nil
}

func wantScalar(t *testing.T, s *metricstore.Store, expr string, ts time.Time, want float64) {
	t.Helper()
	poll.UntilNil(t, visible, func() error {
		got, err := scalar(t.Context(), s, expr, ts)
		if err != nil {
			return err
		}
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			return fmt.Errorf("%s = %v, want %v", expr, got, want)
		}
		return nil
	})
}

// floats: samples an Appender commits are read by PromQL, each once,
// grouped by their labels.
func floats(t *testing.T, s *metricstore.Store) {
	end := at()
	app := s.Appender(t.Context())
	for i := range 3 {
		ts := end.Add(-time.Duration(i) * time.Minute).UnixMilli()
		for _, svc := range []string{"checkout", "payment"} {
			if _, err := app.Append(0, lbls("__name__", "skytrail_service_calls:increase1m", "service", svc), ts, float64(5+i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit(t, app)
	wantScalar(t, s, `sum(sum_over_time(skytrail_service_calls:increase1m{service="checkout"}[10m]))`, end, 18)
	wantScalar(t, s, `count(sum by (service) (sum_over_time(skytrail_service_calls:increase1m[10m])))`, end, 2)
	// The lookback is a minute: a minute's figure is visible for the next
	// minute only.
	poll.UntilNil(t, visible, func() error {
		v, err := s.InstantQuery(t.Context(), `sum(skytrail_service_calls:increase1m)`, end.Add(90*time.Second))
		if err != nil || len(v) != 0 {
			return fmt.Errorf("90 s after the last sample: %v, %v; want nothing", v, err)
		}
		return nil
	})
}

// latency is a gauge native histogram as the analysis writes a minute's
// latencies: schema 3, observations from 2 ms to 1.6 s and one at zero.
func latency(scale float64) (*red.Histogram, []float64) {
	h := &red.Histogram{}
	var obs []float64
	for i := range 40 {
		v := scale * 0.002 * math.Pow(1.18, float64(i))
		h.Observe(v)
		obs = append(obs, v)
	}
	h.Observe(0)
	return h, append(obs, 0)
}

// nativeHistogram: a native histogram reads back as written: count, sum
// and the percentiles the analysis takes from it.
func nativeHistogram(t *testing.T, s *metricstore.Store) {
	end := at()
	name := "skytrail_service_duration_seconds:increase1m"
	app := s.Appender(t.Context())
	var want *histogram.FloatHistogram
	for i, scale := range []float64{1, 3} {
		h, _ := latency(scale)
		fh := h.Float()
		if _, err := app.AppendHistogram(0, lbls("__name__", name, "service", "checkout"), end.Add(-time.Duration(i)*time.Minute).UnixMilli(), nil, fh); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = fh.Copy()
		} else if _, _, _, err := want.Add(fh); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, app)
	expr := fmt.Sprintf(`sum(sum_over_time(%s[5m]))`, name)
	poll.UntilNil(t, visible, func() error {
		v, err := s.InstantQuery(t.Context(), expr, end)
		if err != nil {
			return err
		}
		if len(v) != 1 || v[0].H == nil {
			return fmt.Errorf("%s = %v, want one histogram", expr, v)
		}
		got := v[0].H
		if got.Count != want.Count || math.Abs(got.Sum-want.Sum) > 1e-9*want.Sum || got.ZeroCount != want.ZeroCount {
			return fmt.Errorf("count %v sum %v zero %v, want %v %v %v", got.Count, got.Sum, got.ZeroCount, want.Count, want.Sum, want.ZeroCount)
		}
		for _, q := range []float64{0.5, 0.9, 0.99} {
			g, _ := promql.HistogramQuantile(q, got, "", posrange.PositionRange{})
			w, _ := promql.HistogramQuantile(q, want, "", posrange.PositionRange{})
			if g != w {
				return fmt.Errorf("p%v = %v, want %v", q*100, g, w)
			}
		}
		return nil
	})
}

// classicView: a counter native histogram named to ServeClassic answers
// Grafana's classic RED queries: rate of _count, histogram_quantile over
// _bucket by le.
func classicView(t *testing.T, s *metricstore.Store) {
	name := "skytrail_service_duration_seconds"
	s.ServeClassic(name)
	end := at()
	// A running total: 120 observations a minute at 100 ms (under the
	// 2^-3 s bound), then 120 a minute at 300 ms (under 2^-1 s).
	total := &red.Histogram{}
	app := s.Appender(t.Context())
	for m := 10; m >= 0; m-- {
		for range 120 {
			if m > 5 {
				total.Observe(0.1)
			} else {
				total.Observe(0.3)
			}
		}
		fh := total.Float()
		fh.CounterResetHint = histogram.UnknownCounterReset
		if _, err := app.AppendHistogram(0, lbls("__name__", name, "service", "checkout"), end.Add(-time.Duration(m)*time.Minute).UnixMilli(), nil, fh); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, app)
	wantScalar(t, s, fmt.Sprintf(`sum(rate(%s_count[5m]))`, name), end, 2)
	// All of the last five minutes' observations are at 300 ms: p99 lies
	// in the (0.25, 0.5] bucket.
	poll.UntilNil(t, visible, func() error {
		got, err := scalar(t.Context(), s, fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(%s_bucket[5m])))`, name), end)
		if err != nil {
			return err
		}
		if got <= 0.25 || got > 0.5 {
			return fmt.Errorf("p99 = %v, want in (0.25, 0.5]", got)
		}
		return nil
	})
}

// memSource is a live source: series held in memory, as the analysis
// holds its open minutes.
type memSource []storage.Series

func (m memSource) Querier(int64, int64) (storage.Querier, error) { return m, nil }

func (m memSource) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range m {
		if matchAll(ms, s.Labels()) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &seriesSet{series: out}
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func (m memSource) LabelValues(_ context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var out []string
	for _, s := range m {
		if v := s.Labels().Get(name); v != "" && matchAll(ms, s.Labels()) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (m memSource) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	var out []string
	for _, s := range m {
		s.Labels().Range(func(l labels.Label) { out = append(out, l.Name) })
	}
	slices.Sort(out)
	return slices.Compact(out), nil, nil
}

func (memSource) Close() error { return nil }

type seriesSet struct {
	series []storage.Series
	i      int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i <= len(s.series) }
func (s *seriesSet) At() storage.Series                { return s.series[s.i-1] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

func floatSeries(ls labels.Labels, ts []int64, v float64) storage.Series {
	var samples []chunks.Sample
	for _, t := range ts {
		samples = append(samples, chunkSample{t: t, f: v})
	}
	return storage.NewListSeries(ls, samples)
}

// liveSource: what a source holds in memory is read beside what was
// written; a sample both have at one time is read once.
func liveSource(t *testing.T, s *metricstore.Store) {
	end := at()
	ls := lbls("__name__", "skytrail_service_errors:increase1m", "service", "checkout")
	written := []int64{end.Add(-2 * time.Minute).UnixMilli(), end.Add(-time.Minute).UnixMilli()}
	app := s.Appender(t.Context())
	for _, ts := range written {
		if _, err := app.Append(0, ls, ts, 1); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, app)
	// The source has the last written minute again (a minute being written
	// while read) and the open one.
	s.AddSource(memSource{floatSeries(ls, []int64{written[1], end.UnixMilli()}, 1)})
	wantScalar(t, s, `sum(sum_over_time(skytrail_service_errors:increase1m[10m]))`, end, 3)
}

// rulesAppender: what the rules engine writes through AppenderV2
// (recording rules, ALERTS) is read back.
func rulesAppender(t *testing.T, s *metricstore.Store) {
	end := at()
	app := s.AppenderV2(t.Context())
	if _, err := app.Append(0, lbls("__name__", "ALERTS", "alertname", "HighErrorRate", "alertstate", "firing", "service", "payment"), 0, end.UnixMilli(), 1, nil, nil, storage.AOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	wantScalar(t, s, `count(ALERTS{alertstate="firing",service="payment"})`, end.Add(10*time.Second), 1)
}

// labelLookups: label names and values, as Grafana's metric browser and
// the /api/v1/label endpoints ask.
func labelLookups(t *testing.T, s *metricstore.Store) {
	end := at()
	app := s.Appender(t.Context())
	for _, svc := range []string{"cart", "search"} {
		if _, err := app.Append(0, lbls("__name__", "skytrail_service_calls_total", "service", svc), end.UnixMilli(), 1); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, app)
	poll.UntilNil(t, visible, func() error {
		q, err := s.Queryable().Querier(end.Add(-time.Hour).UnixMilli(), end.Add(time.Minute).UnixMilli())
		if err != nil {
			return err
		}
		defer q.Close()
		vals, _, err := q.LabelValues(t.Context(), "service", nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "skytrail_service_calls_total"))
		if err != nil {
			return err
		}
		if !slices.Equal(vals, []string{"cart", "search"}) {
			return fmt.Errorf("service values %v, want [cart search]", vals)
		}
		names, _, err := q.LabelNames(t.Context(), nil)
		if err != nil {
			return err
		}
		if !slices.Contains(names, "service") || !slices.Contains(names, "__name__") {
			return fmt.Errorf("label names %v, want service and __name__ among them", names)
		}
		return nil
	})
}

// chunkSample is a float sample for storage.NewListSeries.
type chunkSample struct {
	t int64
	f float64
}

func (s chunkSample) T() int64                      { return s.t }
func (s chunkSample) ST() int64                     { return 0 }
func (s chunkSample) F() float64                    { return s.f }
func (s chunkSample) H() *histogram.Histogram       { return nil }
func (s chunkSample) FH() *histogram.FloatHistogram { return nil }
func (s chunkSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s chunkSample) Copy() chunks.Sample           { return s }

// startZero: a counter's first sample is preceded by its start-time zero,
// so increase() counts a new series' first calls, for floats and
// histograms alike.
func startZero(t *testing.T, s *metricstore.Store) {
	end := at()
	st := end.Add(-30 * time.Second).UnixMilli()
	h := &red.Histogram{}
	for range 4 {
		h.Observe(0.05)
	}
	fh := h.Float()
	fh.CounterResetHint = histogram.UnknownCounterReset
	app := s.Appender(t.Context())
	calls := lbls("__name__", "skytrail_service_calls_total", "service", "checkout")
	if _, err := app.AppendSTZeroSample(0, calls, end.UnixMilli(), st); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Append(0, calls, end.UnixMilli(), 4); err != nil {
		t.Fatal(err)
	}
	dur := lbls("__name__", "skytrail_service_duration_seconds", "service", "checkout")
	if _, err := app.AppendHistogramSTZeroSample(0, dur, end.UnixMilli(), st, nil, fh); err != nil {
		t.Fatal(err)
	}
	if _, err := app.AppendHistogram(0, dur, end.UnixMilli(), nil, fh); err != nil {
		t.Fatal(err)
	}
	commit(t, app)
	// Without the zero, one sample in the window would give no increase.
	wantScalar(t, s, `sum(increase(skytrail_service_calls_total[1m]))`, end, 4)
	wantScalar(t, s, `sum(histogram_count(increase(skytrail_service_duration_seconds[1m])))`, end, 4)
}
