package jaeger

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// Tag keys Jaeger derives from OTLP fields that have no attribute of their
// own (opentelemetry-collector-contrib pkg/translator/jaeger).
const (
	tagScopeName         = "otel.scope.name"
	tagScopeVersion      = "otel.scope.version"
	tagSpanKind          = "span.kind"
	tagStatusCode        = "otel.status_code"
	tagError             = "error"
	tagStatusDescription = "otel.status_description"
	tagTraceState        = "w3c.tracestate"
	fieldEventName       = "event"
	linkRefTypeAttribute = "opentracing.ref_type"
	// noServiceName is what Jaeger shows for a resource without service.name.
	noServiceName = "OTLP_EMPTY_SERVICE_NAME"
	// sampledFlag is the W3C sampled bit, the low bit of OTLP span flags and
	// Jaeger's SampledFlag alike.
	sampledFlag = 1
	// jsMaxSafeInteger is the largest integer a JavaScript number holds
	// exactly; Jaeger sends bigger int64 tags as strings so the UI shows them
	// unrounded.
	jsMaxSafeInteger = int64(1)<<53 - 1
)

// located is a span with the resource (by index) and scope it came from.
type located struct {
	span     ptrace.Span
	scope    pcommon.InstrumentationScope
	resource int
}

// FromTraces converts spans into Jaeger's UI model: one Trace per trace ID,
// in order of first appearance. Spans within a trace are sorted by start
// time, and processes (resources) are deduplicated by service name and tags
// and keyed p1, p2, ... in the order the sorted spans first use them. A span
// stored twice with identical content appears once.
func FromTraces(td ptrace.Traces) []Trace {
	var order []pcommon.TraceID
	byTrace := map[pcommon.TraceID][]located{}
	rss := td.ResourceSpans()
	for r := 0; r < rss.Len(); r++ {
		sss := rss.At(r).ScopeSpans()
		for s := 0; s < sss.Len(); s++ {
			ss := sss.At(s)
			spans := ss.Spans()
			for i := 0; i < spans.Len(); i++ {
				span := spans.At(i)
				id := span.TraceID()
				if _, seen := byTrace[id]; !seen {
					order = append(order, id)
				}
				byTrace[id] = append(byTrace[id], located{span: span, scope: ss.Scope(), resource: r})
			}
		}
	}

	// A resource's process is built once however many traces use it.
	processes := make([]*Process, rss.Len())
	processKeys := make([]string, rss.Len())
	processOf := func(r int) (Process, string) {
		if processes[r] == nil {
			p := processFromResource(rss.At(r).Resource())
			key, _ := json.Marshal(p) // cannot fail: values are JSON-safe
			processes[r], processKeys[r] = &p, string(key)
		}
		return *processes[r], processKeys[r]
	}

	traces := make([]Trace, 0, len(order))
	for _, id := range order {
		spans := byTrace[id]
		slices.SortStableFunc(spans, func(a, b located) int {
			return cmp.Compare(a.span.StartTimestamp(), b.span.StartTimestamp())
		})
		t := Trace{
			TraceID:   traceIDHex(id),
			Spans:     make([]Span, 0, len(spans)),
			Processes: map[string]Process{},
		}
		idByProcess := map[string]string{}
		bySpanID := map[string][]int{} // indexes into t.Spans
	nextSpan:
		for _, l := range spans {
			p, key := processOf(l.resource)
			pid, ok := idByProcess[key]
			if !ok {
				pid = "p" + strconv.Itoa(len(idByProcess)+1)
				idByProcess[key] = pid
				t.Processes[pid] = p
			}
			s := spanFromOTLP(l.span, l.scope, pid)
			// A span stored twice (an exporter retrying after a lost
			// answer) is shown once, as Jaeger's deduplicating adjuster does;
			// spans that share an ID but differ all stay.
			for _, i := range bySpanID[s.SpanID] {
				if reflect.DeepEqual(t.Spans[i], s) {
					continue nextSpan
				}
			}
			bySpanID[s.SpanID] = append(bySpanID[s.SpanID], len(t.Spans))
			t.Spans = append(t.Spans, s)
		}
		traces = append(traces, t)
	}
	return traces
}

func processFromResource(res pcommon.Resource) Process {
	p := Process{ServiceName: noServiceName, Tags: []KeyValue{}}
	res.Attributes().Range(func(k string, v pcommon.Value) bool {
		if k == "service.name" {
			if name := v.AsString(); name != "" {
				p.ServiceName = name
			}
			return true
		}
		p.Tags = append(p.Tags, keyValue(k, v))
		return true
	})
	sortByKey(p.Tags)
	return p
}

func spanFromOTLP(span ptrace.Span, scope pcommon.InstrumentationScope, processID string) Span {
	start, end := span.StartTimestamp(), span.EndTimestamp()
	var duration uint64
	if end > start {
		duration = uint64(end-start) / 1000
	}
	s := Span{
		TraceID:       traceIDHex(span.TraceID()),
		SpanID:        spanIDHex(span.SpanID()),
		OperationName: span.Name(),
		References:    references(span),
		StartTime:     uint64(start) / 1000,
		Duration:      duration,
		Tags:          spanTags(span, scope),
		Logs:          logs(span.Events()),
		ProcessID:     processID,
	}
	if span.Flags()&sampledFlag != 0 {
		s.Flags = sampledFlag
	}
	return s
}

// references puts the parent first as CHILD_OF (backends and the UI look for
// it there), then one reference a link: FOLLOWS_FROM unless the link says
// opentracing.ref_type=child_of. A link to the parent only retypes it.
func references(span ptrace.Span) []Reference {
	refs := make([]Reference, 0, span.Links().Len()+1)
	parent := span.ParentSpanID()
	traceID := traceIDHex(span.TraceID())
	if !parent.IsEmpty() {
		refs = append(refs, Reference{RefType: ChildOf, TraceID: traceID, SpanID: spanIDHex(parent)})
	}
	links := span.Links()
	for i := 0; i < links.Len(); i++ {
		link := links.At(i)
		refType := FollowsFrom
		if v, ok := link.Attributes().Get(linkRefTypeAttribute); ok && v.AsString() == "child_of" {
			refType = ChildOf
		}
		if !parent.IsEmpty() && link.TraceID() == span.TraceID() && link.SpanID() == parent {
			refs[0].RefType = refType
			continue
		}
		refs = append(refs, Reference{RefType: refType, TraceID: traceIDHex(link.TraceID()), SpanID: spanIDHex(link.SpanID())})
	}
	return refs
}

// spanTags lists tags in the order Jaeger does after sorting attributes:
// scope, attributes by key, then kind, status, error, status description and
// trace state.
func spanTags(span ptrace.Span, scope pcommon.InstrumentationScope) []KeyValue {
	tags := make([]KeyValue, 0, span.Attributes().Len()+6)
	if name := scope.Name(); name != "" {
		tags = append(tags, stringTag(tagScopeName, name))
	}
	if version := scope.Version(); version != "" {
		tags = append(tags, stringTag(tagScopeVersion, version))
	}
	attrs := len(tags)
	span.Attributes().Range(func(k string, v pcommon.Value) bool {
		tags = append(tags, keyValue(k, v))
		return true
	})
	sortByKey(tags[attrs:])
	if kind := spanstore.SpanKindName(span.Kind()); kind != "" {
		tags = append(tags, stringTag(tagSpanKind, kind))
	}
	status := span.Status()
	switch status.Code() {
	case ptrace.StatusCodeOk:
		tags = append(tags, stringTag(tagStatusCode, "OK"))
	case ptrace.StatusCodeError:
		tags = append(tags, stringTag(tagStatusCode, "ERROR"), KeyValue{Key: tagError, Type: BoolType, Value: true})
	}
	if msg := status.Message(); msg != "" {
		tags = append(tags, stringTag(tagStatusDescription, msg))
	}
	if ts := span.TraceState().AsRaw(); ts != "" {
		tags = append(tags, stringTag(tagTraceState, ts))
	}
	return tags
}

func logs(events ptrace.SpanEventSlice) []Log {
	out := make([]Log, 0, events.Len())
	for i := 0; i < events.Len(); i++ {
		event := events.At(i)
		fields := make([]KeyValue, 0, event.Attributes().Len()+1)
		if _, has := event.Attributes().Get(fieldEventName); event.Name() != "" && !has {
			fields = append(fields, stringTag(fieldEventName, event.Name()))
		}
		attrs := len(fields)
		event.Attributes().Range(func(k string, v pcommon.Value) bool {
			fields = append(fields, keyValue(k, v))
			return true
		})
		sortByKey(fields[attrs:])
		out = append(out, Log{Timestamp: uint64(event.Timestamp()) / 1000, Fields: fields})
	}
	return out
}

func stringTag(key, value string) KeyValue {
	return KeyValue{Key: key, Type: StringType, Value: value}
}

// keyValue types an attribute the way Jaeger does; arrays and maps become
// their JSON text. Non-finite floats, which JSON cannot carry as numbers,
// become "NaN", "+Inf" or "-Inf".
func keyValue(key string, v pcommon.Value) KeyValue {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return KeyValue{Key: key, Type: BoolType, Value: v.Bool()}
	case pcommon.ValueTypeInt:
		i := v.Int()
		if i > jsMaxSafeInteger || i < -jsMaxSafeInteger {
			return KeyValue{Key: key, Type: Int64Type, Value: strconv.FormatInt(i, 10)}
		}
		return KeyValue{Key: key, Type: Int64Type, Value: i}
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return KeyValue{Key: key, Type: Float64Type, Value: strconv.FormatFloat(f, 'g', -1, 64)}
		}
		return KeyValue{Key: key, Type: Float64Type, Value: f}
	case pcommon.ValueTypeBytes:
		raw := v.Bytes().AsRaw()
		if raw == nil {
			raw = []byte{} // "" rather than null
		}
		return KeyValue{Key: key, Type: BinaryType, Value: raw}
	}
	return stringTag(key, v.AsString())
}

func sortByKey(kvs []KeyValue) {
	slices.SortStableFunc(kvs, func(a, b KeyValue) int { return cmp.Compare(a.Key, b.Key) })
}

func traceIDHex(id pcommon.TraceID) string { return hex.EncodeToString(id[:]) }

func spanIDHex(id pcommon.SpanID) string { return hex.EncodeToString(id[:]) }
