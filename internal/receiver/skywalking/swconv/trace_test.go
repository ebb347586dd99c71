package swconv

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/proto"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/traceid"
)

const (
	testTrace   = "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001"
	testSegment = "6e4a083be8da11f1918c9e2254654e93.28.40073696306070002"
)

// consumerSegment is what a Java agent reports for a Kafka consumer that
// queries MySQL: an MQ entry span with a cross-process ref, a database exit
// span that failed, and a local span.
func consumerSegment() *agentv3.SegmentObject {
	return &agentv3.SegmentObject{
		TraceId: testTrace, TraceSegmentId: testSegment,
		Service: "orders", ServiceInstance: "orders-1@10.0.0.7",
		Spans: []*agentv3.SpanObject{
			{
				SpanId: 1, ParentSpanId: 0, StartTime: 1700000000010, EndTime: 1700000000020,
				OperationName: "SELECT orders", Peer: "mysql:3306", SpanType: agentv3.SpanType_Exit,
				SpanLayer: agentv3.SpanLayer_Database, ComponentId: 33, IsError: true,
				Tags: []*commonv3.KeyStringValuePair{
					{Key: "db.type", Value: "Mysql"}, {Key: "db.statement", Value: "SELECT * FROM orders"},
					{Key: "sql.params", Value: "[1]"}, {Key: "sql.params", Value: "[2]"},
				},
				Logs: []*agentv3.Log{{Time: 1700000000019, Data: []*commonv3.KeyStringValuePair{
					{Key: "event", Value: "error"}, {Key: "error.kind", Value: "SQLException"}, {Key: "message", Value: "deadlock"},
				}}},
			},
			{
				SpanId: 0, ParentSpanId: -1, StartTime: 1700000000000, EndTime: 1700000000030,
				OperationName: "Kafka/orders/Consumer/g1", SpanType: agentv3.SpanType_Entry,
				SpanLayer: agentv3.SpanLayer_MQ, ComponentId: 41, SkipAnalysis: true,
				Refs: []*agentv3.SegmentReference{
					{
						RefType: agentv3.RefType_CrossProcess, TraceId: testTrace, ParentTraceSegmentId: "parent-seg",
						ParentSpanId: 3, ParentService: "checkout", ParentServiceInstance: "checkout-1",
						ParentEndpoint: "/checkout", NetworkAddressUsedAtPeer: "kafka:9092",
					},
					{RefType: agentv3.RefType_CrossProcess, TraceId: "other-trace", ParentTraceSegmentId: "other-seg", ParentSpanId: 1},
				},
			},
			{
				SpanId: 2, ParentSpanId: 0, StartTime: 1700000000021, EndTime: 1700000000025,
				OperationName: "render", SpanType: agentv3.SpanType_Local, Logs: []*agentv3.Log{
					{Time: 1700000000022, Data: []*commonv3.KeyStringValuePair{{Key: "msg", Value: "cache miss"}}},
				},
			},
		},
	}
}

func convert(t testing.TB, seg *agentv3.SegmentObject) ptrace.Traces {
	t.Helper()
	td := ptrace.NewTraces()
	n, err := AppendSegment(td, seg)
	if err != nil {
		t.Fatalf("AppendSegment: %v", err)
	}
	if n != td.SpanCount() {
		t.Fatalf("AppendSegment reported %d spans, Traces holds %d", n, td.SpanCount())
	}
	return td
}

// spansByName indexes the converted spans by operation name.
func spansByName(td ptrace.Traces) map[string]ptrace.Span {
	out := map[string]ptrace.Span{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				out[s.Name()] = s
			}
		}
	}
	return out
}

func attr(t *testing.T, m pcommon.Map, key string) string {
	t.Helper()
	v, ok := m.Get(key)
	if !ok {
		t.Errorf("attribute %s missing (have %v)", key, m.AsRaw())
		return ""
	}
	return v.AsString()
}

func TestAppendSegmentMapsIDsParentsAndAttributes(t *testing.T) {
	td := convert(t, consumerSegment())
	rs := td.ResourceSpans().At(0)
	res := rs.Resource().Attributes()
	if attr(t, res, "service.name") != "orders" || attr(t, res, "service.instance.id") != "orders-1@10.0.0.7" || attr(t, res, "telemetry.sdk.name") != "skywalking" {
		t.Errorf("resource = %v", res.AsRaw())
	}
	if got := rs.ScopeSpans().At(0).Scope().Name(); got != "skywalking" {
		t.Errorf("scope name = %q", got)
	}

	wantTrace, _ := traceid.FromString(testTrace)
	spans := spansByName(td)
	entry, db, local := spans["Kafka/orders/Consumer/g1"], spans["SELECT orders"], spans["render"]
	for name, s := range spans {
		if s.TraceID() != wantTrace {
			t.Errorf("%s: trace ID %v, want %v", name, s.TraceID(), wantTrace)
		}
	}

	// The entry span hangs under the parent segment's span 3, and the ref into
	// another trace becomes a link.
	if entry.SpanID() != traceid.SpanIDFromSegment(testSegment, 0) {
		t.Errorf("entry span ID = %v", entry.SpanID())
	}
	if want := traceid.SpanIDFromSegment("parent-seg", 3); entry.ParentSpanID() != want {
		t.Errorf("entry parent = %v, want %v (ref parent-seg/3)", entry.ParentSpanID(), want)
	}
	if entry.Kind() != ptrace.SpanKindConsumer {
		t.Errorf("MQ entry kind = %v, want consumer", entry.Kind())
	}
	ea := entry.Attributes()
	for key, want := range map[string]string{
		"sw.ref.type": "CrossProcess", "sw.ref.parent_service": "checkout", "sw.ref.parent_service_instance": "checkout-1",
		"sw.ref.parent_endpoint": "/checkout", "sw.ref.network_address": "kafka:9092",
		"sw.layer": "MQ", "sw.component": "kafka-consumer",
		"sw.skip_analysis": "true", "sw.trace_id": testTrace, "sw.segment_id": testSegment, "sw.span_id": "0",
	} {
		if got := attr(t, ea, key); got != want {
			t.Errorf("entry %s = %q, want %q", key, got, want)
		}
	}
	if id, ok := ComponentID("kafka-consumer"); !ok || id != 41 {
		t.Errorf("kafka-consumer maps back to %d, want 41", id)
	}
	// What the parent span ID (or the component name) already says is not repeated.
	for _, key := range []string{"sw.parent_span_id", "sw.ref.parent_segment_id", "sw.ref.parent_span_id", "sw.component_id"} {
		if v, ok := ea.Get(key); ok {
			t.Errorf("entry carries %s = %v", key, v.AsString())
		}
	}
	if entry.Links().Len() != 1 {
		t.Fatalf("entry links = %d, want 1", entry.Links().Len())
	}
	link := entry.Links().At(0)
	otherTrace, _ := traceid.FromString("other-trace")
	if link.TraceID() != otherTrace || link.SpanID() != traceid.SpanIDFromSegment("other-seg", 1) {
		t.Errorf("link = %v/%v", link.TraceID(), link.SpanID())
	}
	if attr(t, link.Attributes(), "sw.ref.trace_id") != "other-trace" || attr(t, link.Attributes(), "sw.ref.parent_segment_id") != "other-seg" || attr(t, link.Attributes(), "sw.ref.parent_span_id") != "1" {
		t.Errorf("link attributes = %v", link.Attributes().AsRaw())
	}

	// The database span: client kind, error status, db.system, tags, event.
	if db.ParentSpanID() != entry.SpanID() || local.ParentSpanID() != entry.SpanID() {
		t.Errorf("children's parents = %v, %v; want entry %v", db.ParentSpanID(), local.ParentSpanID(), entry.SpanID())
	}
	if db.Kind() != ptrace.SpanKindClient || local.Kind() != ptrace.SpanKindInternal {
		t.Errorf("kinds: db %v, local %v", db.Kind(), local.Kind())
	}
	if db.Status().Code() != ptrace.StatusCodeError || entry.Status().Code() != ptrace.StatusCodeUnset {
		t.Errorf("status: db %v, entry %v", db.Status().Code(), entry.Status().Code())
	}
	da := db.Attributes()
	for key, want := range map[string]string{
		"db.type": "Mysql", "db.system": "mysql", "db.statement": "SELECT * FROM orders", "sql.params": "[1], [2]",
		"sw.peer": "mysql:3306", "sw.layer": "Database", "sw.component": "mysql-connector-java",
	} {
		if got := attr(t, da, key); got != want {
			t.Errorf("db %s = %q, want %q", key, got, want)
		}
	}
	if _, ok := da.Get("sw.skip_analysis"); ok {
		t.Error("sw.skip_analysis set on a span that did not ask for it")
	}
	if db.StartTimestamp() != pcommon.Timestamp(1700000000010*1e6) || db.EndTimestamp() != pcommon.Timestamp(1700000000020*1e6) {
		t.Errorf("db times = %d..%d", db.StartTimestamp(), db.EndTimestamp())
	}
	if db.Events().Len() != 1 || db.Events().At(0).Name() != "error" || attr(t, db.Events().At(0).Attributes(), "message") != "deadlock" {
		t.Errorf("db events = %d, first %q", db.Events().Len(), db.Events().At(0).Name())
	}
	if local.Events().At(0).Name() != "log" || local.Events().At(0).Timestamp() != pcommon.Timestamp(1700000000022*1e6) {
		t.Errorf("local event = %q at %d", local.Events().At(0).Name(), local.Events().At(0).Timestamp())
	}
}

func TestAppendSegmentCrossThreadAndMQProducer(t *testing.T) {
	seg := &agentv3.SegmentObject{
		TraceId: "0af7651916cd43dd8448eb211c80319c", TraceSegmentId: "worker-seg", Service: "orders",
		Spans: []*agentv3.SpanObject{{
			SpanId: 0, ParentSpanId: -1, SpanType: agentv3.SpanType_Exit, SpanLayer: agentv3.SpanLayer_MQ,
			OperationName: "publish", StartTime: 1, EndTime: 2,
			Refs: []*agentv3.SegmentReference{{RefType: agentv3.RefType_CrossThread, ParentTraceSegmentId: "main-seg", ParentSpanId: 4}},
		}},
	}
	span := spansByName(convert(t, seg))["publish"]
	if span.Kind() != ptrace.SpanKindProducer {
		t.Errorf("MQ exit kind = %v, want producer", span.Kind())
	}
	if span.ParentSpanID() != traceid.SpanIDFromSegment("main-seg", 4) {
		t.Errorf("cross-thread parent = %v", span.ParentSpanID())
	}
	if got := attr(t, span.Attributes(), "sw.ref.type"); got != "CrossThread" {
		t.Errorf("sw.ref.type = %q", got)
	}
	want, _ := traceid.FromString("0af7651916cd43dd8448eb211c80319c")
	if span.TraceID() != want || span.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Errorf("hex trace ID not kept as bytes: %v", span.TraceID())
	}
	for _, key := range []string{"sw.trace_id", "sw.component_id", "sw.component"} {
		if v, ok := span.Attributes().Get(key); ok {
			t.Errorf("%s = %q stored though the span says it", key, v.AsString())
		}
	}
}

func TestAppendSegmentRejectsWhatCannotBePlaced(t *testing.T) {
	for name, tc := range map[string]struct {
		seg  *agentv3.SegmentObject
		want string
	}{
		"nil":        {nil, "empty segment"},
		"no service": {&agentv3.SegmentObject{TraceId: "t", TraceSegmentId: "s", Spans: []*agentv3.SpanObject{{}}}, "has no service"},
		"no segment": {&agentv3.SegmentObject{TraceId: "t", Service: "a", Spans: []*agentv3.SpanObject{{}}}, "has no traceSegmentId"},
		"no spans":   {&agentv3.SegmentObject{TraceId: "t", TraceSegmentId: "s", Service: "a"}, "has no spans"},
		"no trace":   {&agentv3.SegmentObject{TraceSegmentId: "s", Service: "a", Spans: []*agentv3.SpanObject{{}}}, "no usable traceId"},
		"zero trace": {&agentv3.SegmentObject{TraceId: strings.Repeat("0", 32), TraceSegmentId: "s", Service: "a", Spans: []*agentv3.SpanObject{{}}}, "no usable traceId"},
	} {
		t.Run(name, func(t *testing.T) {
			td := ptrace.NewTraces()
			_, err := AppendSegment(td, tc.seg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if td.ResourceSpans().Len() != 0 {
				t.Error("a rejected segment left data behind")
			}
		})
	}
}

func TestAppendSegmentKeepsOddSpansWithTheProblemRecorded(t *testing.T) {
	seg := &agentv3.SegmentObject{
		TraceId: "t1", TraceSegmentId: "s1", Service: "a", IsSizeLimited: true,
		Spans: []*agentv3.SpanObject{
			{SpanId: 0, ParentSpanId: -1, OperationName: "reversed", StartTime: 200, EndTime: 100, SpanType: 7, SpanLayer: 42, ComponentId: 99999},
			{SpanId: 1, ParentSpanId: 5, OperationName: "orphan", StartTime: -5, EndTime: 10, Tags: []*commonv3.KeyStringValuePair{{Key: "", Value: "v"}}},
			{SpanId: 2, ParentSpanId: 2, OperationName: "self", StartTime: 1, EndTime: 1 << 62},
			nil,
		},
	}
	td := convert(t, seg)
	if td.SpanCount() != 3 {
		t.Fatalf("spans = %d, want 3 (the nil one skipped)", td.SpanCount())
	}
	spans := spansByName(td)

	rev := spans["reversed"]
	if rev.EndTimestamp() != rev.StartTimestamp() {
		t.Errorf("reversed span end %d, start %d: want end clamped to start", rev.EndTimestamp(), rev.StartTimestamp())
	}
	ra := rev.Attributes()
	if p := attr(t, ra, "sw.problem"); !strings.Contains(p, "endTime 100 before startTime 200") {
		t.Errorf("sw.problem = %q", p)
	}
	if attr(t, ra, "sw.layer") != "42" || attr(t, ra, "sw.span_type") != "7" || attr(t, ra, "sw.component_id") != "99999" {
		t.Errorf("unknown enums not kept as numbers: %v", ra.AsRaw())
	}
	if _, ok := ra.Get("sw.component"); ok {
		t.Error("sw.component set for an unknown component ID")
	}
	if rev.Kind() != ptrace.SpanKindUnspecified || attr(t, ra, "sw.is_size_limited") != "true" {
		t.Errorf("kind %v, attrs %v", rev.Kind(), ra.AsRaw())
	}

	orphan := spans["orphan"]
	if orphan.ParentSpanID() != traceid.SpanIDFromSegment("s1", 5) || orphan.StartTimestamp() != orphan.EndTimestamp() {
		t.Errorf("orphan parent %v start %d end %d: want start set to end", orphan.ParentSpanID(), orphan.StartTimestamp(), orphan.EndTimestamp())
	}
	if _, ok := orphan.Attributes().Get(""); ok {
		t.Error("a tag without a key became an attribute with an empty key")
	}
	if p := attr(t, orphan.Attributes(), "sw.problem"); !strings.Contains(p, "parent span 5 is not in segment") || !strings.Contains(p, "startTime -5 not positive") || !strings.Contains(p, `pair without a key dropped (value "v")`) {
		t.Errorf("orphan sw.problem = %q", p)
	}

	self := spans["self"]
	if !self.ParentSpanID().IsEmpty() {
		t.Errorf("self-parented span kept parent %v", self.ParentSpanID())
	}
	if p := attr(t, self.Attributes(), "sw.problem"); !strings.Contains(p, "names itself as parent") || !strings.Contains(p, "clamped") {
		t.Errorf("self sw.problem = %q", p)
	}
}

func TestAppendSegmentLargeSegment(t *testing.T) {
	// More spans than fit the stack buffers, numbered sparsely.
	seg := &agentv3.SegmentObject{TraceId: "t", TraceSegmentId: "big", Service: "a"}
	for i := int32(0); i < 3*smallSegment; i++ {
		seg.Spans = append(seg.Spans, &agentv3.SpanObject{SpanId: i * 2, ParentSpanId: i*2 - 2, StartTime: 1, EndTime: 2})
	}
	seg.Spans[0].ParentSpanId = -1
	td := convert(t, seg)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 1; i < spans.Len(); i++ {
		if spans.At(i).ParentSpanID() != spans.At(i-1).SpanID() {
			t.Fatalf("span %d parent %v, want %v", i, spans.At(i).ParentSpanID(), spans.At(i-1).SpanID())
		}
		if _, ok := spans.At(i).Attributes().Get("sw.problem"); ok {
			t.Fatalf("span %d has a problem recorded", i)
		}
	}
}

func FuzzConvertSegment(f *testing.F) {
	for _, seg := range []*agentv3.SegmentObject{
		consumerSegment(),
		{TraceId: "t", TraceSegmentId: "s", Service: "a", Spans: []*agentv3.SpanObject{{SpanId: 0, ParentSpanId: -1, StartTime: 5, EndTime: 1, SpanLayer: 9, SpanType: 5}}},
		{TraceId: "t", TraceSegmentId: "s", Service: "a", Spans: []*agentv3.SpanObject{{SpanId: -3, ParentSpanId: 70, StartTime: -1, EndTime: 1 << 62, Refs: []*agentv3.SegmentReference{{RefType: 4}}}}},
	} {
		b, err := proto.Marshal(seg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seg := &agentv3.SegmentObject{}
		if proto.Unmarshal(b, seg) != nil {
			return
		}
		td := ptrace.NewTraces()
		n, err := AppendSegment(td, seg)
		if err != nil {
			if td.SpanCount() != 0 {
				t.Fatalf("rejected segment left %d spans", td.SpanCount())
			}
			return
		}
		if n != len(seg.Spans) || n != td.SpanCount() {
			t.Fatalf("converted %d (Traces %d) of %d spans", n, td.SpanCount(), len(seg.Spans))
		}
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := range spans.Len() {
			s := spans.At(i)
			if s.TraceID().IsEmpty() || s.SpanID().IsEmpty() {
				t.Fatalf("span %d without IDs", i)
			}
			if s.EndTimestamp() < s.StartTimestamp() {
				t.Fatalf("span %d ends before it starts", i)
			}
		}
	})
}

// BenchmarkConvertSegment converts a go2sky-like segment of 4 spans (entry,
// two exits with tags, a local span with a log); ns/op and allocs/op are per
// segment, the spans/s metric is per span.
func BenchmarkConvertSegment(b *testing.B) {
	seg := consumerSegment()
	seg.Spans = append(seg.Spans, &agentv3.SpanObject{
		SpanId: 3, ParentSpanId: 0, StartTime: 1700000000021, EndTime: 1700000000028, OperationName: "GET /inventory",
		Peer: "inventory:8080", SpanType: agentv3.SpanType_Exit, SpanLayer: agentv3.SpanLayer_Http, ComponentId: 5005,
		Tags: []*commonv3.KeyStringValuePair{{Key: "http.method", Value: "GET"}, {Key: "url", Value: "http://inventory:8080/items/42"}, {Key: "status_code", Value: "200"}},
	})
	seg.Spans[1].Refs = seg.Spans[1].Refs[:1]
	b.ReportAllocs()
	for b.Loop() {
		td := ptrace.NewTraces()
		if _, err := AppendSegment(td, seg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(seg.Spans))/b.Elapsed().Seconds(), "spans/s")
}
