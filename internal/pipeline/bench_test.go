package pipeline_test

import (
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
)

// BenchmarkValidate measures what validation costs every span on the hot
// path, over loadgen's realistic traces.
func BenchmarkValidate(b *testing.B) {
	now := time.Now()
	td, err := loadgen.Traces(1000, 4, 1, now)
	if err != nil {
		b.Fatal(err)
	}
	spans := td.SpanCount()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if v := pipeline.Validate(td, pipeline.Limits{}, now); v.Rejected != 0 {
			b.Fatal(v.FirstError)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

// BenchmarkEncodeRecord measures what the write-ahead log's record costs
// every span on the hot path: the batch marshalled to OTLP protobuf.
func BenchmarkEncodeRecord(b *testing.B) {
	td, err := loadgen.Traces(1000, 4, 1, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	t := pipeline.TracesOf(td)
	spans := td.SpanCount()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec, err := pipeline.EncodeRecord(&t)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(rec)))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}
