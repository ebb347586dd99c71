package loadgen

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	agent "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
)

func TestPutVarint6MatchesProtobuf(t *testing.T) {
	for _, v := range []int64{sixByteVarintMin, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMilli(), sixByteVarintMax} {
		want := protowire.AppendVarint(nil, uint64(v))
		got := make([]byte, 6)
		putVarint6(got, uint64(v))
		if string(got) != string(want) {
			t.Errorf("%d: got %x, protowire %x", v, got, want)
		}
	}
}

func TestIDSourceNeverRepeats(t *testing.T) {
	ids := newIDSource(42)
	seen := map[[16]byte]bool{}
	trace, salt := make([][16]byte, 1000), make([][16]byte, 1000)
	for range 100 {
		ids.fill(trace, salt)
		for _, id := range trace {
			if seen[id] {
				t.Fatalf("trace ID %x repeats", id)
			}
			seen[id] = true
		}
	}
}

// TestPatchedOTLPBatchDecodes checks a patched batch against pdata: fresh
// trace IDs, links intact, times moved to now.
func TestPatchedOTLPBatchDecodes(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	b, err := buildOTLPBatch(newPlanner(4, 1), 300, base)
	if err != nil {
		t.Fatal(err)
	}
	ids := newIDSource(7)
	seen := map[pcommon.TraceID]bool{}
	for round := range 3 {
		now := time.Now()
		if err := b.patch(ids, now); err != nil {
			t.Fatal(err)
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b.buf); err != nil {
			t.Fatalf("round %d: patched batch does not decode: %v", round, err)
		}
		traces := map[pcommon.TraceID]map[pcommon.SpanID]pcommon.SpanID{}
		n := 0
		for _, rs := range req.Traces().ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					n++
					if traces[sp.TraceID()] == nil {
						traces[sp.TraceID()] = map[pcommon.SpanID]pcommon.SpanID{}
					}
					traces[sp.TraceID()][sp.SpanID()] = sp.ParentSpanID()
					if d := now.Sub(sp.EndTimestamp().AsTime()); d < 0 || d > 3*time.Second {
						t.Errorf("span ends %v before now", d)
					}
				}
			}
		}
		if n != b.spans || len(traces) != b.traces {
			t.Errorf("decoded %d spans in %d traces, batch says %d in %d", n, len(traces), b.spans, b.traces)
		}
		for id, spans := range traces {
			if seen[id] {
				t.Errorf("trace %v repeats after patching", id)
			}
			seen[id] = true
			for _, parent := range spans {
				if _, ok := spans[parent]; !parent.IsEmpty() && !ok {
					t.Errorf("trace %v: dangling parent %v", id, parent)
				}
			}
		}
	}
}

func TestPatchedSkyWalkingBatchDecodes(t *testing.T) {
	base := time.Now().Add(-time.Hour)
	b, err := buildSkyWalkingBatch(newPlanner(4, 1), 300, base)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := b.patch(newIDSource(7), now); err != nil {
		t.Fatal(err)
	}
	var c agent.SegmentCollection
	if err := proto.Unmarshal(b.buf, &c); err != nil {
		t.Fatalf("patched batch does not decode: %v", err)
	}
	segs := map[string]*agent.SegmentObject{}
	for _, s := range c.Segments {
		segs[s.TraceSegmentId] = s
		if _, err := hex.DecodeString(s.TraceId); err != nil || len(s.TraceId) != 32 {
			t.Errorf("trace ID %q", s.TraceId)
		}
	}
	for _, s := range c.Segments {
		for _, sp := range s.Spans {
			if d := now.Sub(time.UnixMilli(sp.EndTime)); d < 0 || d > 3*time.Second {
				t.Errorf("span ends %v before now", d)
			}
			for _, r := range sp.Refs {
				if p := segs[r.ParentTraceSegmentId]; p == nil || p.TraceId != s.TraceId || r.TraceId != s.TraceId {
					t.Errorf("ref to %s does not resolve within trace %s", r.ParentTraceSegmentId, s.TraceId)
				}
			}
		}
	}
}

// FuzzRejectedSpans feeds arbitrary server answers to the response reader.
func FuzzRejectedSpans(f *testing.F) {
	resp := ptraceotlp.NewExportResponse()
	resp.PartialSuccess().SetRejectedSpans(12)
	resp.PartialSuccess().SetErrorMessage("too old")
	ok, _ := resp.MarshalProto()
	f.Add(ok)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := rejectedSpans(ProtocolOTLP, b); len(b) == 0 && n != 0 {
			t.Fatalf("empty response rejected %d", n)
		}
	})
}

// BenchmarkPatchBatch measures the client's per-request work: fresh IDs and
// timestamps for a 1000-span request.
func BenchmarkPatchBatch(b *testing.B) {
	for _, proto := range []Protocol{ProtocolOTLP, ProtocolSkyWalking} {
		b.Run(string(proto), func(b *testing.B) {
			build := buildOTLPBatch
			if proto == ProtocolSkyWalking {
				build = buildSkyWalkingBatch
			}
			bt, err := build(newPlanner(4, 1), 1000, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			ids := newIDSource(1)
			b.SetBytes(int64(len(bt.buf)))
			b.ResetTimer()
			for b.Loop() {
				if err := bt.patch(ids, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bt.spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(len(bt.buf))/float64(bt.spans), "bytes/span")
		})
	}
}

// discardCodec lets the benchmark server take requests without decoding
// them, so the benchmark measures the client and the transport.
type discardCodec struct{}

func (discardCodec) Name() string                         { return "proto" }
func (discardCodec) Marshal(any) (mem.BufferSlice, error) { return nil, nil }
func (discardCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func discardHandler(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	return nil, dec(nil)
}

// BenchmarkRunAgainstDiscardingServer is the client's ceiling: loadgen flat
// out against a server that reads and drops each request.
func BenchmarkRunAgainstDiscardingServer(b *testing.B) {
	for _, p := range []Protocol{ProtocolOTLP, ProtocolSkyWalking} {
		b.Run(string(p), func(b *testing.B) {
			lis, addr := listen(b)
			s := grpc.NewServer(grpc.ForceServerCodecV2(discardCodec{}))
			for _, svc := range []struct{ name, method string }{
				{"opentelemetry.proto.collector.trace.v1.TraceService", "Export"},
				{"skywalking.v3.TraceSegmentReportService", "collectInSync"},
			} {
				s.RegisterService(&grpc.ServiceDesc{ServiceName: svc.name, HandlerType: (*any)(nil),
					Methods: []grpc.MethodDesc{{MethodName: svc.method, Handler: discardHandler}}}, struct{}{})
			}
			go func() { _ = s.Serve(lis) }()
			defer s.Stop()
			b.ResetTimer()
			var spans int64
			var sending time.Duration
			for b.Loop() {
				res, err := Run(b.Context(), Config{Protocol: p, Endpoint: addr, Duration: time.Second, PoolSize: 8})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Errors) > 0 {
					b.Fatal(res.Summary())
				}
				spans += res.Spans
				sending += res.Duration
			}
			b.ReportMetric(float64(spans)/sending.Seconds(), "spans/s")
		})
	}
}

func TestServicesSettingGivesThatManyServices(t *testing.T) {
	for _, n := range []int{1, 3, 4, 10} {
		p := newPlanner(n, 3)
		names := map[string]bool{}
		for range 2000 {
			for _, s := range p.next().spans {
				names[s.inst.service] = true
			}
		}
		if len(names) != n {
			t.Errorf("--services %d: traces come from %d services: %v", n, len(names), names)
		}
	}
}
