package swconv

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/traceid"
)

// Names shared by resources and scopes of everything this package produces.
const (
	// SDKName is the telemetry.sdk.name of every converted resource.
	SDKName = "skywalking"
	// ScopeName is the instrumentation scope name of every converted span.
	ScopeName = "skywalking"
)

// Attribute keys this package writes; doc.go explains each.
const (
	AttrTraceID                  = "sw.trace_id"
	AttrSegmentID                = "sw.segment_id"
	AttrSpanID                   = "sw.span_id"
	AttrParentSpanID             = "sw.parent_span_id"
	AttrLayer                    = "sw.layer"
	AttrSpanType                 = "sw.span_type"
	AttrComponentID              = "sw.component_id"
	AttrComponent                = "sw.component"
	AttrPeer                     = "sw.peer"
	AttrSkipAnalysis             = "sw.skip_analysis"
	AttrIsSizeLimited            = "sw.is_size_limited"
	AttrProblem                  = "sw.problem"
	AttrRefType                  = "sw.ref.type"
	AttrRefTraceID               = "sw.ref.trace_id"
	AttrRefParentSegmentID       = "sw.ref.parent_segment_id"
	AttrRefParentSpanID          = "sw.ref.parent_span_id"
	AttrRefParentService         = "sw.ref.parent_service"
	AttrRefParentServiceInstance = "sw.ref.parent_service_instance"
	AttrRefParentEndpoint        = "sw.ref.parent_endpoint"
	AttrRefNetworkAddress        = "sw.ref.network_address"
	AttrDBSystem                 = "db.system"
	attrServiceName              = "service.name"
	attrServiceInstanceID        = "service.instance.id"
	attrSDKName                  = "telemetry.sdk.name"
	tagDBType                    = "db.type"
	logEventKey                  = "event"
)

// maxMillis is the largest millisecond time whose nanoseconds fit an int64
// (year 2262); later times are clamped so the conversion never wraps around.
const maxMillis = math.MaxInt64 / int64(1e6)

// agentTime converts an agent's millisecond time, reporting false for one
// that is unset (not positive) or beyond what nanoseconds can hold.
func agentTime(ms int64) (pcommon.Timestamp, bool) {
	if ms <= 0 || ms > maxMillis {
		return 0, false
	}
	return pcommon.Timestamp(uint64(ms) * 1e6), true
}

// agentTimeOr is the agent's time when usable, else observed.
func agentTimeOr(ms int64, observed time.Time) pcommon.Timestamp {
	if ts, ok := agentTime(ms); ok {
		return ts
	}
	return pcommon.NewTimestampFromTime(observed)
}

// smallSegment is the span count up to which a segment's bookkeeping lives on
// the stack: agents rarely put more spans in one segment.
const smallSegment = 64

// ComponentID maps a component name (sw.component) back to its number.
// Where the list gives one name to several numbers, the lowest is returned.
func ComponentID(name string) (int32, bool) {
	componentIDsOnce.Do(func() {
		componentIDs = make(map[string]int32, len(componentNames))
		for id, n := range componentNames {
			if known, ok := componentIDs[n]; !ok || id < known {
				componentIDs[n] = id
			}
		}
	})
	id, ok := componentIDs[name]
	return id, ok
}

var (
	componentIDsOnce sync.Once
	componentIDs     map[string]int32
)

// AppendSegment appends seg to td as one ResourceSpans and returns the number
// of spans it appended. A segment that cannot be placed in a trace (no
// service, trace ID, segment ID or spans) is rejected with an error and
// leaves td unchanged.
func AppendSegment(td ptrace.Traces, seg *agentv3.SegmentObject) (int, error) {
	traceID, err := checkSegment(seg)
	if err != nil {
		return 0, err
	}

	rs := td.ResourceSpans().AppendEmpty()
	putResource(rs.Resource().Attributes(), seg.Service, seg.ServiceInstance)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(ScopeName)
	out := ss.Spans()
	out.EnsureCapacity(len(seg.Spans))

	// Stack buffers for the common small segment; a field array would move
	// the whole converter to the heap.
	var idsBuf [smallSegment]pcommon.SpanID
	var posBuf [smallSegment]int32
	c := segmentConverter{seg: seg, traceID: traceID, traceIDIsHex: isLowerHex32(seg.TraceId)}
	if n := len(seg.Spans); n <= smallSegment {
		c.ids, c.pos = idsBuf[:n], posBuf[:n]
	} else {
		c.ids, c.pos = make([]pcommon.SpanID, n), make([]int32, n)
	}
	c.indexSpans()
	n := 0
	for i, span := range seg.Spans {
		if span == nil {
			continue
		}
		c.convertSpan(i, span, out.AppendEmpty())
		n++
	}
	return n, nil
}

// checkSegment returns seg's trace ID, or what makes seg impossible to place.
func checkSegment(seg *agentv3.SegmentObject) (pcommon.TraceID, error) {
	switch {
	case seg == nil:
		return pcommon.TraceID{}, errors.New("empty segment")
	case seg.Service == "":
		return pcommon.TraceID{}, fmt.Errorf("segment %q of trace %q has no service", seg.TraceSegmentId, seg.TraceId)
	case seg.TraceSegmentId == "":
		return pcommon.TraceID{}, fmt.Errorf("segment of trace %q from service %q has no traceSegmentId", seg.TraceId, seg.Service)
	case len(seg.Spans) == 0:
		return pcommon.TraceID{}, fmt.Errorf("segment %q from service %q has no spans", seg.TraceSegmentId, seg.Service)
	}
	id, ok := traceid.FromString(seg.TraceId)
	if !ok {
		return id, fmt.Errorf("segment %q from service %q has no usable traceId (%q)", seg.TraceSegmentId, seg.Service, seg.TraceId)
	}
	return id, nil
}

// segmentConverter holds what converting one segment's spans shares: the
// span IDs computed once, and where each SkyWalking span number sits.
type segmentConverter struct {
	seg     *agentv3.SegmentObject
	traceID pcommon.TraceID
	// traceIDIsHex is whether seg.TraceId is exactly traceID in lower-case
	// hex (go2sky's form), so the string need not be stored again.
	traceIDIsHex bool
	// ids[i] is the span ID of seg.Spans[i].
	ids []pcommon.SpanID
	// pos[n] is the index in seg.Spans of span number n, or -1; span numbers
	// are 0..len-1 in practice, anything else falls back to a scan.
	pos []int32
}

func (c *segmentConverter) indexSpans() {
	n := len(c.seg.Spans)
	for i := range c.pos {
		c.pos[i] = -1
	}
	for i, span := range c.seg.Spans {
		if span == nil {
			continue
		}
		c.ids[i] = traceid.SpanIDFromSegment(c.seg.TraceSegmentId, span.SpanId)
		if id := span.SpanId; id >= 0 && int(id) < n && c.pos[id] < 0 {
			c.pos[id] = int32(i)
		}
	}
}

// spanIndex returns the index in the segment of span number id, or -1.
func (c *segmentConverter) spanIndex(id int32) int {
	if id >= 0 && int(id) < len(c.pos) && c.pos[id] >= 0 {
		return int(c.pos[id])
	}
	for i, span := range c.seg.Spans {
		if span != nil && span.SpanId == id {
			return i
		}
	}
	return -1
}

func (c *segmentConverter) convertSpan(i int, span *agentv3.SpanObject, out ptrace.Span) {
	var problems []string
	out.SetTraceID(c.traceID)
	out.SetSpanID(c.ids[i])
	out.SetName(span.OperationName)
	out.SetKind(spanKind(span.SpanType, span.SpanLayer))
	if span.IsError {
		out.Status().SetCode(ptrace.StatusCodeError)
	}

	start, end := span.StartTime, span.EndTime
	if start <= 0 && end > 0 {
		// Storage needs a start; the end is the best one known.
		problems = append(problems, fmt.Sprintf("startTime %d not positive, set to endTime", start))
		start = end
	}
	if start < 0 {
		problems = append(problems, fmt.Sprintf("negative startTime %d, set to 0", start))
		start = 0
	}
	if end < start {
		problems = append(problems, fmt.Sprintf("endTime %d before startTime %d, set to startTime", span.EndTime, start))
		end = start
	}
	out.SetStartTimestamp(millisToTimestamp(start, &problems))
	out.SetEndTimestamp(millisToTimestamp(end, &problems))

	attrs := out.Attributes()
	attrs.EnsureCapacity(len(span.Tags) + 10)
	putTags(attrs, span.Tags, &problems)

	var parentRef *agentv3.SegmentReference
	parentInSegment := false
	if p := span.ParentSpanId; p >= 0 {
		switch j := c.spanIndex(p); {
		case j == i:
			problems = append(problems, fmt.Sprintf("span %d names itself as parent, kept as a root", span.SpanId))
		case j < 0:
			problems = append(problems, fmt.Sprintf("parent span %d is not in segment", p))
			out.SetParentSpanID(traceid.SpanIDFromSegment(c.seg.TraceSegmentId, p))
		default:
			out.SetParentSpanID(c.ids[j])
			parentInSegment = true
		}
	} else {
		parentRef = c.parentRef(span.Refs)
		if parentRef != nil {
			out.SetParentSpanID(traceid.SpanIDFromSegment(parentRef.ParentTraceSegmentId, parentRef.ParentSpanId))
			putRef(attrs, parentRef, false)
		}
	}
	c.putLinks(out, span.Refs, parentRef, &problems)

	// Storage pays for every attribute on every span, so what the span's own
	// fields already say is left out: the trace ID string when it is the
	// trace ID's hex, parentSpanId when the parent is in the segment (its own
	// sw.span_id says it), the Unknown layer and component, and the
	// component's number when its name is known (the list maps it back).
	if !c.traceIDIsHex {
		attrs.PutStr(AttrTraceID, c.seg.TraceId)
	}
	attrs.PutStr(AttrSegmentID, c.seg.TraceSegmentId)
	attrs.PutInt(AttrSpanID, int64(span.SpanId))
	if span.ParentSpanId >= 0 && !parentInSegment {
		attrs.PutInt(AttrParentSpanID, int64(span.ParentSpanId))
	}
	if span.SpanLayer != agentv3.SpanLayer_Unknown {
		attrs.PutStr(AttrLayer, layerName(span.SpanLayer))
	}
	switch span.SpanType {
	case agentv3.SpanType_Entry, agentv3.SpanType_Exit, agentv3.SpanType_Local:
	default:
		attrs.PutStr(AttrSpanType, strconv.Itoa(int(span.SpanType)))
	}
	if span.ComponentId != 0 {
		if name := componentNames[span.ComponentId]; name != "" {
			attrs.PutStr(AttrComponent, name)
		} else {
			attrs.PutInt(AttrComponentID, int64(span.ComponentId))
		}
	}
	if span.Peer != "" {
		attrs.PutStr(AttrPeer, span.Peer)
	}
	if span.SpanLayer == agentv3.SpanLayer_Database {
		if v, ok := attrs.Get(tagDBType); ok && v.Str() != "" {
			attrs.PutStr(AttrDBSystem, strings.ToLower(v.Str()))
		}
	}
	if span.SkipAnalysis {
		attrs.PutBool(AttrSkipAnalysis, true)
	}
	if c.seg.IsSizeLimited {
		attrs.PutBool(AttrIsSizeLimited, true)
	}

	putLogs(out.Events(), span.Logs, &problems)
	if len(problems) > 0 {
		attrs.PutStr(AttrProblem, strings.Join(problems, "; "))
	}
}

// parentRef picks the ref that is the parent of a segment's first span: the
// first one of the segment's own trace. A ref into another trace (a batch
// consumer joining several producers) can only be a link.
func (c *segmentConverter) parentRef(refs []*agentv3.SegmentReference) *agentv3.SegmentReference {
	for _, ref := range refs {
		if ref == nil || ref.ParentTraceSegmentId == "" {
			continue
		}
		if ref.TraceId == "" || ref.TraceId == c.seg.TraceId {
			return ref
		}
	}
	return nil
}

// putLinks turns every ref except the parent into a span link.
func (c *segmentConverter) putLinks(out ptrace.Span, refs []*agentv3.SegmentReference, parent *agentv3.SegmentReference, problems *[]string) {
	for _, ref := range refs {
		if ref == nil || ref == parent {
			continue
		}
		if ref.ParentTraceSegmentId == "" {
			*problems = append(*problems, fmt.Sprintf("ref of type %s without parentTraceSegmentId dropped", refTypeName(ref.RefType)))
			continue
		}
		link := out.Links().AppendEmpty()
		linkTrace := c.traceID
		if ref.TraceId != "" && ref.TraceId != c.seg.TraceId {
			if id, ok := traceid.FromString(ref.TraceId); ok {
				linkTrace = id
			}
			link.Attributes().PutStr(AttrRefTraceID, ref.TraceId)
		}
		link.SetTraceID(linkTrace)
		link.SetSpanID(traceid.SpanIDFromSegment(ref.ParentTraceSegmentId, ref.ParentSpanId))
		putRef(link.Attributes(), ref, true)
	}
}

// putRef records how the caller was reached and, for a link (whose span
// may never arrive), where the ref points; a parent span says that itself.
func putRef(attrs pcommon.Map, ref *agentv3.SegmentReference, link bool) {
	attrs.PutStr(AttrRefType, refTypeName(ref.RefType))
	if link {
		attrs.PutStr(AttrRefParentSegmentID, ref.ParentTraceSegmentId)
		attrs.PutInt(AttrRefParentSpanID, int64(ref.ParentSpanId))
	}
	if ref.ParentService != "" {
		attrs.PutStr(AttrRefParentService, ref.ParentService)
	}
	if ref.ParentServiceInstance != "" {
		attrs.PutStr(AttrRefParentServiceInstance, ref.ParentServiceInstance)
	}
	if ref.ParentEndpoint != "" {
		attrs.PutStr(AttrRefParentEndpoint, ref.ParentEndpoint)
	}
	if ref.NetworkAddressUsedAtPeer != "" {
		attrs.PutStr(AttrRefNetworkAddress, ref.NetworkAddressUsedAtPeer)
	}
}

// putTags writes key/value pairs as string attributes. SkyWalking allows a
// key more than once (say, several sql.params); the values are joined so none
// is lost.
// An attribute needs a key: a pair without one is recorded as a problem.
func putTags(attrs pcommon.Map, tags []*commonv3.KeyStringValuePair, problems *[]string) {
	for _, kv := range tags {
		if kv == nil {
			continue
		}
		if kv.Key == "" {
			*problems = append(*problems, fmt.Sprintf("pair without a key dropped (value %q)", kv.Value))
			continue
		}
		v, existed := attrs.GetOrPutEmpty(kv.Key)
		if existed && v.Type() == pcommon.ValueTypeStr {
			v.SetStr(v.Str() + ", " + kv.Value)
			continue
		}
		v.SetStr(kv.Value)
	}
}

// putLogs turns span logs into events.
func putLogs(events ptrace.SpanEventSlice, logs []*agentv3.Log, problems *[]string) {
	if len(logs) == 0 {
		return
	}
	events.EnsureCapacity(len(logs))
	for _, log := range logs {
		if log == nil {
			continue
		}
		ev := events.AppendEmpty()
		t := log.Time
		if t < 0 {
			*problems = append(*problems, fmt.Sprintf("log time %d negative, set to 0", t))
			t = 0
		}
		ev.SetTimestamp(millisToTimestamp(t, problems))
		name := "log"
		attrs := ev.Attributes()
		attrs.EnsureCapacity(len(log.Data))
		for _, kv := range log.Data {
			if kv != nil && kv.Key == logEventKey && kv.Value != "" {
				name = kv.Value
			}
		}
		putTags(attrs, log.Data, problems)
		ev.SetName(name)
	}
}

// millisToTimestamp converts a non-negative millisecond time, clamping one too
// large for nanoseconds.
func millisToTimestamp(ms int64, problems *[]string) pcommon.Timestamp {
	if ms > maxMillis {
		*problems = append(*problems, fmt.Sprintf("time %d ms beyond year 2262, clamped", ms))
		ms = maxMillis
	}
	return pcommon.Timestamp(uint64(ms) * 1e6)
}

func spanKind(t agentv3.SpanType, layer agentv3.SpanLayer) ptrace.SpanKind {
	switch t {
	case agentv3.SpanType_Entry:
		if layer == agentv3.SpanLayer_MQ {
			return ptrace.SpanKindConsumer
		}
		return ptrace.SpanKindServer
	case agentv3.SpanType_Exit:
		if layer == agentv3.SpanLayer_MQ {
			return ptrace.SpanKindProducer
		}
		return ptrace.SpanKindClient
	case agentv3.SpanType_Local:
		return ptrace.SpanKindInternal
	}
	return ptrace.SpanKindUnspecified
}

func layerName(l agentv3.SpanLayer) string {
	switch l {
	case agentv3.SpanLayer_Unknown:
		return "Unknown"
	case agentv3.SpanLayer_Database:
		return "Database"
	case agentv3.SpanLayer_RPCFramework:
		return "RPCFramework"
	case agentv3.SpanLayer_Http:
		return "Http"
	case agentv3.SpanLayer_MQ:
		return "MQ"
	case agentv3.SpanLayer_Cache:
		return "Cache"
	case agentv3.SpanLayer_FAAS:
		return "FAAS"
	}
	return strconv.Itoa(int(l))
}

func refTypeName(t agentv3.RefType) string {
	switch t {
	case agentv3.RefType_CrossProcess:
		return "CrossProcess"
	case agentv3.RefType_CrossThread:
		return "CrossThread"
	}
	return strconv.Itoa(int(t))
}

// isLowerHex32 reports whether s is 32 lower-case hex digits: the form in
// which traceid.FromString keeps the bytes and pcommon.TraceID prints back.
func isLowerHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
