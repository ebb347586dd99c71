package spanstore

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchBatch builds 100 traces of 10 spans, each span with ten attributes,
// spread over four services: the shape of the ingest benchmark.
func benchBatch(seq uint64, now time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	services := []string{"frontend", "order", "inventory", "payment"}
	scopes := make([]ptrace.SpanSlice, len(services))
	for i, svc := range services {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("service.instance.id", svc+"-1")
		rs.Resource().Attributes().PutStr("host.name", "node-7")
		rs.Resource().Attributes().PutInt("process.pid", 1234)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		scopes[i] = ss.Spans()
	}
	for t := uint64(0); t < 100; t++ {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[:8], seq)
		binary.BigEndian.PutUint64(tid[8:], t+1)
		start := now.Add(time.Duration(t) * time.Millisecond)
		var parent pcommon.SpanID
		for s := uint64(0); s < 10; s++ {
			sp := scopes[s%4].AppendEmpty()
			sp.SetTraceID(tid)
			var sid pcommon.SpanID
			binary.BigEndian.PutUint64(sid[:], seq<<20|t<<8|s+1)
			sp.SetSpanID(sid)
			sp.SetParentSpanID(parent)
			parent = sid
			sp.SetName("GET /api/orders/{id}")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(1000+t*s*37) * time.Microsecond)))
			a := sp.Attributes()
			a.PutStr("http.request.method", "GET")
			a.PutStr("http.route", "/api/orders/{id}")
			a.PutStr("url.path", "/api/orders/1001")
			a.PutInt("http.response.status_code", 200)
			a.PutStr("server.address", "order.svc")
			a.PutInt("server.port", 8080)
			a.PutStr("user_id", "u-42")
			a.PutInt("order_id", int64(1000+t))
			a.PutStr("network.protocol.version", "1.1")
			a.PutStr("user_agent.original", "Go-http-client/1.1")
		}
	}
	return td
}

func BenchmarkConsumeTraces(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	batches := make([]ptrace.Traces, 64)
	for i := range batches {
		batches[i] = benchBatch(uint64(i+1), now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.ConsumeTraces(context.Background(), batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkGetTrace looks traces up by ID in a store of 1M spans (100k
// traces); bench/ingest measures the same through the HTTP API at 10M.
func BenchmarkGetTrace(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now().Add(-time.Hour)
	const batches = 1000
	for i := 0; i < batches; i++ {
		if err := s.ConsumeTraces(context.Background(), benchBatch(uint64(i+1), now.Add(time.Duration(i)*100*time.Millisecond))); err != nil {
			b.Fatal(err)
		}
	}
	s.Flush()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var id pcommon.TraceID
		binary.BigEndian.PutUint64(id[:8], uint64(i*7919%batches+1))
		binary.BigEndian.PutUint64(id[8:], uint64(i%100+1))
		td, err := s.GetTrace(context.Background(), id)
		if err != nil || td.SpanCount() != 10 {
			b.Fatalf("trace %x: %d spans, %v", id, td.SpanCount(), err)
		}
	}
}
