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
