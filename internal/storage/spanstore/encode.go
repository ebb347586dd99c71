package spanstore

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// rowEncoder turns spans into logstorage fields. It reuses its buffers from
// span to span: field values are unsafe strings over buf, valid until reset.
// logstorage copies fields in MustAdd, so they need not outlive a row.
type rowEncoder struct {
	buf    []byte
	fields []logstorage.Field
	types  []byte

	// resource and scope fields are the same for a run of spans: encode once.
	resourceFields []logstorage.Field
	resourceKeys   []string
	resourceBuf    []byte
	service        string
	scopeFields    []logstorage.Field
	scopeTypes     []byte
	scopeBuf       []byte

	extra ptrace.Traces

	budget   *columnBudget
	admitted admittedCache
	// now is when the batch being encoded arrived (the budget's clock).
	now time.Time
	// overflow collects, per span, the attributes over the service's column
	// budget: Go-quoted field names and values, alternating (see schema.go).
	overflow []byte
}

func newRowEncoder(budget *columnBudget) *rowEncoder {
	return &rowEncoder{extra: ptrace.NewTraces(), budget: budget}
}

// unsafeString views b as a string without copying; b must not change while
// the string is in use.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// setResource encodes the resource fields shared by the spans that follow:
// service, the resource's service.name as the pipeline worked it out, and
// the other attributes packed in one field, each with its type, so the
// field alone restores the resource.
func (e *rowEncoder) setResource(res pcommon.Resource, service string) {
	e.resourceFields = e.resourceFields[:0]
	e.resourceBuf = e.resourceBuf[:0]
	e.service = service
	attrs := res.Attributes()
	keys := e.resourceKeys[:0]
	attrs.Range(func(k string, v pcommon.Value) bool {
		if k != "service.name" || v.Type() != pcommon.ValueTypeStr {
			keys = append(keys, k)
		}
		return true
	})
	e.resourceKeys = keys
	if len(keys) == 0 {
		return
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			e.resourceBuf = append(e.resourceBuf, ' ')
		}
		v, _ := attrs.Get(k)
		e.resourceBuf = appendResourcePair(e.resourceBuf, k, v)
	}
	e.resourceFields = append(e.resourceFields, logstorage.Field{Name: fieldResource, Value: unsafeString(e.resourceBuf)})
}

// resource is the packed resource of the spans that follow ("" for none).
func (e *rowEncoder) resource() string {
	if len(e.resourceFields) == 0 {
		return ""
	}
	return e.resourceFields[0].Value
}

// appendResourcePair appends one packed resource attribute: "key"="value"
// for a string, "key"=<letter>"value" for other types (see putAttr).
func appendResourcePair(dst []byte, key string, v pcommon.Value) []byte {
	dst = strconv.AppendQuote(dst, key)
	dst = append(dst, '=')
	if v.Type() == pcommon.ValueTypeStr {
		return strconv.AppendQuote(dst, v.Str())
	}
	start := len(dst)
	dst, letter := appendValueText(dst, v)
	text := string(dst[start:])
	dst = append(dst[:start], letter)
	return strconv.AppendQuote(dst, text)
}

// resourcePairPattern is the regular expression that finds key=value among
// packed resource attributes, whatever the value's type.
func resourcePairPattern(key, value string) string {
	return regexp.QuoteMeta(strconv.Quote(key)) + "=[a-z]?" + regexp.QuoteMeta(strconv.Quote(value))
}

// setScope encodes the instrumentation scope fields shared by the spans that follow.
func (e *rowEncoder) setScope(scope pcommon.InstrumentationScope) {
	e.scopeFields = e.scopeFields[:0]
	e.scopeTypes = e.scopeTypes[:0]
	e.scopeBuf = e.scopeBuf[:0]
	if n := scope.Name(); n != "" {
		e.scopeFields = append(e.scopeFields, logstorage.Field{Name: fieldScopeName, Value: n})
	}
	if v := scope.Version(); v != "" {
		e.scopeFields = append(e.scopeFields, logstorage.Field{Name: fieldScopeVersion, Value: v})
	}
	scope.Attributes().Range(func(k string, v pcommon.Value) bool {
		e.scopeFields, e.scopeTypes, e.scopeBuf = appendAttr(e.scopeFields, e.scopeTypes, e.scopeBuf, prefixScopeAttr, k, v)
		return true
	})
}

// appendAttr appends the field for one attribute, and its type entry when it
// is not a string. Values are written to buf; the returned fields view buf,
// so the caller must not reset buf while they are in use. When buf grows, the
// earlier strings keep pointing at the old array, which is left untouched.
func appendAttr(fields []logstorage.Field, types, buf []byte, prefix, key string, v pcommon.Value) ([]logstorage.Field, []byte, []byte) {
	start := len(buf)
	buf = append(buf, prefix...)
	buf = append(buf, key...)
	name := unsafeString(buf[start:])
	if v.Type() == pcommon.ValueTypeStr {
		fields = append(fields, logstorage.Field{Name: name, Value: v.Str()})
		if _, isInt := parseCanonicalInt(v.Str()); isInt || v.Str() == "" {
			// logstorage does not tell an empty value from a missing one, and
			// an untyped integer is read back as an int: record the string.
			types = appendType(types, name, 's')
		}
		return fields, types, buf
	}
	start = len(buf)
	buf, letter := appendValueText(buf, v)
	fields = append(fields, logstorage.Field{Name: name, Value: unsafeString(buf[start:])})
	if letter == 'i' {
		// Integers are the common typed attribute (status codes, ports,
		// sizes): their text alone says int, which keeps most rows free of a
		// types entry, about 2 bytes a span on disk.
		return fields, types, buf
	}
	return fields, appendType(types, name, letter), buf
}

// parseCanonicalInt returns the int64 that s is the strconv.FormatInt text
// of, the text an int attribute is stored as; ok is false for any other
// text, "007", "+7" and "-0" included.
func parseCanonicalInt(s string) (n int64, ok bool) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] == '0' && len(s) > 1 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	// ParseInt takes a leading "+", which FormatInt never writes.
	return n, err == nil && digits[0] != '+'
}

// appendValueText appends a value that is not a string as the text stored
// for it, and returns the letter that names its type (see putAttr).
func appendValueText(buf []byte, v pcommon.Value) ([]byte, byte) {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(buf, v.Bool()), 'b'
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(buf, v.Int(), 10), 'i'
	case pcommon.ValueTypeDouble:
		return strconv.AppendFloat(buf, v.Double(), 'g', -1, 64), 'd'
	case pcommon.ValueTypeBytes:
		return base64.StdEncoding.AppendEncode(buf, v.Bytes().AsRaw()), 'y'
	case pcommon.ValueTypeSlice:
		return append(buf, v.AsString()...), 'a'
	case pcommon.ValueTypeMap:
		return append(buf, v.AsString()...), 'm'
	default:
		return buf, 'e'
	}
}

// appendType adds "name=letter" to the types list.
func appendType(types []byte, name string, letter byte) []byte {
	if len(types) > 0 {
		types = append(types, '\n')
	}
	types = append(types, name...)
	return append(types, '=', letter)
}

// encodeSpan returns the fields of one span row, valid until the next call.
func (e *rowEncoder) encodeSpan(span ptrace.Span) []logstorage.Field {
	e.buf = e.buf[:0]
	e.types = e.types[:0]
	f := e.fields[:0]

	// service, then resource: the fields that make the row's log stream
	// (see instanceStreams) come first.
	f = append(f, logstorage.Field{Name: fieldService, Value: e.service})
	f = append(f, e.resourceFields...)
	f = append(f, logstorage.Field{Name: fieldName, Value: span.Name()})

	tid := span.TraceID()
	f = append(f, e.hexField(fieldTraceID, tid[:]))
	f = append(f, e.spanField(span.SpanID(), span.ParentSpanID()))
	f = append(f, e.intField(fieldKind, int64(span.Kind())))
	dur := int64(span.EndTimestamp()) - int64(span.StartTimestamp())
	f = append(f, e.intField(fieldDuration, dur))
	if c := span.Status().Code(); c != ptrace.StatusCodeUnset {
		f = append(f, e.intField(fieldStatusCode, int64(c)))
	}
	if m := span.Status().Message(); m != "" {
		f = append(f, logstorage.Field{Name: fieldStatusMessage, Value: m})
	}
	if ts := span.TraceState().AsRaw(); ts != "" {
		f = append(f, logstorage.Field{Name: fieldTraceState, Value: ts})
	}
	if fl := span.Flags(); fl != 0 {
		f = append(f, e.intField(fieldFlags, int64(fl)))
	}
	attrsFrom := len(f)
	f = append(f, e.scopeFields...)
	span.Attributes().Range(func(k string, v pcommon.Value) bool {
		f, e.types, e.buf = appendAttr(f, e.types, e.buf, prefixAttr, k, v)
		return true
	})
	f = e.spillOverBudget(f, attrsFrom, int64(span.StartTimestamp())/nsecsPerDay)
	if len(e.scopeTypes)+len(e.types) > 0 {
		start := len(e.buf)
		for _, t := range [][]byte{e.scopeTypes, e.types} {
			if len(t) == 0 {
				continue
			}
			if len(e.buf) > start {
				e.buf = append(e.buf, '\n')
			}
			e.buf = append(e.buf, t...)
		}
		f = append(f, logstorage.Field{Name: fieldTypes, Value: unsafeString(e.buf[start:])})
	}
	if hasExtra(span) {
		f = append(f, logstorage.Field{Name: fieldExtra, Value: e.encodeExtra(span)})
	}
	e.fields = f
	return f
}

// spillOverBudget moves the attribute fields (f[from:]) that the service's
// column budget for day (the row's partition) does not admit into one
// "overflow" field.
func (e *rowEncoder) spillOverBudget(f []logstorage.Field, from int, day int64) []logstorage.Field {
	e.overflow = e.overflow[:0]
	kept := f[:from]
	cached := e.admitted.names(day, e.service)
	for _, fld := range f[from:] {
		if e.admitted.admit(e.budget, cached, day, e.service, fld.Name, e.now) {
			kept = append(kept, fld)
			continue
		}
		if len(e.overflow) > 0 {
			e.overflow = append(e.overflow, ' ')
		}
		e.overflow = strconv.AppendQuote(e.overflow, fld.Name)
		e.overflow = append(e.overflow, ' ')
		e.overflow = strconv.AppendQuote(e.overflow, fld.Value)
	}
	if len(e.overflow) > 0 {
		kept = append(kept, logstorage.Field{Name: fieldOverflow, Value: unsafeString(e.overflow)})
	}
	return kept
}

func (e *rowEncoder) hexField(name string, id []byte) logstorage.Field {
	start := len(e.buf)
	e.buf = hex.AppendEncode(e.buf, id)
	return logstorage.Field{Name: name, Value: unsafeString(e.buf[start:])}
}

// spanField is the span ID followed, for a child span, by its parent's (see
// schema.go).
func (e *rowEncoder) spanField(id, parent pcommon.SpanID) logstorage.Field {
	start := len(e.buf)
	e.buf = hex.AppendEncode(e.buf, id[:])
	if !parent.IsEmpty() {
		e.buf = hex.AppendEncode(e.buf, parent[:])
	}
	return logstorage.Field{Name: fieldSpan, Value: unsafeString(e.buf[start:])}
}

func (e *rowEncoder) intField(name string, v int64) logstorage.Field {
	start := len(e.buf)
	e.buf = strconv.AppendInt(e.buf, v, 10)
	return logstorage.Field{Name: name, Value: unsafeString(e.buf[start:])}
}

func hasExtra(span ptrace.Span) bool {
	return span.Events().Len() > 0 || span.Links().Len() > 0 ||
		span.DroppedAttributesCount() > 0 || span.DroppedEventsCount() > 0 || span.DroppedLinksCount() > 0
}

// encodeExtra packs what is not searched (events, links, dropped counts) as
// an OTLP-encoded one-span batch: the library's own codec keeps every detail.
func (e *rowEncoder) encodeExtra(span ptrace.Span) string {
	rss := e.extra.ResourceSpans()
	rss.RemoveIf(func(ptrace.ResourceSpans) bool { return true })
	dst := rss.AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.Events().CopyTo(dst.Events())
	// Event times as offsets from the span's start: a few small bytes
	// instead of eight random ones (uint64 arithmetic wraps, so an event
	// before its span's start comes back exactly too).
	spanStart := uint64(span.StartTimestamp())
	for i := 0; i < dst.Events().Len(); i++ {
		ev := dst.Events().At(i)
		ev.SetTimestamp(pcommon.Timestamp(uint64(ev.Timestamp()) - spanStart))
	}
	span.Links().CopyTo(dst.Links())
	dst.SetDroppedAttributesCount(span.DroppedAttributesCount())
	dst.SetDroppedEventsCount(span.DroppedEventsCount())
	dst.SetDroppedLinksCount(span.DroppedLinksCount())
	raw, err := extraMarshaler.MarshalTraces(e.extra)
	if err != nil {
		// Marshaling a well-formed in-memory batch cannot fail; keep the span
		// rather than drop it over its events.
		return ""
	}
	start := len(e.buf)
	e.buf = base64.StdEncoding.AppendEncode(e.buf, raw)
	return unsafeString(e.buf[start:])
}

var extraMarshaler = &ptrace.ProtoMarshaler{}
