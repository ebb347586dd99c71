package red

import (
	"math"
	"testing"
)

func TestBucketIndexBoundaries(t *testing.T) {
	for i := int32(-160); i <= 100; i++ {
		upper := math.Exp2(float64(i) / 8)
		if got := bucketIndex(upper); got != i {
			t.Fatalf("bucketIndex(2^(%d/8)=%g) = %d, want %d (upper bound is inclusive)", i, upper, got, i)
		}
		if got := bucketIndex(upper * 1.0001); got != i+1 {
			t.Fatalf("bucketIndex just above 2^(%d/8) = %d, want %d", i, got, i+1)
		}
	}
}

func TestHistogramFloatKeepsCounts(t *testing.T) {
	var h Histogram
	for _, v := range []float64{0, 0.001, 0.25, 0.002, 3, 0.25} {
		h.Observe(v)
	}
	fh := h.Float()
	if err := fh.Validate(); err != nil {
		t.Fatalf("invalid native histogram: %v", err)
	}
	if fh.Count != 6 || fh.ZeroCount != 1 || math.Abs(fh.Sum-3.503) > 1e-9 {
		t.Fatalf("count %v zero %v sum %v, want 6, 1, 3.503", fh.Count, fh.ZeroCount, fh.Sum)
	}
	var total float64
	it := fh.PositiveBucketIterator()
	for it.Next() {
		b := it.At()
		total += b.Count
	}
	if total != 5 {
		t.Fatalf("positive buckets hold %v observations, want 5", total)
	}
}
