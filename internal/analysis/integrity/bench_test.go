package integrity

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/loadgen"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// batch is about 1,000 spans of the traces `skytrail loadgen` sends, from
// 10 services; seeds give distinct trace and span IDs.
func batch(seed uint64) ptrace.Traces {
	td, err := loadgen.Traces(1000, 10, seed, time.Now())
	if err != nil {
		panic(err)
	}
	return td
}

// BenchmarkConsumeTraces measures the hot path: what every ingested span
// costs the integrity analysis before the request is acknowledged.
func BenchmarkConsumeTraces(b *testing.B) {
	a := New(Config{})
	// Distinct traces in every batch, as in a running server.
	batches := make([]pipeline.Traces, 50)
	for i := range batches {
		batches[i] = pipeline.TracesOf(batch(uint64(i*10 + 1)))
	}
	spans := batches[0].SpanCount()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = a.ConsumeTraces(ctx, batches[i%50])
		if i%50 == 49 {
			b.StopTimer()
			a.Judge(time.Now().Add(time.Hour)) // drain, as the background loop does
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

// BenchmarkJudge measures the background work per span judged.
func BenchmarkJudge(b *testing.B) {
	a := New(Config{})
	td := pipeline.TracesOf(batch(1))
	spans := td.SpanCount()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_ = a.ConsumeTraces(ctx, td)
		b.StartTimer()
		a.Judge(time.Now().Add(time.Hour))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

// TestSamplesUnderLoad: more traces than the buffer holds are judged as a
// sample of whole traces, none losing spans, and judging returns to every
// trace when the load drops.
func TestSamplesUnderLoad(t *testing.T) {
	t.Parallel()
	a := New(Config{MaxSpans: 1000})
	ctx := context.Background()
	now := time.Now()
	send := func(traces int) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "busy")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for range traces {
			var tid pcommon.TraceID
			_, _ = rand.Read(tid[:])
			root := spans.AppendEmpty()
			root.SetTraceID(tid)
			root.SetSpanID(pcommon.SpanID{1})
			root.SetKind(ptrace.SpanKindServer)
			child := spans.AppendEmpty()
			child.SetTraceID(tid)
			child.SetSpanID(pcommon.SpanID{2})
			child.SetParentSpanID(pcommon.SpanID{1})
		}
		_ = a.ConsumeTraces(ctx, pipeline.TracesOf(td))
	}
	// Each round sends 600 spans; only the judging pass after the grace
	// period frees them, so the buffer stays over half full.
	for range 6 {
		send(300)
		a.Judge(now)
	}
	if a.shift == 0 {
		t.Fatal("no sampling with the buffer full")
	}
	a.Judge(now.Add(time.Hour))
	r := a.Findings("")
	if r.Sampled >= 1 {
		t.Errorf("sampled %v under load", r.Sampled)
	}
	for _, f := range r.Findings {
		if f.Kind == KindBrokenTrace {
			t.Errorf("sampling broke traces: %+v", f)
		}
	}
	for range 12 {
		a.Judge(now.Add(time.Hour))
	}
	if r := a.Findings(""); r.Sampled != 1 {
		t.Errorf("sampled %v after the load went", r.Sampled)
	}
}

// TestLateSpans: a span arriving after its trace was judged is not an
// orphan: its parent was judged before.
func TestLateSpans(t *testing.T) {
	t.Parallel()
	a := New(Config{})
	ctx := context.Background()
	now := time.Now()
	tid := pcommon.TraceID{7}
	send := func(id, parent byte, kind ptrace.SpanKind) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "orders")
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{id})
		if parent != 0 {
			s.SetParentSpanID(pcommon.SpanID{parent})
		}
		s.SetKind(kind)
		_ = a.ConsumeTraces(ctx, pipeline.TracesOf(td))
	}
	send(1, 0, ptrace.SpanKindServer)
	a.Judge(now.Add(time.Hour))
	send(2, 1, ptrace.SpanKindConsumer) // a minute later, from a queue
	a.Judge(now.Add(2 * time.Hour))
	// Judged two hours on, orders is silent by then; nothing else is wrong.
	r := a.Findings("")
	r.Findings = slices.DeleteFunc(r.Findings, func(f Finding) bool { return f.Kind == KindSilentService })
	if len(r.Findings) > 0 || r.JudgedTraces != 2 {
		t.Errorf("late span: %d judged, findings %+v", r.JudgedTraces, r.Findings)
	}
}
