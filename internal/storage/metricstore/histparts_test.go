package metricstore

import (
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestHistogramPartsRoundTrip: a native histogram written as vmrange parts
// (positive, negative and zero buckets, gaps between them) is read back
// as the same histogram, beside a plain series of the same name and
// ignoring a classic histogram's le buckets.
func TestHistogramPartsRoundTrip(t *testing.T) {
	fh := &histogram.FloatHistogram{
		Schema: 3, ZeroThreshold: 1.0 / (1 << 20), ZeroCount: 2, Count: 17, Sum: 3.25,
		PositiveSpans:   []histogram.Span{{Offset: -20, Length: 2}, {Offset: 5, Length: 1}},
		PositiveBuckets: []float64{3, 4, 5},
		NegativeSpans:   []histogram.Span{{Offset: 2, Length: 1}},
		NegativeBuckets: []float64{3},
	}
	ls := labels.FromStrings("__name__", "lat", "service", "a")
	var m model.Matrix
	for _, p := range histogramParts(ls, fh) {
		metric := model.Metric{}
		p.lbls.Range(func(l labels.Label) { metric[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		m = append(m, &model.SampleStream{Metric: metric, Values: []model.SamplePair{{Timestamp: 60000, Value: model.SampleValue(p.v)}}})
	}
	m = append(m,
		&model.SampleStream{Metric: model.Metric{"__name__": "lat", "service": "b"}, Values: []model.SamplePair{{Timestamp: 60000, Value: 1}}},
		&model.SampleStream{Metric: model.Metric{"__name__": "lat_bucket", "service": "c", "le": "0.5"}, Values: []model.SamplePair{{Timestamp: 60000, Value: 1}}},
		&model.SampleStream{Metric: model.Metric{"__name__": "lat_count", "service": "c"}, Values: []model.SamplePair{{Timestamp: 60000, Value: 1}}},
	)
	series := assemble("lat", m)
	if len(series) != 2 {
		t.Fatalf("%d series, want the histogram and the float series", len(series))
	}
	for _, s := range series {
		it := s.Iterator(nil)
		switch s.Labels().Get("service") {
		case "a":
			if it.Next() != chunkenc.ValFloatHistogram {
				t.Fatal("service a: not a histogram")
			}
			_, got := it.AtFloatHistogram(nil)
			if !got.Equals(fh) {
				t.Errorf("read back %s, want %s", got, fh)
			}
		case "b":
			if it.Next() != chunkenc.ValFloat {
				t.Fatal("service b: not a float")
			}
		default:
			t.Errorf("unexpected series %s", s.Labels())
		}
	}
}

// TestParseVictoriaMetricsRange: the vmrange VictoriaMetrics writes when it
// converts a native histogram itself (4 significant digits, zero bucket
// as -t...t) places the bucket as ours does.
func TestParseVictoriaMetricsRange(t *testing.T) {
	fh := &histogram.FloatHistogram{Schema: 3, PositiveSpans: []histogram.Span{{Offset: -37, Length: 1}}, PositiveBuckets: []float64{1}, Count: 1}
	it := fh.PositiveBucketIterator()
	it.Next()
	b := it.At()
	vm := fmt.Sprintf("%.3e...%.3e", b.Lower, b.Upper)
	k, ok := parseRange(vm)
	if !ok || k.zero || k.negative || k.schema != 3 || k.index != -37 {
		t.Errorf("parseRange(%q) = %+v, %v; want schema 3 index -37", vm, k, ok)
	}
	if k, ok := parseRange("-9.537e-07...9.537e-07"); !ok || !k.zero {
		t.Errorf("VictoriaMetrics' zero bucket: %+v, %v", k, ok)
	}
}
