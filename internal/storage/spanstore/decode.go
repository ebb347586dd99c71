package spanstore

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// traceBuilder rebuilds ptrace.Traces from span rows, grouping spans under
// their resource and scope as the SDK sent them.
type traceBuilder struct {
	td     ptrace.Traces
	scopes map[string]ptrace.ScopeSpans
	count  int
}

func newTraceBuilder() *traceBuilder {
	return &traceBuilder{td: ptrace.NewTraces(), scopes: make(map[string]ptrace.ScopeSpans)}
}

// addBlock decodes every row of a query result block. The block's strings
// are reused by logstorage after the callback: decode from a copy.
func (b *traceBuilder) addBlock(db *logstorage.DataBlock) {
	cols := cloneColumns(db.GetColumns(true))
	timestamps, _ := db.GetTimestamps(nil)
	var overflow []string
	for _, c := range cols {
		if c.Name == fieldOverflow {
			overflow = c.Values
		}
	}
	for row := 0; row < db.RowsCount(); row++ {
		var ts int64
		if row < len(timestamps) {
			ts = timestamps[row]
		}
		if overflow != nil && overflow[row] != "" {
			b.addRow(withOverflow(cols, row, overflow[row]), 0, ts)
			continue
		}
		b.addRow(cols, row, ts)
	}
}

// withOverflow returns the one row as columns, with the fields kept in the
// overflow field (over the service's column budget) as columns of their own.
func withOverflow(cols []logstorage.BlockColumn, row int, overflow string) []logstorage.BlockColumn {
	out := make([]logstorage.BlockColumn, 0, len(cols)+8)
	for _, c := range cols {
		if c.Name != fieldOverflow {
			out = append(out, logstorage.BlockColumn{Name: c.Name, Values: []string{c.Values[row]}})
		}
	}
	forEachOverflowPair(overflow, func(name, value string) {
		out = append(out, logstorage.BlockColumn{Name: name, Values: []string{value}})
	})
	return out
}

// forEachOverflowPair calls fn with each field name and value kept in an
// overflow field (see spillOverBudget).
func forEachOverflowPair(overflow string, fn func(name, value string)) {
	for rest := overflow; rest != ""; {
		name, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return
		}
		rest = strings.TrimPrefix(rest[len(name):], " ")
		value, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return
		}
		rest = strings.TrimPrefix(rest[len(value):], " ")
		n, _ := strconv.Unquote(name)
		v, _ := strconv.Unquote(value)
		fn(n, v)
	}
}

// cloneColumns copies the column values into one fresh buffer each.
func cloneColumns(cols []logstorage.BlockColumn) []logstorage.BlockColumn {
	out := make([]logstorage.BlockColumn, len(cols))
	for i, c := range cols {
		n := 0
		for _, v := range c.Values {
			n += len(v)
		}
		buf := make([]byte, 0, n)
		values := make([]string, len(c.Values))
		for j, v := range c.Values {
			start := len(buf)
			buf = append(buf, v...)
			values[j] = unsafeString(buf[start:len(buf):len(buf)])
		}
		out[i] = logstorage.BlockColumn{Name: strings.Clone(c.Name), Values: values}
	}
	return out
}

func (b *traceBuilder) addRow(cols []logstorage.BlockColumn, row int, startNs int64) {
	types := map[string]byte{}
	var service string
	var resourceKey, scopeKey strings.Builder
	for _, c := range cols {
		v := c.Values[row]
		switch {
		case c.Name == fieldTypes:
			for _, t := range strings.Split(v, "\n") {
				if i := strings.LastIndexByte(t, '='); i > 0 && i == len(t)-2 {
					types[t[:i]] = t[i+1]
				}
			}
		case c.Name == fieldService:
			service = v
		case c.Name == fieldResource:
			resourceKey.WriteString(v)
		case strings.HasPrefix(c.Name, prefixScopeAttr), c.Name == fieldScopeName, c.Name == fieldScopeVersion:
			if v != "" {
				scopeKey.WriteString(c.Name + "\x00" + v + "\x00")
			}
		}
	}
	rKey := service + "\x01" + resourceKey.String()
	sKey := rKey + "\x02" + scopeKey.String()
	ss, ok := b.scopes[sKey]
	if !ok {
		rs := b.td.ResourceSpans().AppendEmpty()
		res := rs.Resource()
		res.Attributes().PutStr("service.name", service)
		ss = rs.ScopeSpans().AppendEmpty()
		for _, c := range cols {
			v := c.Values[row]
			switch {
			case c.Name == fieldResource:
				forEachResourcePair(v, func(k, v string, letter byte) {
					putAttr(res.Attributes(), k, v, cmp.Or(letter, 's'))
				})
			case strings.HasPrefix(c.Name, prefixScopeAttr):
				putAttr(ss.Scope().Attributes(), c.Name[len(prefixScopeAttr):], v, types[c.Name])
			case c.Name == fieldScopeName:
				ss.Scope().SetName(v)
			case c.Name == fieldScopeVersion:
				ss.Scope().SetVersion(v)
			}
		}
		putEmptyStrings(ss.Scope().Attributes(), types, prefixScopeAttr)
		b.scopes[sKey] = ss
	}

	span := ss.Spans().AppendEmpty()
	b.count++
	span.SetStartTimestamp(pcommon.Timestamp(startNs))
	for _, c := range cols {
		v := c.Values[row]
		switch c.Name {
		case fieldName:
			span.SetName(v)
		case fieldTraceID:
			var id pcommon.TraceID
			_, _ = hex.Decode(id[:], []byte(v))
			span.SetTraceID(id)
		case fieldSpan:
			var ids [16]byte // the span ID, then the parent's, if any
			var id, parent pcommon.SpanID
			if n := len(v) / 2; (n == 8 || n == 16) && len(v)%2 == 0 {
				if _, err := hex.Decode(ids[:n], []byte(v)); err == nil {
					id, parent = pcommon.SpanID(ids[:8]), pcommon.SpanID(ids[8:])
				}
			}
			span.SetSpanID(id)
			span.SetParentSpanID(parent)
		case fieldKind:
			n, _ := strconv.Atoi(v)
			span.SetKind(ptrace.SpanKind(n))
		case fieldDuration:
			n, _ := strconv.ParseInt(v, 10, 64)
			span.SetEndTimestamp(pcommon.Timestamp(startNs + n))
		case fieldStatusCode:
			n, _ := strconv.Atoi(v)
			span.Status().SetCode(ptrace.StatusCode(n))
		case fieldStatusMessage:
			span.Status().SetMessage(v)
		case fieldTraceState:
			span.TraceState().FromRaw(v)
		case fieldFlags:
			n, _ := strconv.ParseUint(v, 10, 32)
			span.SetFlags(uint32(n))
		case fieldExtra:
			decodeExtra(span, v)
		default:
			if strings.HasPrefix(c.Name, prefixAttr) {
				putAttr(span.Attributes(), c.Name[len(prefixAttr):], v, types[c.Name])
			}
		}
	}
	putEmptyStrings(span.Attributes(), types, prefixAttr)
}

// forEachResourcePair calls fn for each attribute packed in a resource
// field, with its type letter (0 for a string); it stops at the first
// malformed pair.
func forEachResourcePair(packed string, fn func(key, value string, letter byte)) {
	for rest := packed; rest != ""; {
		qk, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return
		}
		rest = rest[len(qk):]
		if !strings.HasPrefix(rest, "=") {
			return
		}
		rest = rest[1:]
		var letter byte
		if rest != "" && rest[0] >= 'a' && rest[0] <= 'z' {
			letter, rest = rest[0], rest[1:]
		}
		qv, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return
		}
		rest = strings.TrimPrefix(rest[len(qv):], " ")
		k, _ := strconv.Unquote(qk)
		v, _ := strconv.Unquote(qv)
		fn(k, v, letter)
	}
}

// putEmptyStrings restores the empty string attributes under prefix: logstorage
// keeps no column for an empty value, so only the types entry ("s", which a
// string that reads as an integer has too) tells of them.
func putEmptyStrings(m pcommon.Map, types map[string]byte, prefix string) {
	for name, t := range types {
		if t != 's' || !strings.HasPrefix(name, prefix) {
			continue
		}
		if _, ok := m.Get(name[len(prefix):]); !ok {
			m.PutStr(name[len(prefix):], "")
		}
	}
}

// putAttr restores one attribute with the type recorded for it; a row of a
// block that lacks the attribute has "" and no type, and is skipped. With no
// type recorded, an integer's text is an int (see appendAttr).
func putAttr(m pcommon.Map, key, v string, t byte) {
	switch t {
	case 0:
		if n, ok := parseCanonicalInt(v); ok {
			m.PutInt(key, n)
		} else if v != "" {
			m.PutStr(key, v)
		}
	case 's':
		m.PutStr(key, v)
	case 'b':
		m.PutBool(key, v == "true")
	case 'i':
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			m.PutStr(key, v)
			return
		}
		m.PutInt(key, n)
	case 'd':
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			m.PutStr(key, v)
			return
		}
		m.PutDouble(key, f)
	case 'y':
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			m.PutStr(key, v)
			return
		}
		m.PutEmptyBytes(key).FromRaw(raw)
	case 'a':
		var items []any
		if err := json.Unmarshal([]byte(v), &items); err != nil || m.PutEmptySlice(key).FromRaw(items) != nil {
			m.PutStr(key, v)
		}
	case 'm':
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil || m.PutEmptyMap(key).FromRaw(obj) != nil {
			m.PutStr(key, v)
		}
	case 'e':
		m.PutEmpty(key)
	default:
		m.PutStr(key, v)
	}
}

var extraUnmarshaler = &ptrace.ProtoUnmarshaler{}

func decodeExtra(span ptrace.Span, v string) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return
	}
	td, err := extraUnmarshaler.UnmarshalTraces(raw)
	if err != nil || td.SpanCount() != 1 {
		return
	}
	src := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	start := uint64(span.StartTimestamp())
	for i := 0; i < src.Events().Len(); i++ {
		ev := src.Events().At(i)
		ev.SetTimestamp(pcommon.Timestamp(uint64(ev.Timestamp()) + start))
	}
	src.Events().MoveAndAppendTo(span.Events())
	src.Links().MoveAndAppendTo(span.Links())
	span.SetDroppedAttributesCount(src.DroppedAttributesCount())
	span.SetDroppedEventsCount(src.DroppedEventsCount())
	span.SetDroppedLinksCount(src.DroppedLinksCount())
}

// nsToTime converts Unix nanoseconds.
func nsToTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
