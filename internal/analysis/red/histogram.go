// Package red aggregates rate, errors and duration (RED) figures per minute:
// calls, errors, Apdex counts and a latency histogram per series, written to
// the metric store as one sample per series per minute.
package red

import (
	"math"
	"sort"

	"github.com/prometheus/prometheus/model/histogram"
)

// Schema is the resolution of latency histograms: Prometheus native
// histogram schema 3, eight buckets per power of two, so neighbouring bucket
// boundaries differ by a factor of 2^(1/8) ≈ 1.09 and a percentile read from
// the histogram is within about 9% of the true value.
const Schema = 3

// ZeroThreshold (2^-20 s, about 1 µs) is the upper bound of the zero bucket;
// it lies on a bucket boundary of Schema, so no bucket straddles it.
// SkyWalking's millisecond timestamps make zero durations common.
var ZeroThreshold = math.Ldexp(1, -20)

// bounds are the fractions at which the buckets of one power of two end, as
// math.Frexp reports fractions (in [0.5, 1)).
var bounds = func() []float64 {
	b := make([]float64, 1<<Schema)
	for i := range b {
		b[i] = math.Exp2(float64(i)/float64(len(b)) - 1)
	}
	return b
}()

// bucketIndex is the native histogram bucket index of v (> ZeroThreshold):
// the bucket (2^((i-1)/8), 2^(i/8)] holds v.
func bucketIndex(v float64) int32 {
	frac, exp := math.Frexp(v)
	return int32(sort.SearchFloat64s(bounds, frac) + (exp-1)*len(bounds))
}

// Histogram counts durations in seconds into exponential buckets; Counts[i]
// is the bucket with index Offset+i.
type Histogram struct {
	Count  uint64
	Sum    float64
	Zero   uint64
	Offset int32
	Counts []uint64
}

// Observe adds one duration in seconds.
func (h *Histogram) Observe(v float64) {
	if v <= ZeroThreshold {
		h.put(v, true, 0)
		return
	}
	h.put(v, false, bucketIndex(v))
}

// put adds one duration v whose bucket is known: the zero bucket, or the
// bucket with index idx. Counting one duration into two histograms (a
// minute's and the running total) finds its bucket once.
func (h *Histogram) put(v float64, zero bool, idx int32) {
	h.Count++
	h.Sum += v
	if zero {
		h.Zero++
		return
	}
	h.Counts, h.Offset = GrowBuckets(h.Counts, h.Offset, idx)
	h.Counts[idx-h.Offset]++
}

// GrowBuckets makes room for bucket idx in dense buckets whose first index
// is offset, growing them at either end; it returns the buckets and their
// first index.
func GrowBuckets[T uint64 | float64](buckets []T, offset, idx int32) ([]T, int32) {
	switch {
	case len(buckets) == 0:
		return append(buckets, 0), idx
	case idx < offset:
		grown := make([]T, int(offset-idx)+len(buckets))
		copy(grown[offset-idx:], buckets)
		return grown, idx
	case int(idx-offset) >= len(buckets):
		return append(buckets, make([]T, int(idx-offset)-len(buckets)+1)...), offset
	}
	return buckets, offset
}

// Float is the histogram as a Prometheus gauge histogram: it describes one
// minute, not a running total, so PromQL must not look for counter resets.
func (h *Histogram) Float() *histogram.FloatHistogram {
	fh := &histogram.FloatHistogram{
		CounterResetHint: histogram.GaugeType,
		Schema:           Schema,
		ZeroThreshold:    ZeroThreshold,
		ZeroCount:        float64(h.Zero),
		Count:            float64(h.Count),
		Sum:              h.Sum,
	}
	if len(h.Counts) > 0 {
		fh.PositiveSpans = []histogram.Span{{Offset: h.Offset, Length: uint32(len(h.Counts))}}
		fh.PositiveBuckets = make([]float64, len(h.Counts))
		for i, c := range h.Counts {
			fh.PositiveBuckets[i] = float64(c)
		}
	}
	return fh.Compact(0)
}

// Counter is the histogram as a Prometheus counter histogram: a running
// total that only grows until the process restarts, which rate() and
// increase() read (and whose drop at a restart they take as a reset).
// Integer buckets, which the TSDB encodes as deltas: smaller than float
// buckets for the same counts.
func (h *Histogram) Counter() *histogram.Histogram {
	ih := &histogram.Histogram{
		Schema:        Schema,
		ZeroThreshold: ZeroThreshold,
		ZeroCount:     h.Zero,
		Count:         h.Count,
		Sum:           h.Sum,
	}
	if len(h.Counts) > 0 {
		ih.PositiveSpans = []histogram.Span{{Offset: h.Offset, Length: uint32(len(h.Counts))}}
		ih.PositiveBuckets = make([]int64, len(h.Counts))
		var prev int64
		for i, c := range h.Counts {
			ih.PositiveBuckets[i] = int64(c) - prev // delta-encoded, as Histogram wants
			prev = int64(c)
		}
	}
	return ih.Compact(0)
}

// clone is a copy of h sharing nothing with it.
func (h *Histogram) clone() Histogram {
	c := *h
	c.Counts = append([]uint64(nil), h.Counts...)
	return c
}
