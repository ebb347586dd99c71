package metricstore

import (
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// A remote store is sent SkyTrail's native histograms as float series,
// because not every remote-write store keeps native histograms as such:
// VictoriaMetrics v1.151 turns a native histogram it is sent into
// vmrange buckets with bounds rounded to 4 significant digits, and a
// Prometheus or Mimir without native histograms enabled drops them. A
// histogram X is written in VictoriaMetrics' own histogram layout, with
// exact bounds:
//
//	X_bucket{vmrange="<lower>...<upper>"}  the observations in one native
//	                                       bucket (not cumulative), for each
//	                                       bucket that has any, and always the
//	                                       zero bucket ("0...<threshold>");
//	X_sum, X_count                         the sum and count.
//
// Every native bucket keeps its exact bounds, so a query reads X back as
// the very histogram written (percentiles agree with the embedded store),
// and VictoriaMetrics' own histogram_quantile reads X_bucket natively.

// VMRangeLabel names the bucket of a histogram part series.
const VMRangeLabel = "vmrange"

type part struct {
	lbls labels.Labels
	v    float64
}

// histogramParts is fh as the float series above, under ls's name.
func histogramParts(ls labels.Labels, fh *histogram.FloatHistogram) []part {
	name := ls.Get(labels.MetricName)
	b := labels.NewBuilder(ls)
	with := func(suffix, vmrange string, v float64) part {
		b.Set(labels.MetricName, name+suffix)
		if vmrange != "" {
			b.Set(VMRangeLabel, vmrange)
		}
		return part{lbls: b.Labels(), v: v}
	}
	out := []part{with("_sum", "", fh.Sum), with("_count", "", fh.Count)}
	out = append(out, with("_bucket", formatRange(0, fh.ZeroThreshold), fh.ZeroCount))
	for it := fh.PositiveBucketIterator(); it.Next(); {
		bk := it.At()
		if bk.Count != 0 {
			out = append(out, with("_bucket", formatRange(bk.Lower, bk.Upper), bk.Count))
		}
	}
	for it := fh.NegativeBucketIterator(); it.Next(); {
		bk := it.At()
		if bk.Count != 0 {
			out = append(out, with("_bucket", formatRange(bk.Lower, bk.Upper), bk.Count))
		}
	}
	return out
}

func formatRange(lo, hi float64) string {
	return strconv.FormatFloat(lo, 'g', -1, 64) + "..." + strconv.FormatFloat(hi, 'g', -1, 64)
}

// partsRegexp matches the name of a series and of its histogram parts.
func partsRegexp(name string) string {
	return regexp.QuoteMeta(name) + "(_bucket|_sum|_count)?"
}

// bucketKey places a vmrange in a native histogram: the zero bucket (its
// threshold), or a positive or negative bucket (schema and index).
type bucketKey struct {
	zero     bool
	negative bool
	schema   int32
	index    int32
	upper    float64 // the zero threshold for the zero bucket
}

// parseRange reads a vmrange written by histogramParts; ok is false for
// ranges that are no native bucket (VictoriaMetrics' own histograms).
func parseRange(s string) (k bucketKey, ok bool) {
	los, his, found := strings.Cut(s, "...")
	if !found {
		return k, false
	}
	lo, err1 := strconv.ParseFloat(los, 64)
	hi, err2 := strconv.ParseFloat(his, 64)
	if err1 != nil || err2 != nil || !(hi >= lo) {
		return k, false
	}
	if lo == 0 || lo == -hi {
		// Ours ("0...t"), or VictoriaMetrics' own conversion ("-t...t").
		return bucketKey{zero: true, upper: hi}, true
	}
	if lo < 0 {
		lo, hi = -hi, -lo
		k.negative = true
	}
	if lo <= 0 {
		return k, false
	}
	// A bucket of schema s spans a factor of 2^(2^-s); its index i has the
	// upper bound 2^(i/2^s).
	schema := math.Round(-math.Log2(math.Log2(hi / lo)))
	if schema < float64(histogram.ExponentialSchemaMin) || schema > float64(histogram.ExponentialSchemaMax) {
		return k, false
	}
	k.schema = int32(schema)
	k.index = int32(math.Round(math.Log2(hi) * math.Exp2(schema)))
	return k, true
}

// histAcc gathers one histogram series' parts by timestamp.
type histAcc struct {
	lbls    labels.Labels
	buckets map[int64][]bucketSample
	sum     map[int64]float64
	count   map[int64]float64
}

type bucketSample struct {
	k bucketKey
	v float64
}

// assemble turns the answer to a Select of name (its series and its
// histogram parts) into series: name's own series as they are, and each
// histogram written as parts back into native histogram samples. Parts of
// a classic histogram of that name (buckets with le) are left out.
func assemble(name string, m model.Matrix) []storage.Series {
	var out []storage.Series
	hists := map[string]*histAcc{}
	acc := func(ls labels.Labels) *histAcc {
		b := labels.NewBuilder(ls)
		b.Set(labels.MetricName, name)
		b.Del(VMRangeLabel)
		ls = b.Labels()
		key := ls.String()
		h := hists[key]
		if h == nil {
			h = &histAcc{lbls: ls, buckets: map[int64][]bucketSample{}, sum: map[int64]float64{}, count: map[int64]float64{}}
			hists[key] = h
		}
		return h
	}
	for _, s := range m {
		ls := toLabels(s.Metric)
		switch ls.Get(labels.MetricName) {
		case name:
			out = append(out, floatsOf(ls, s.Values))
		case name + "_bucket":
			k, ok := parseRange(ls.Get(VMRangeLabel))
			if !ok {
				continue
			}
			h := acc(ls)
			for _, p := range s.Values {
				h.buckets[int64(p.Timestamp)] = append(h.buckets[int64(p.Timestamp)], bucketSample{k: k, v: float64(p.Value)})
			}
		case name + "_sum":
			h := acc(ls)
			for _, p := range s.Values {
				h.sum[int64(p.Timestamp)] = float64(p.Value)
			}
		case name + "_count":
			h := acc(ls)
			for _, p := range s.Values {
				h.count[int64(p.Timestamp)] = float64(p.Value)
			}
		}
	}
	for _, h := range hists {
		if len(h.buckets) == 0 {
			continue // the _sum and _count of a classic histogram
		}
		ts := make([]int64, 0, len(h.buckets))
		for t := range h.buckets {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		s := &histSeries{lbls: h.lbls}
		for _, t := range ts {
			s.samples = append(s.samples, histSample{t: t, fh: build(h.buckets[t], h.sum[t], h.count[t])})
		}
		out = append(out, s)
	}
	return out
}

// build makes a native histogram of one timestamp's parts.
func build(bs []bucketSample, sum, count float64) *histogram.FloatHistogram {
	fh := &histogram.FloatHistogram{Sum: sum, Count: count, Schema: histogram.ExponentialSchemaMax}
	var pos, neg []bucketSample
	schemaSet := false
	for _, b := range bs {
		switch {
		case b.k.zero:
			fh.ZeroThreshold, fh.ZeroCount = b.k.upper, b.v
			continue
		case b.k.negative:
			neg = append(neg, b)
		default:
			pos = append(pos, b)
		}
		if !schemaSet || b.k.schema < fh.Schema {
			fh.Schema, schemaSet = b.k.schema, true
		}
	}
	// With no bucket but the zero bucket (every observation 0, as a node's
	// figures of 0 ms calls are), the schema is the finest: summing it with
	// another node's histogram then keeps that one's schema, where 0 would
	// coarsen the sum's buckets and move its percentiles.
	if !schemaSet {
		fh.Schema = histogram.ExponentialSchemaMax
	}
	fh.PositiveSpans, fh.PositiveBuckets = spansOf(pos, fh.Schema)
	fh.NegativeSpans, fh.NegativeBuckets = spansOf(neg, fh.Schema)
	return fh
}

// spansOf lays buckets (all of one schema when one node of one version
// wrote them; a coarser schema wins otherwise) out as spans and counts.
func spansOf(bs []bucketSample, schema int32) ([]histogram.Span, []float64) {
	if len(bs) == 0 {
		return nil, nil
	}
	counts := map[int32]float64{}
	for _, b := range bs {
		idx := b.k.index
		for s := b.k.schema; s > schema; s-- {
			idx = (idx + 1) >> 1 // merge pairs of buckets into the coarser one
		}
		counts[idx] += b.v
	}
	idxs := make([]int32, 0, len(counts))
	for i := range counts {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	var spans []histogram.Span
	var vals []float64
	prev := int32(0)
	for n, i := range idxs {
		switch {
		case n == 0:
			spans = append(spans, histogram.Span{Offset: i, Length: 1})
		case i == prev+1:
			spans[len(spans)-1].Length++
		default:
			spans = append(spans, histogram.Span{Offset: i - prev - 1, Length: 1})
		}
		vals = append(vals, counts[i])
		prev = i
	}
	return spans, vals
}

// histSeries is a histogram series reassembled in memory.
type histSeries struct {
	lbls    labels.Labels
	samples []histSample
}

func (s *histSeries) Labels() labels.Labels { return s.lbls }
func (s *histSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return storage.NewListSeriesIterator(s)
}
func (s *histSeries) Get(i int) chunks.Sample { return &s.samples[i] }
func (s *histSeries) Len() int                { return len(s.samples) }

type histSample struct {
	t  int64
	fh *histogram.FloatHistogram
}

func (s *histSample) T() int64                      { return s.t }
func (s *histSample) ST() int64                     { return 0 }
func (s *histSample) F() float64                    { return 0 }
func (s *histSample) H() *histogram.Histogram       { return nil }
func (s *histSample) FH() *histogram.FloatHistogram { return s.fh }
func (s *histSample) Type() chunkenc.ValueType      { return chunkenc.ValFloatHistogram }
func (s *histSample) Copy() chunks.Sample           { return &histSample{t: s.t, fh: s.fh.Copy()} }
