package metricstore

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// ClassicBounds are the upper bounds (le) of the classic buckets derived
// from a native histogram: powers of two from 2^-10 s (about 1 ms) to
// 2^8 s (256 s), and +Inf. Each is a bucket boundary of every native
// schema from 0 up, so a derived bucket holds exactly the observations at
// or below its bound. Twenty series: as many as a classic histogram with
// Prometheus' default buckets, and as coarse; the native histogram itself
// is eight times finer.
var ClassicBounds = func() []float64 {
	var b []float64
	for e := -10; e <= 8; e++ {
		b = append(b, math.Ldexp(1, e))
	}
	return append(b, math.Inf(1))
}()

var classicLe = func() []string {
	s := make([]string, len(ClassicBounds))
	for i, b := range ClassicBounds {
		s[i] = labels.FormatOpenMetricsFloat(b)
	}
	return s
}()

// classicQuerier adds to a querier's series the classic view of the native
// histograms it was told of: for a histogram X, the series X_bucket (with
// le), X_count and X_sum a classic Prometheus histogram has, computed from
// X's samples when a query selects them, so Grafana's usual
// histogram_quantile(0.99, sum by (le) (rate(X_bucket[5m]))) works without
// storing twenty more series for every histogram.
type classicQuerier struct {
	storage.Querier
	names map[string]bool
}

// classicName splits a derived series name into its histogram's name and
// the part (bucket, count or sum).
func (q *classicQuerier) classicName(name string) (base, part string, ok bool) {
	for _, p := range []string{"_bucket", "_count", "_sum"} {
		if b, found := strings.CutSuffix(name, p); found && q.names[b] {
			return b, p[1:], true
		}
	}
	return "", "", false
}

func (q *classicQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var base, part string
	idx := -1
	for i, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			if b, p, ok := q.classicName(m.Value); ok {
				base, part, idx = b, p, i
			}
		}
	}
	if idx < 0 {
		return q.Querier.Select(ctx, sortSeries, hints, ms...)
	}
	// Select the histogram; le is a label of the derived series only.
	var inner, after []*labels.Matcher
	inner = append(inner, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, base))
	for i, m := range ms {
		switch {
		case i == idx:
		case m.Name == labels.BucketLabel && part == "bucket":
			after = append(after, m)
		default:
			inner = append(inner, m)
		}
	}
	name := base + "_" + part
	set := q.Querier.Select(ctx, false, hints, inner...)
	var out []storage.Series
	var it chunkenc.Iterator
	for set.Next() {
		s := set.At()
		it = s.Iterator(it)
		out = append(out, derive(s.Labels(), name, part, it, after)...)
	}
	if err := set.Err(); err != nil {
		return storage.ErrSeriesSet(err)
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &listSet{series: out, warnings: set.Warnings()}
}

// derive reads a histogram series and returns its classic part: the bucket
// series (those whose le passes the matchers in le), or count or sum.
func derive(lbls labels.Labels, name, part string, it chunkenc.Iterator, le []*labels.Matcher) []storage.Series {
	n := 1
	if part == "bucket" {
		n = len(ClassicBounds)
	}
	out := make([]*floatSeries, n)
	for i := range out {
		out[i] = &floatSeries{}
	}
	var fh *histogram.FloatHistogram
	cum := make([]float64, len(ClassicBounds))
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValHistogram && vt != chunkenc.ValFloatHistogram {
			continue // a float in a histogram series: nothing to derive
		}
		var t int64
		t, fh = it.AtFloatHistogram(fh) // the TSDB converts integer histograms into fh
		switch {
		case value.IsStaleNaN(fh.Sum):
			stale := math.Float64frombits(value.StaleNaN)
			for _, s := range out {
				s.add(t, stale)
			}
		case part == "count":
			out[0].add(t, fh.Count)
		case part == "sum":
			out[0].add(t, fh.Sum)
		default:
			bucketCounts(fh, cum)
			for i, s := range out {
				s.add(t, cum[i])
			}
		}
	}
	series := make([]storage.Series, 0, n)
	b := labels.NewBuilder(lbls)
	b.Set(labels.MetricName, name)
	for i, s := range out {
		if len(s.samples) == 0 {
			continue
		}
		if part == "bucket" {
			if !matches(le, classicLe[i]) {
				continue
			}
			b.Set(labels.BucketLabel, classicLe[i])
		}
		s.lbls = b.Labels()
		series = append(series, s)
	}
	return series
}

func matches(ms []*labels.Matcher, v string) bool {
	for _, m := range ms {
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// bucketCounts sets cum[i] to the observations in fh at or below
// ClassicBounds[i]. A native bucket counts under the bounds at or above
// its upper end; none straddles a bound for schemas from 0 up. One pass:
// the buckets come in ascending order.
func bucketCounts(fh *histogram.FloatHistogram, cum []float64) {
	clear(cum)
	i := 0 // the first bound at or above the last upper end placed
	place := func(upper, count float64) {
		for i < len(ClassicBounds) && ClassicBounds[i] < upper {
			i++
		}
		if i < len(cum) {
			cum[i] += count
		}
	}
	for it := fh.NegativeBucketIterator(); it.Next(); {
		place(0, it.At().Count)
	}
	place(fh.ZeroThreshold, fh.ZeroCount)
	for it := fh.PositiveBucketIterator(); it.Next(); {
		bk := it.At()
		place(bk.Upper, bk.Count)
	}
	for j := 1; j < len(cum); j++ {
		cum[j] += cum[j-1]
	}
}

// LabelValues adds the derived names to those of __name__ where their
// histogram is there, so they show in Grafana's metric browser.
func (q *classicQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	vals, ann, err := q.Querier.LabelValues(ctx, name, hints, ms...)
	if err != nil || name != labels.MetricName {
		return vals, ann, err
	}
	for _, v := range vals {
		if q.names[v] {
			vals = append(vals, v+"_bucket", v+"_count", v+"_sum")
		}
	}
	slices.Sort(vals)
	return slices.Compact(vals), ann, nil
}

// floatSeries is a derived series: float samples in memory, held by value
// (a sample an interface each would be an allocation each).
type floatSeries struct {
	lbls    labels.Labels
	samples []floatSample
}

func (s *floatSeries) add(t int64, v float64) { s.samples = append(s.samples, floatSample{t: t, f: v}) }

func (s *floatSeries) Labels() labels.Labels { return s.lbls }

func (s *floatSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return storage.NewListSeriesIterator(s)
}

// Get and Len make it storage.Samples.
func (s *floatSeries) Get(i int) chunks.Sample { return &s.samples[i] }
func (s *floatSeries) Len() int                { return len(s.samples) }

// floatSample is one float sample of a derived series.
type floatSample struct {
	t int64
	f float64
}

func (s *floatSample) T() int64                      { return s.t }
func (s *floatSample) ST() int64                     { return 0 }
func (s *floatSample) F() float64                    { return s.f }
func (s *floatSample) H() *histogram.Histogram       { return nil }
func (s *floatSample) FH() *histogram.FloatHistogram { return nil }
func (s *floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s *floatSample) Copy() chunks.Sample           { c := *s; return &c }

// listSet is a storage.SeriesSet over series in memory.
type listSet struct {
	series   []storage.Series
	i        int
	warnings annotations.Annotations
}

func (l *listSet) Next() bool {
	l.i++
	return l.i <= len(l.series)
}
func (l *listSet) At() storage.Series                { return l.series[l.i-1] }
func (l *listSet) Err() error                        { return nil }
func (l *listSet) Warnings() annotations.Annotations { return l.warnings }
