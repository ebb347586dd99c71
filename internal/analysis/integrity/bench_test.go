package integrity

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// batch builds 1000 spans from 10 services with about 8 attributes each:
// per request a server span, an HTTP client span to the next service, a
// database call and two internal spans, in 10 traces numbered from
// firstTrace.
func batch(firstTrace uint64) ptrace.Traces {
	td := ptrace.NewTraces()
	now := time.Now()
	var id uint64
	nextID := func() pcommon.SpanID {
		id++
		var s pcommon.SpanID
		binary.BigEndian.PutUint64(s[:], id)
		return s
	}
	for svc := range 10 {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", fmt.Sprintf("service-%d", svc))
		ra.PutStr("service.instance.id", fmt.Sprintf("service-%d-7f9c", svc))
		ra.PutStr("telemetry.sdk.name", "opentelemetry")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for req := range 20 {
			var trace pcommon.TraceID
			binary.BigEndian.PutUint64(trace[:], firstTrace+uint64(req%10))
			start := pcommon.NewTimestampFromTime(now)
			end := pcommon.NewTimestampFromTime(now.Add(10 * time.Millisecond))
			add := func(kind ptrace.SpanKind, name string, parent pcommon.SpanID) ptrace.Span {
				s := spans.AppendEmpty()
				s.SetTraceID(trace)
				s.SetSpanID(nextID())
				s.SetParentSpanID(parent)
				s.SetKind(kind)
				s.SetName(name)
				s.SetStartTimestamp(start)
				s.SetEndTimestamp(end)
				s.SetFlags(0x100 | 0x200)
				a := s.Attributes()
				a.PutStr("http.request.method", "GET")
				a.PutStr("url.path", "/api/items/42")
				a.PutStr("http.route", "/api/items/{id}")
				a.PutInt("http.response.status_code", 200)
				a.PutStr("client.address", "10.0.0.12")
				return s
			}
			srv := add(ptrace.SpanKindServer, "GET /api/items/{id}", pcommon.SpanID{})
			srv.Attributes().PutStr("server.address", fmt.Sprintf("service-%d", svc))
			srv.Attributes().PutInt("server.port", 8080)
			cl := add(ptrace.SpanKindClient, "GET", srv.SpanID())
			cl.Attributes().PutStr("server.address", fmt.Sprintf("service-%d", (svc+1)%10))
			cl.Attributes().PutInt("server.port", 8080)
			db := add(ptrace.SpanKindClient, "SELECT items", srv.SpanID())
			db.Attributes().PutStr("db.system", "postgresql")
			db.Attributes().PutStr("server.address", "pg")
			add(ptrace.SpanKindInternal, "render", srv.SpanID())
			add(ptrace.SpanKindInternal, "encode", srv.SpanID())
		}
	}
	return td
}

// BenchmarkConsumeTraces measures the hot path: what every ingested span
// costs the integrity analysis before the request is acknowledged.
func BenchmarkConsumeTraces(b *testing.B) {
	a := New(Config{})
	// Distinct traces in every batch, as in a running server.
	batches := make([]ptrace.Traces, 50)
	for i := range batches {
		batches[i] = batch(uint64(i*10 + 1))
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
	td := batch(1)
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
		_ = a.ConsumeTraces(ctx, td)
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
		_ = a.ConsumeTraces(ctx, td)
	}
	send(1, 0, ptrace.SpanKindServer)
	a.Judge(now.Add(time.Hour))
	send(2, 1, ptrace.SpanKindConsumer) // a minute later, from a queue
	a.Judge(now.Add(2 * time.Hour))
	if r := a.Findings(""); len(r.Findings) > 0 || r.JudgedTraces != 2 {
		t.Errorf("late span: %d judged, findings %+v", r.JudgedTraces, r.Findings)
	}
}
