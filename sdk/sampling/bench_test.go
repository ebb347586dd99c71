package sampling

import (
	"context"
	"github.com/skytrail/skytrail/sdk/internal/benchcpu"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkShouldSample is the sampler's cost per root span while it keeps
// every trace (the kept path, the slower one), beside OpenTelemetry's
// AlwaysSample, which decides nothing.
func BenchmarkShouldSample(b *testing.B) {
	run := func(b *testing.B, s sdktrace.Sampler) {
		p := sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: trace.TraceID{0: 1, 15: 1}, Name: "GET /x"}
		b.ReportAllocs()
		stop := benchcpu.Start(b)
		for b.Loop() {
			if s.ShouldSample(p).Decision != sdktrace.RecordAndSample {
				b.Fatal("dropped")
			}
		}
		stop()
	}
	b.Run("always-sample", func(b *testing.B) { run(b, sdktrace.AlwaysSample()) })
	b.Run("adaptive", func(b *testing.B) {
		s, err := NewAdaptive(1e12)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Stop)
		run(b, s)
	})
}
