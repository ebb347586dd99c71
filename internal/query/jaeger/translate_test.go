package jaeger

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// asJSON round-trips v through encoding/json so tests assert on exactly what
// a client parses.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return out
}

type obj = map[string]any

// tagList flattens a JSON tags/fields array to key, type, value triples.
func tagList(t *testing.T, v any) [][3]any {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("tags are %T (%v), want a JSON array", v, v)
	}
	out := make([][3]any, len(arr))
	for i, e := range arr {
		kv := e.(obj)
		if len(kv) != 3 {
			t.Errorf("tag %v has fields other than key, type, value", kv)
		}
		out[i] = [3]any{kv["key"], kv["type"], kv["value"]}
	}
	return out
}

func spanByID(t *testing.T, tr obj, id string) obj {
	t.Helper()
	for _, s := range tr["spans"].([]any) {
		if s.(obj)["spanID"] == id {
			return s.(obj)
		}
	}
	t.Fatalf("span %s not in trace", id)
	return nil
}

func micros(t time.Time) float64 { return float64(t.UnixMicro()) }

func TestFromTracesSDKTrace(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 25, 14, 0, 0, 123456789, time.UTC)
	sc := sdkScenario(t, base)

	traces := FromTraces(sc.td)
	if len(traces) != 1 {
		t.Fatalf("got %d traces, want 1 (a link must not make a trace)", len(traces))
	}
	tr := asJSON(t, traces[0]).(obj)
	traceID := sc.root.TraceID().String()
	if tr["traceID"] != traceID {
		t.Errorf("traceID = %v, want %s", tr["traceID"], traceID)
	}
	if w, ok := tr["warnings"]; !ok || w != nil {
		t.Errorf("trace warnings = %v (present %v), want null", w, ok)
	}

	// Spans are in start order, so the root comes first and its process is p1.
	spans := tr["spans"].([]any)
	var order []string
	for _, s := range spans {
		order = append(order, s.(obj)["operationName"].(string))
	}
	if want := []string{"GET /orders", "SELECT orders", "reserve", "retry"}; !reflect.DeepEqual(order, want) {
		t.Errorf("span order %v, want %v", order, want)
	}

	wantProcesses := obj{
		"p1": obj{"serviceName": "checkout", "tags": []any{
			obj{"key": "host.name", "type": "string", "value": "h1"},
			obj{"key": "service.version", "type": "string", "value": "1.2.3"},
		}},
		"p2": obj{"serviceName": "inventory", "tags": []any{
			obj{"key": "process.pid", "type": "int64", "value": float64(42)},
		}},
	}
	if !reflect.DeepEqual(tr["processes"], wantProcesses) {
		t.Errorf("processes = %v\nwant %v", tr["processes"], wantProcesses)
	}

	root := spanByID(t, tr, sc.root.SpanID().String())
	wantRoot := obj{
		"traceID":       traceID,
		"spanID":        sc.root.SpanID().String(),
		"flags":         float64(1),
		"operationName": "GET /orders",
		"references": []any{
			obj{"refType": "FOLLOWS_FROM", "traceID": sc.linked.TraceID().String(), "spanID": sc.linked.SpanID().String()},
		},
		"startTime": micros(base),
		"duration":  float64(sc.rootDur.Microseconds()),
		"logs": []any{obj{
			"timestamp": micros(base.Add(sc.eventOffset)),
			"fields": []any{
				obj{"key": "event", "type": "string", "value": "order.validated"},
				obj{"key": "items", "type": "int64", "value": float64(2)},
			},
		}},
		"processID": "p1",
		"warnings":  nil,
	}
	gotTags := tagList(t, root["tags"])
	delete(root, "tags")
	if !reflect.DeepEqual(root, wantRoot) {
		t.Errorf("root span =\n%v\nwant\n%v", root, wantRoot)
	}
	wantTags := [][3]any{
		{"otel.scope.name", "string", "skytrail/test"},
		{"otel.scope.version", "string", "0.1.0"},
		{"cache.hit", "bool", true},
		{"http.method", "string", "GET"},
		{"labels", "string", `["a","b"]`},
		{"order.big", "int64", strconv.FormatInt(sc.big, 10)},
		{"order.count", "int64", float64(3)},
		{"ratio", "float64", 0.25},
		{"span.kind", "string", "server"},
		{"otel.status_code", "string", "OK"},
	}
	if !reflect.DeepEqual(gotTags, wantTags) {
		t.Errorf("root tags =\n%v\nwant\n%v", gotTags, wantTags)
	}

	query := spanByID(t, tr, sc.query.SpanID().String())
	if want := []any{obj{"refType": "CHILD_OF", "traceID": traceID, "spanID": sc.root.SpanID().String()}}; !reflect.DeepEqual(query["references"], want) {
		t.Errorf("query references = %v, want %v", query["references"], want)
	}
	wantQueryTags := [][3]any{
		{"otel.scope.name", "string", "skytrail/test"},
		{"otel.scope.version", "string", "0.1.0"},
		{"span.kind", "string", "client"},
		{"otel.status_code", "string", "ERROR"},
		{"error", "bool", true},
		{"otel.status_description", "string", "db timeout"},
	}
	if got := tagList(t, query["tags"]); !reflect.DeepEqual(got, wantQueryTags) {
		t.Errorf("query tags =\n%v\nwant\n%v", got, wantQueryTags)
	}
	if logs, ok := query["logs"].([]any); !ok || len(logs) != 0 {
		t.Errorf("query logs = %v, want []", query["logs"])
	}
	if query["startTime"] != micros(base.Add(10*time.Millisecond)) || query["duration"] != float64(100_000) {
		t.Errorf("query startTime/duration = %v/%v", query["startTime"], query["duration"])
	}

	reserve := spanByID(t, tr, sc.reserve.SpanID().String())
	if reserve["processID"] != "p2" {
		t.Errorf("reserve processID = %v, want p2", reserve["processID"])
	}
	if want := []any{obj{"refType": "CHILD_OF", "traceID": traceID, "spanID": sc.query.SpanID().String()}}; !reflect.DeepEqual(reserve["references"], want) {
		t.Errorf("reserve references = %v, want %v", reserve["references"], want)
	}
	// Same service and resource from another provider: the same process.
	if retry := spanByID(t, tr, sc.retry.SpanID().String()); retry["processID"] != "p1" {
		t.Errorf("retry processID = %v, want p1 (same resource as the root)", retry["processID"])
	}
}

// TestFromTracesEdgeValues covers what the SDK cannot send: bytes, huge and
// non-finite numbers, maps, empty values, a resource without service.name,
// trace state, unsampled spans and links that retype the parent.
func TestFromTracesEdgeValues(t *testing.T) {
	t.Parallel()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	tid := pcommon.TraceID{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
	parent := pcommon.SpanID{1, 1, 1, 1, 1, 1, 1, 1}
	span := ss.Spans().AppendEmpty()
	span.SetTraceID(tid)
	span.SetSpanID(pcommon.SpanID{2, 2, 2, 2, 2, 2, 2, 2})
	span.SetParentSpanID(parent)
	span.SetName("edge")
	span.SetStartTimestamp(2_000_000_000)
	span.SetEndTimestamp(1_000_000_000) // ends before it starts
	span.TraceState().FromRaw("vendor=x")
	a := span.Attributes()
	a.PutEmptyBytes("blob").FromRaw([]byte{0, 1, 2})
	a.PutEmptyBytes("noblob")
	a.PutInt("neg", math.MinInt64)
	a.PutInt("safe", 1<<53-1)
	a.PutDouble("nan", math.NaN())
	a.PutDouble("inf", math.Inf(-1))
	a.PutEmptyMap("m").PutStr("k", "v")
	a.PutEmpty("nil")
	link := span.Links().AppendEmpty()
	link.SetTraceID(tid)
	link.SetSpanID(parent)
	link.Attributes().PutStr("opentracing.ref_type", "follows_from")
	link2 := span.Links().AppendEmpty()
	link2.SetTraceID(tid)
	link2.SetSpanID(pcommon.SpanID{3, 3, 3, 3, 3, 3, 3, 3})
	link2.Attributes().PutStr("opentracing.ref_type", "child_of")
	ev := span.Events().AppendEmpty()
	ev.SetName("ignored")
	ev.Attributes().PutStr("event", "explicit")

	traces := FromTraces(td)
	if len(traces) != 1 {
		t.Fatalf("got %d traces", len(traces))
	}
	b, err := json.Marshal(traces[0])
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	tr := asJSON(t, traces[0]).(obj)
	if want := "0000000000000000" + "0102030405060708"; tr["traceID"] != want {
		t.Errorf("traceID %v, want %s", tr["traceID"], want)
	}
	if p := tr["processes"].(obj)["p1"].(obj); p["serviceName"] != "OTLP_EMPTY_SERVICE_NAME" || len(p["tags"].([]any)) != 0 {
		t.Errorf("process without service.name = %v", p)
	}
	s := tr["spans"].([]any)[0].(obj)
	if _, has := s["flags"]; has {
		t.Errorf("unsampled span has flags %v; Jaeger omits 0", s["flags"])
	}
	if s["duration"] != float64(0) || s["startTime"] != float64(2_000_000) {
		t.Errorf("startTime/duration = %v/%v, want 2000000/0", s["startTime"], s["duration"])
	}
	wantRefs := []any{
		obj{"refType": "FOLLOWS_FROM", "traceID": tr["traceID"], "spanID": "0101010101010101"},
		obj{"refType": "CHILD_OF", "traceID": tr["traceID"], "spanID": "0303030303030303"},
	}
	if !reflect.DeepEqual(s["references"], wantRefs) {
		t.Errorf("references = %v\nwant %v", s["references"], wantRefs)
	}
	wantTags := [][3]any{
		{"blob", "binary", "AAEC"},
		{"inf", "float64", "-Inf"},
		{"m", "string", `{"k":"v"}`},
		{"nan", "float64", "NaN"},
		{"neg", "int64", "-9223372036854775808"},
		{"nil", "string", ""},
		{"noblob", "binary", ""},
		{"safe", "int64", float64(1<<53 - 1)},
		{"w3c.tracestate", "string", "vendor=x"},
	}
	if got := tagList(t, s["tags"]); !reflect.DeepEqual(got, wantTags) {
		t.Errorf("tags =\n%v\nwant\n%v", got, wantTags)
	}
	if got := tagList(t, s["logs"].([]any)[0].(obj)["fields"]); !reflect.DeepEqual(got, [][3]any{{"event", "string", "explicit"}}) {
		t.Errorf("log fields = %v, want only the explicit event attribute", got)
	}
	// The exact bytes Jaeger's UI reads for an empty-process span.
	for _, want := range []string{`"tags":[]`, `"warnings":null`, `"processID":"p1"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
}

func TestFromTracesSplitsTraces(t *testing.T) {
	t.Parallel()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, b := range []byte{2, 1, 2} {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{b, 15: 1})
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
		s.SetStartTimestamp(pcommon.Timestamp(10 - i))
	}
	traces := FromTraces(td)
	if len(traces) != 2 || traces[0].TraceID[:2] != "02" || traces[1].TraceID[:2] != "01" {
		t.Fatalf("traces %+v, want 02... then 01...", traces)
	}
	if got := len(traces[0].Spans); got != 2 {
		t.Errorf("first trace has %d spans, want 2", got)
	}
	// Sorted by start: the third span (start 8) before the first (start 10).
	if traces[0].Spans[0].SpanID != "0300000000000000" {
		t.Errorf("spans not in start order: %+v", traces[0].Spans)
	}
	// The same span again (an exporter's retry) is shown once; a different
	// span reusing the ID stays.
	spans.At(0).CopyTo(spans.AppendEmpty())
	clash := spans.AppendEmpty()
	spans.At(0).CopyTo(clash)
	clash.SetName("other")
	traces = FromTraces(td)
	if got := len(traces[0].Spans); got != 3 {
		t.Errorf("with a duplicate and a clashing span: %d spans, want 3: %+v", got, traces[0].Spans)
	}

	if got := FromTraces(ptrace.NewTraces()); len(got) != 0 {
		t.Errorf("no spans gave %d traces", len(got))
	}
}
