package analysis

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/analysis/servicemap"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
)

// realisticBatch builds 1000 spans from 10 services, about 10 attributes
// each: per request a server span, an HTTP client span answered by the
// next service's server span, a database call and two internal spans.
func realisticBatch() ptrace.Traces {
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
		ra.PutStr("host.name", "node-1")
		ra.PutInt("process.pid", int64(1000+svc))
		ra.PutStr("telemetry.sdk.name", "opentelemetry")
		ra.PutStr("telemetry.sdk.language", "go")
		ra.PutStr("telemetry.sdk.version", "1.47.0")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for req := range 20 {
			var trace pcommon.TraceID
			binary.BigEndian.PutUint64(trace[:], uint64(svc*1000+req+1))
			start := pcommon.NewTimestampFromTime(now.Add(-time.Duration(req) * time.Millisecond))
			end := pcommon.NewTimestampFromTime(now.Add(time.Duration(req%7+1) * 10 * time.Millisecond))
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
				a.PutStr("network.protocol.version", "1.1")
				a.PutStr("user_agent.original", "Go-http-client/1.1")
				a.PutStr("client.address", "10.0.0.12")
				return s
			}
			var upstream pcommon.SpanID
			if req > 0 {
				upstream = spans.At(spans.Len() - 4).SpanID() // the previous request's client span
			}
			srv := add(ptrace.SpanKindServer, "GET /api/items/{id}", upstream)
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

func BenchmarkConsumeTraces(b *testing.B) {
	store, err := metricstore.Open(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	a := New(Config{}, store)
	td := realisticBatch()
	spans := td.SpanCount()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			// Age the joins as the background tick would, so the table
			// stays as small as it would in a running server.
			a.mu.Lock()
			a.joiner.Rotate(func(c servicemap.Call) { a.resolveCall(c, time.Now().UnixMilli()) }, func(e servicemap.Entry) { a.resolveEntry(e, time.Now().UnixMilli()) })
			a.mu.Unlock()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() { _ = a.ConsumeTraces(ctx, td) }))/float64(spans), "allocs/span")
}
