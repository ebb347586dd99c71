package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skytrail/skytrail/internal/cluster"
	"github.com/skytrail/skytrail/internal/server"
)

// BenchmarkClusterIngest is the cost of routing: the same OTLP gRPC load
// (batches of 500 spans, 100 traces of 5, from four clients) sent to one
// node without --peers and spread over three nodes with --peers, all in
// this process, which reports spans per CPU second of the whole process
// (every node and the clients). With three nodes two thirds of the spans
// are forwarded once: decoded, validated and journaled again on their
// owner.
func BenchmarkClusterIngest(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprint(n, "_nodes"), func(b *testing.B) {
			addrs := startCluster(b, n, func(_ int, c *server.Config) {
				c.MaxInFlight = 256 << 20
				if n == 1 {
					c.Cluster = cluster.Config{} // a single node: no routing at all
				}
			}).addrs
			clients := make([]ptraceotlp.GRPCClient, len(addrs))
			for i, a := range addrs {
				conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = conn.Close() })
				clients[i] = ptraceotlp.NewGRPCClient(conn)
			}
			const perBatch = 500
			var next atomic.Uint64
			b.SetParallelism(2)
			cpu0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					req := ptraceotlp.NewExportRequestFromTraces(benchBatch(i, perBatch))
					if _, err := clients[i%uint64(len(clients))].Export(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(b.N*perBatch)/(processCPU()-cpu0).Seconds(), "spans/cpu-s")
		})
	}
}

// benchBatch is 100 traces of 5 spans (a server span and four children
// from five services), with trace IDs from seq.
func benchBatch(seq uint64, spans int) ptrace.Traces {
	td := ptrace.NewTraces()
	now := time.Now()
	per := spans / 5
	for s := range 5 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprint("bench-", s))
		rs.Resource().Attributes().PutStr("service.instance.id", fmt.Sprint("bench-", s, "-1"))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("bench")
		for t := range per {
			sp := ss.Spans().AppendEmpty()
			var tid pcommon.TraceID
			for k := range 8 {
				tid[k] = byte(seq >> (8 * k))
				tid[8+k] = byte(uint64(t) * 0x9E3779B97F4A7C15 >> (8 * k))
			}
			sp.SetTraceID(tid)
			sp.SetSpanID(pcommon.SpanID{byte(s + 1), byte(t), byte(t >> 8), 1, 2, 3, 4, 5})
			sp.SetKind(ptrace.SpanKindServer)
			if s > 0 {
				sp.SetParentSpanID(pcommon.SpanID{1, byte(t), byte(t >> 8), 1, 2, 3, 4, 5})
			}
			sp.SetName(fmt.Sprint("GET /items/", t%20))
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(3 * time.Millisecond)))
			sp.Attributes().PutStr("http.route", "/items/{id}")
			sp.Attributes().PutInt("http.status_code", 200)
		}
	}
	return td
}
