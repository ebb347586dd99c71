package loadgen

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	common "skywalking.apache.org/repo/goapi/collect/common/v3"
	agent "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
)

// serve starts a gRPC server on 127.0.0.1:0 and stops it when the test ends.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, addr := listen(t)
	s := grpc.NewServer()
	register(s)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return addr
}

func listen(tb testing.TB) (net.Listener, string) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return lis, lis.Addr().String()
}

// otlpSink is a real OTLP trace receiver that decodes every request with
// pdata and checks what a storage backend would rely on.
type otlpSink struct {
	ptraceotlp.UnimplementedGRPCServer
	t *testing.T

	mu        sync.Mutex
	fail      func(call int) error // optional: the error to answer call n with
	calls     int
	requests  int
	spans     int
	attrs     int
	errSpans  int
	events    int
	traceIDs  map[pcommon.TraceID]bool
	services  map[string]bool
	problems  int
	rejectAll bool
}

func newOTLPSink(t *testing.T) *otlpSink {
	return &otlpSink{t: t, traceIDs: map[pcommon.TraceID]bool{}, services: map[string]bool{}}
}

func (s *otlpSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		if err := s.fail(s.calls); err != nil {
			return ptraceotlp.NewExportResponse(), err
		}
	}
	s.requests++
	now := time.Now()
	td := req.Traces()
	spansOf := map[pcommon.TraceID]map[pcommon.SpanID]pcommon.SpanID{} // trace -> span -> parent
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		s.services[svc.Str()] = true
		for _, k := range []string{"service.instance.id", "host.name", "process.pid", "telemetry.sdk.name"} {
			if _, ok := rs.Resource().Attributes().Get(k); !ok {
				s.problem("resource lacks %s", k)
			}
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				s.spans++
				s.attrs += sp.Attributes().Len()
				s.events += sp.Events().Len()
				if sp.Status().Code() == ptrace.StatusCodeError {
					s.errSpans++
					if sp.Status().Message() == "" {
						s.problem("error span %q without a status message", sp.Name())
					}
				}
				start, end := sp.StartTimestamp().AsTime(), sp.EndTimestamp().AsTime()
				if start.Before(now.Add(-time.Minute)) || end.After(now.Add(time.Second)) || end.Before(start) {
					s.problem("span %q runs %v..%v, not within the last minute of %v", sp.Name(), start, end, now)
				}
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					s.problem("span %q has an empty ID", sp.Name())
				}
				m := spansOf[sp.TraceID()]
				if m == nil {
					m = map[pcommon.SpanID]pcommon.SpanID{}
					spansOf[sp.TraceID()] = m
				}
				if _, dup := m[sp.SpanID()]; dup {
					s.problem("span ID %v repeats in trace %v", sp.SpanID(), sp.TraceID())
				}
				m[sp.SpanID()] = sp.ParentSpanID()
			}
		}
	}
	for tid, spans := range spansOf {
		if s.traceIDs[tid] {
			s.problem("trace ID %v was sent before", tid)
		}
		s.traceIDs[tid] = true
		roots := 0
		for _, parent := range spans {
			if parent.IsEmpty() {
				roots++
			} else if _, ok := spans[parent]; !ok {
				s.problem("trace %v: parent %v is not in the trace", tid, parent)
			}
		}
		if roots != 1 {
			s.problem("trace %v has %d roots", tid, roots)
		}
	}
	resp := ptraceotlp.NewExportResponse()
	if s.rejectAll {
		resp.PartialSuccess().SetRejectedSpans(int64(td.SpanCount()))
		resp.PartialSuccess().SetErrorMessage("test rejects everything")
	}
	return resp, nil
}

func (s *otlpSink) problem(format string, args ...any) {
	s.problems++
	if s.problems <= 10 { // enough to see what is wrong
		s.t.Errorf(format, args...)
	}
}

func startOTLP(t *testing.T, sink *otlpSink) string {
	return serve(t, func(s *grpc.Server) { ptraceotlp.RegisterGRPCServer(s, sink) })
}

func TestOTLPLoadReachesARealReceiver(t *testing.T) {
	sink := newOTLPSink(t)
	addr := startOTLP(t, sink)
	var progress strings.Builder
	res, err := Run(t.Context(), Config{
		Endpoint: addr, Rate: 20000, Duration: 1500 * time.Millisecond,
		Batch: 500, PoolSize: 8, Concurrency: 2,
		Progress: &progress, ProgressInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if res.Spans != int64(sink.spans) || res.Requests != int64(sink.requests) {
		t.Errorf("loadgen counted %d spans in %d requests, the receiver got %d in %d",
			res.Spans, res.Requests, sink.spans, sink.requests)
	}
	if len(res.Errors) != 0 || len(res.Retries) != 0 {
		t.Errorf("errors %v, retries %v against a healthy receiver", res.Errors, res.Retries)
	}
	// 20k spans/s for 1.5 s is 30k, plus the request sent at once; fewer
	// only if this machine cannot keep up.
	if res.Spans < 15000 || res.Spans > 32000 {
		t.Errorf("sent %d spans at 20000/s for 1.5s", res.Spans)
	}
	if avg := float64(sink.attrs) / float64(sink.spans); avg < 9 || avg > 12 {
		t.Errorf("%.1f attributes per span, want about 10", avg)
	}
	if rate := float64(sink.errSpans) / float64(sink.spans); rate < 0.005 || rate > 0.05 {
		t.Errorf("%.3f of spans are errors, want about 0.02", rate)
	}
	if sink.events == 0 {
		t.Error("no span events")
	}
	for _, svc := range []string{"frontend", "order", "inventory", "payment"} {
		if !sink.services[svc] {
			t.Errorf("no spans from service %s (got %v)", svc, sink.services)
		}
	}
	if n := strings.Count(progress.String(), "\n"); n < 3 || !strings.Contains(progress.String(), "sent ") {
		t.Errorf("progress output has %d lines:\n%s", n, progress.String())
	}
}

func TestOTLPRetriesRetryableErrorsAndCountsPermanentOnes(t *testing.T) {
	sink := newOTLPSink(t)
	sink.fail = func(call int) error {
		switch call {
		case 1:
			return status.Error(codes.Unavailable, "warming up")
		case 2:
			st, _ := status.New(codes.ResourceExhausted, "queue full").
				WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(10 * time.Millisecond)})
			return st.Err()
		case 5:
			return status.Error(codes.InvalidArgument, "bad span")
		}
		return nil
	}
	addr := startOTLP(t, sink)
	res, err := Run(t.Context(), Config{
		Endpoint: addr, Spans: 2000, Batch: 400, PoolSize: 2, Concurrency: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if res.Retries["Unavailable"] != 1 || res.Retries["ResourceExhausted"] != 1 || len(res.Retries) != 2 {
		t.Errorf("retries %v, want one Unavailable and one ResourceExhausted", res.Retries)
	}
	if res.Errors["InvalidArgument"] != 1 || len(res.Errors) != 1 {
		t.Errorf("errors %v, want one InvalidArgument", res.Errors)
	}
	if res.Spans != int64(sink.spans) || res.Spans+res.FailedSpans < 2000 {
		t.Errorf("acknowledged %d + failed %d spans, receiver stored %d, want 2000 issued",
			res.Spans, res.FailedSpans, sink.spans)
	}
	if !strings.Contains(res.LastError, "bad span") {
		t.Errorf("last error %q", res.LastError)
	}
}

func TestOTLPPartialSuccessIsReported(t *testing.T) {
	sink := newOTLPSink(t)
	sink.rejectAll = true
	addr := startOTLP(t, sink)
	res, err := Run(t.Context(), Config{Endpoint: addr, Spans: 1, Batch: 50, PoolSize: 1, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1 || res.RejectedSpans != res.Spans || res.Spans == 0 {
		t.Errorf("requests %d, spans %d, rejected %d: want one request, all rejected", res.Requests, res.Spans, res.RejectedSpans)
	}
}

// swSink is a real SkyWalking segment collector (goapi's generated server).
type swSink struct {
	agent.UnimplementedTraceSegmentReportServiceServer
	t *testing.T

	mu         sync.Mutex
	requests   int
	spans      int
	segments   int
	refs       int
	tags       int
	errSpans   int
	logs       int
	traceIDs   map[string]bool
	segmentIDs map[string]bool
	layers     map[agent.SpanLayer]int
	tokens     map[string]bool
}

func (s *swSink) CollectInSync(ctx context.Context, c *agent.SegmentCollection) (*common.Commands, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	md, _ := metadata.FromIncomingContext(ctx)
	for _, tok := range md.Get("authentication") {
		s.tokens[tok] = true
	}
	now := time.Now()
	byID := map[string]*agent.SegmentObject{}
	traces := map[string]bool{}
	for _, seg := range c.Segments {
		if byID[seg.TraceSegmentId] != nil || s.segmentIDs[seg.TraceSegmentId] {
			s.t.Errorf("segment ID %s repeats", seg.TraceSegmentId)
		}
		byID[seg.TraceSegmentId] = seg
		s.segmentIDs[seg.TraceSegmentId] = true
		traces[seg.TraceId] = true
	}
	for id := range traces {
		if s.traceIDs[id] {
			s.t.Errorf("trace ID %s was sent before", id)
		}
		s.traceIDs[id] = true
	}
	for _, seg := range c.Segments {
		s.segments++
		if seg.Service == "" || seg.ServiceInstance == "" || len(seg.TraceId) != 32 {
			s.t.Errorf("segment %s: service %q instance %q trace %q", seg.TraceSegmentId, seg.Service, seg.ServiceInstance, seg.TraceId)
		}
		for i, sp := range seg.Spans {
			s.spans++
			s.tags += len(sp.Tags)
			s.logs += len(sp.Logs)
			s.layers[sp.SpanLayer]++
			if sp.IsError {
				s.errSpans++
			}
			if sp.SpanId != int32(i) || (i == 0) != (sp.ParentSpanId == -1) || sp.ParentSpanId >= int32(i) {
				s.t.Errorf("segment %s span %d: spanId %d parentSpanId %d", seg.TraceSegmentId, i, sp.SpanId, sp.ParentSpanId)
			}
			start, end := time.UnixMilli(sp.StartTime), time.UnixMilli(sp.EndTime)
			if start.Before(now.Add(-time.Minute)) || end.After(now.Add(time.Second)) || end.Before(start) {
				s.t.Errorf("span %q runs %v..%v, not within the last minute of %v", sp.OperationName, start, end, now)
			}
			if sp.SpanType == agent.SpanType_Exit && sp.Peer == "" {
				s.t.Errorf("exit span %q has no peer", sp.OperationName)
			}
			for _, ref := range sp.Refs {
				s.refs++
				parent := byID[ref.ParentTraceSegmentId]
				switch {
				case parent == nil:
					s.t.Errorf("ref to segment %s, which is not in the collection", ref.ParentTraceSegmentId)
				case ref.TraceId != seg.TraceId || parent.TraceId != seg.TraceId:
					s.t.Errorf("ref crosses traces: %s -> %s", seg.TraceId, parent.TraceId)
				case int(ref.ParentSpanId) >= len(parent.Spans) || parent.Spans[ref.ParentSpanId].SpanType != agent.SpanType_Exit:
					s.t.Errorf("ref to span %d of segment %s, which is no exit span", ref.ParentSpanId, ref.ParentTraceSegmentId)
				case ref.ParentService != parent.Service || ref.NetworkAddressUsedAtPeer == "":
					s.t.Errorf("ref names parent service %q (segment's is %q), peer %q", ref.ParentService, parent.Service, ref.NetworkAddressUsedAtPeer)
				}
			}
			if i == 0 && sp.SpanType == agent.SpanType_Entry && len(sp.Refs) == 0 && seg.Service != "frontend" {
				s.t.Errorf("entry span of %s has no ref to its caller", seg.Service)
			}
		}
	}
	return &common.Commands{}, nil
}

func TestSkyWalkingLoadReachesARealCollector(t *testing.T) {
	sink := &swSink{t: t, traceIDs: map[string]bool{}, segmentIDs: map[string]bool{},
		layers: map[agent.SpanLayer]int{}, tokens: map[string]bool{}}
	addr := serve(t, func(s *grpc.Server) { agent.RegisterTraceSegmentReportServiceServer(s, sink) })
	res, err := Run(t.Context(), Config{
		Protocol: ProtocolSkyWalking, Endpoint: addr, Token: "secret",
		Rate: 20000, Duration: time.Second, Batch: 500, PoolSize: 8, Concurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if res.Spans != int64(sink.spans) || res.Requests != int64(sink.requests) || res.Spans < 10000 {
		t.Errorf("loadgen counted %d spans in %d requests, the collector got %d in %d",
			res.Spans, res.Requests, sink.spans, sink.requests)
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors %v", res.Errors)
	}
	if !sink.tokens["secret"] {
		t.Errorf("Authentication metadata: got %v", sink.tokens)
	}
	if sink.refs == 0 || sink.refs >= sink.segments {
		t.Errorf("%d refs in %d segments: every segment but a trace's first should have one", sink.refs, sink.segments)
	}
	if sink.refs+len(sink.traceIDs) != sink.segments {
		t.Errorf("%d refs + %d traces != %d segments", sink.refs, len(sink.traceIDs), sink.segments)
	}
	for _, l := range []agent.SpanLayer{agent.SpanLayer_Http, agent.SpanLayer_Database, agent.SpanLayer_Cache, agent.SpanLayer_MQ} {
		if sink.layers[l] == 0 {
			t.Errorf("no %v spans (layers %v)", l, sink.layers)
		}
	}
	if avg := float64(sink.tags) / float64(sink.spans); avg < 9 || avg > 12 {
		t.Errorf("%.1f tags per span, want about 10", avg)
	}
	if sink.errSpans == 0 || sink.logs == 0 {
		t.Errorf("%d error spans, %d logs", sink.errSpans, sink.logs)
	}
}

func TestConfigErrorsSayWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Protocol: "zipkin"}, `unknown protocol "zipkin"`},
		{Config{Rate: -1}, "rate -1"},
		{Config{Batch: -5}, "batch -5"},
		{Config{Concurrency: 5000}, "concurrency 5000"},
	} {
		_, err := Run(t.Context(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to mention %q", c.cfg, err, c.want)
		}
	}
}

func TestOversizedRequestsAreNotRetried(t *testing.T) {
	lis, addr := listen(t)
	s := grpc.NewServer(grpc.MaxRecvMsgSize(1000))
	ptraceotlp.RegisterGRPCServer(s, newOTLPSink(t))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)

	start := time.Now()
	res, err := Run(t.Context(), Config{Endpoint: addr, Spans: 1, Batch: 100, PoolSize: 1, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["ResourceExhausted"] != 1 || len(res.Retries) != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("errors %v, retries %v after %v: want one ResourceExhausted, no retries",
			res.Errors, res.Retries, time.Since(start))
	}
	if !strings.Contains(res.LastError, "larger than max") {
		t.Errorf("last error %q", res.LastError)
	}
}

func TestRunEndingDuringBackpressureLeavesSpansUnsentNotFailed(t *testing.T) {
	sink := newOTLPSink(t)
	sink.fail = func(int) error { return status.Error(codes.ResourceExhausted, "queue full") }
	addr := startOTLP(t, sink)
	res, err := Run(t.Context(), Config{Endpoint: addr, Duration: 300 * time.Millisecond, Batch: 100, PoolSize: 2, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 || res.Retries["ResourceExhausted"] == 0 || res.UnsentSpans == 0 || res.Spans != 0 {
		t.Errorf("errors %v, retries %v, unsent %d, sent %d: want retries and unsent spans only",
			res.Errors, res.Retries, res.UnsentSpans, res.Spans)
	}
}
