// Package logfields finds what a log line says about itself, whatever
// logger wrote it: its trace and span, message, severity and time, under
// the names loggers and shippers use. The front door applies it to every
// log record (pipeline.Logs), so a line shipped as JSON through
// Elasticsearch's bulk API, pushed to Loki's API or exported over OTLP is
// stored alike, and found by its trace like a span.
//
// Normalize lifts those fields out of the record's attributes (or out of a
// body that is a JSON object or a map) into the record's own fields, and
// removes the attributes it lifted whole; everything else stays an
// attribute, searchable by name. It is idempotent: a record it already saw
// has nothing left to lift.
package logfields

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/traceid"
)

// The attribute names read, by what they carry. Names are matched exactly:
// loggers write one of these spellings, and a case-insensitive match would
// cost every attribute of every line a fold.
var (
	traceKeys    = []string{"trace_id", "traceId", "traceID", "trace.id", "traceid", "TraceId", "otelTraceID", "dd.trace_id"}
	spanKeys     = []string{"span_id", "spanId", "spanID", "span.id", "spanid", "SpanId", "otelSpanID", "dd.span_id"}
	parentKeys   = []string{"traceparent"}
	swCtxKeys    = []string{"SW_CTX", "sw_ctx"}
	messageKeys  = []string{"message", "msg", "_msg", "log", "body"}
	severityKeys = []string{"level", "severity", "log.level", "lvl", "severity_text", "levelname", "loglevel"}
	timeKeys     = []string{"@timestamp", "timestamp", "time", "ts", "_time"}
)

// role says what a known attribute name carries.
type role uint8

const (
	roleNone role = iota
	roleTrace
	roleSpan
	roleParent
	roleSWCtx
	roleMessage
	roleSeverity
	roleTime
)

var roles = func() map[string]role {
	m := map[string]role{}
	for r, keys := range map[role][]string{roleTrace: traceKeys, roleSpan: spanKeys, roleParent: parentKeys,
		roleSWCtx: swCtxKeys, roleMessage: messageKeys, roleSeverity: severityKeys, roleTime: timeKeys} {
		for _, k := range keys {
			m[k] = r
		}
	}
	return m
}()

// found is what one pass over a record's attributes saw: the first value of
// each role, by its key.
type found struct {
	keys [roleTime + 1]string
	vals [roleTime + 1]pcommon.Value
	any  bool
}

// Normalize lifts the trace and span IDs, message, severity and time of rec
// out of its attributes into the record's own fields, where those are
// empty. A body that is a map, or a string holding a JSON object, is
// spread into attributes first (a key already there wins), its message
// becoming the body.
func Normalize(rec plog.LogRecord) {
	attrs := rec.Attributes()
	expandBody(rec, attrs)
	var f found
	attrs.Range(func(k string, v pcommon.Value) bool {
		if r := roles[k]; r != roleNone && f.keys[r] == "" {
			f.keys[r], f.vals[r], f.any = k, v, true
		}
		return true
	})
	if !f.any {
		if rec.SeverityNumber() == 0 && rec.SeverityText() != "" {
			rec.SetSeverityNumber(SeverityNumber(rec.SeverityText()))
		}
		return
	}
	var remove [8]string
	drop := remove[:0]

	if rec.TraceID().IsEmpty() {
		switch {
		case f.keys[roleTrace] != "":
			s := f.vals[roleTrace].AsString()
			if id, ok := TraceID(s); ok {
				rec.SetTraceID(id)
				if isCanonicalHex(s, 32) {
					// Stored as the trace_id field: the attribute says nothing more.
					drop = append(drop, f.keys[roleTrace])
				}
			}
			if f.keys[roleSpan] != "" && rec.SpanID().IsEmpty() {
				if id, ok := SpanID(f.vals[roleSpan].AsString()); ok {
					rec.SetSpanID(id)
					drop = append(drop, f.keys[roleSpan])
				}
			}
		case f.keys[roleParent] != "":
			if tid, sid, ok := Traceparent(f.vals[roleParent].AsString()); ok {
				rec.SetTraceID(tid)
				rec.SetSpanID(sid)
				drop = append(drop, f.keys[roleParent])
			}
		case f.keys[roleSWCtx] != "":
			// Kept: its service, instance and segment are worth seeing.
			if tid, sid, ok := SWCtx(f.vals[roleSWCtx].AsString()); ok {
				rec.SetTraceID(tid)
				rec.SetSpanID(sid)
			}
		}
	} else {
		// The record's own IDs (OTLP) win; a copy in the attributes that
		// says the same is dropped.
		for _, r := range []role{roleTrace, roleSpan} {
			if f.keys[r] == "" {
				continue
			}
			s := f.vals[r].AsString()
			if r == roleTrace && isCanonicalHex(s, 32) && s == hexOf(rec.TraceID()) ||
				r == roleSpan && isCanonicalHex(s, 16) && s == hexOfSpan(rec.SpanID()) {
				drop = append(drop, f.keys[r])
			}
		}
	}
	if k := f.keys[roleMessage]; k != "" && isEmptyBody(rec.Body()) {
		v := f.vals[roleMessage]
		if v.Type() == pcommon.ValueTypeStr {
			rec.Body().SetStr(v.Str())
		} else {
			rec.Body().SetStr(v.AsString())
		}
		drop = append(drop, k)
	}
	if k := f.keys[roleSeverity]; k != "" && rec.SeverityText() == "" {
		rec.SetSeverityText(f.vals[roleSeverity].AsString())
		drop = append(drop, k)
	}
	if rec.SeverityNumber() == 0 && rec.SeverityText() != "" {
		rec.SetSeverityNumber(SeverityNumber(rec.SeverityText()))
	}
	if k := f.keys[roleTime]; k != "" && rec.Timestamp() == 0 {
		if ts, ok := ParseTime(f.vals[roleTime]); ok {
			rec.SetTimestamp(pcommon.Timestamp(ts))
			drop = append(drop, k)
		}
	}
	if len(drop) > 0 {
		attrs.RemoveIf(func(k string, _ pcommon.Value) bool {
			for _, d := range drop {
				if k == d {
					return true
				}
			}
			return false
		})
	}
}

func isEmptyBody(v pcommon.Value) bool {
	return v.Type() == pcommon.ValueTypeEmpty || v.Type() == pcommon.ValueTypeStr && v.Str() == ""
}

// expandBody spreads a body that is a map, or a string holding a JSON
// object, into attributes (nested keys joined with dots, as
// VictoriaLogs' JSON parser does), leaving the body empty for the message
// field to fill, or, without one, the original text.
func expandBody(rec plog.LogRecord, attrs pcommon.Map) {
	body := rec.Body()
	switch body.Type() {
	case pcommon.ValueTypeMap:
		m := body.Map()
		flattenInto(attrs, "", m)
		body.SetStr("")
	case pcommon.ValueTypeStr:
		s := body.Str()
		if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
			return
		}
		p := logstorage.GetJSONParser()
		defer logstorage.PutJSONParser(p)
		if err := p.ParseLogMessage([]byte(s), nil, ""); err != nil {
			return // text that only looks like JSON stays text
		}
		original := strings.Clone(s)
		hasMessage := false
		for _, fld := range p.Fields {
			if _, ok := attrs.Get(fld.Name); ok || fld.Name == "" {
				continue
			}
			attrs.PutStr(strings.Clone(fld.Name), strings.Clone(fld.Value))
			hasMessage = hasMessage || roles[fld.Name] == roleMessage
		}
		if hasMessage {
			body.SetStr("")
		} else {
			body.SetStr(original)
		}
	}
}

func flattenInto(dst pcommon.Map, prefix string, m pcommon.Map) {
	m.Range(func(k string, v pcommon.Value) bool {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if v.Type() == pcommon.ValueTypeMap {
			flattenInto(dst, name, v.Map())
			return true
		}
		if _, ok := dst.Get(name); !ok {
			v.CopyTo(dst.PutEmpty(name))
		}
		return true
	})
}

// TraceID maps a trace ID as a logger wrote it to the stored one, as the
// span receivers do (see package traceid): 32 hex digits are the bytes,
// shorter hex (a 64-bit Jaeger or Zipkin ID) is left-padded with zeros, a
// UUID-formatted ID loses its dashes, anything else (a SkyWalking trace ID)
// maps through traceid.FromString. "N/A", "0" and the like find nothing.
func TraceID(s string) (pcommon.TraceID, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "N/A" || len(s) > traceid.MaxInputLen {
		return pcommon.TraceID{}, false
	}
	if len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-' {
		if h := strings.ReplaceAll(s, "-", ""); isHex(h) {
			s = h
		}
	}
	if len(s) < 32 && isHex(s) {
		s = strings.Repeat("0", 32-len(s)) + s
	}
	return traceid.FromString(s)
}

// SpanID reads a span ID of 16 hex digits (shorter hex is left-padded).
func SpanID(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 16 || !isHex(s) {
		return id, false
	}
	s = strings.Repeat("0", 16-len(s)) + s
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, !id.IsEmpty()
}

// Traceparent reads a W3C traceparent: version-traceid-spanid-flags.
func Traceparent(s string) (pcommon.TraceID, pcommon.SpanID, bool) {
	var tid pcommon.TraceID
	var sid pcommon.SpanID
	s = strings.TrimSpace(s)
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return tid, sid, false
	}
	if _, err := hex.Decode(tid[:], []byte(s[3:35])); err != nil || tid.IsEmpty() {
		return tid, sid, false
	}
	if _, err := hex.Decode(sid[:], []byte(s[36:52])); err != nil {
		return tid, sid, false
	}
	return tid, sid, true
}

// SWCtx reads the trace context the SkyWalking Go agents (skywalking-go,
// go2sky's logger plugins) write into a log line's SW_CTX field:
// "[service,instance,traceId,segmentId,spanId]", "N/A" parts when there is
// no trace. The span maps as the SkyWalking receiver maps the segment's span.
func SWCtx(s string) (pcommon.TraceID, pcommon.SpanID, bool) {
	var sid pcommon.SpanID
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return pcommon.TraceID{}, sid, false
	}
	parts := strings.Split(s[1:len(s)-1], ",")
	if len(parts) != 5 {
		return pcommon.TraceID{}, sid, false
	}
	tid, ok := TraceID(parts[2])
	if !ok {
		return tid, sid, false
	}
	segment := strings.TrimSpace(parts[3])
	if n, err := strconv.ParseInt(strings.TrimSpace(parts[4]), 10, 32); err == nil && segment != "" && segment != "N/A" {
		sid = traceid.SpanIDFromSegment(segment, int32(n))
	}
	return tid, sid, true
}

// SeverityNumber maps a level's name to OpenTelemetry's severity number
// (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24
// fatal); 0 for a name it does not know. Numbers are taken as syslog
// levels (0 emergency ... 7 debug) when 0-7, as they are otherwise.
func SeverityNumber(level string) plog.SeverityNumber {
	l := strings.ToLower(strings.TrimSpace(level))
	switch l {
	case "trace", "finest", "finer", "verbose":
		return plog.SeverityNumberTrace
	case "debug", "dbg", "d", "fine", "debug1", "debug2":
		return plog.SeverityNumberDebug
	case "info", "information", "informational", "inf", "i", "notice", "config":
		return plog.SeverityNumberInfo
	case "warn", "warning", "wrn", "w":
		return plog.SeverityNumberWarn
	case "error", "err", "e", "severe", "dpanic":
		return plog.SeverityNumberError
	case "fatal", "critical", "crit", "panic", "emerg", "emergency", "alert", "f":
		return plog.SeverityNumberFatal
	}
	if n, err := strconv.Atoi(l); err == nil {
		syslog := [...]plog.SeverityNumber{plog.SeverityNumberFatal4, plog.SeverityNumberFatal2, plog.SeverityNumberFatal,
			plog.SeverityNumberError, plog.SeverityNumberWarn, plog.SeverityNumberInfo2, plog.SeverityNumberInfo, plog.SeverityNumberDebug}
		if n >= 0 && n < len(syslog) {
			return syslog[n]
		}
	}
	return 0
}

// ParseTime reads a time field: RFC 3339 text, or a Unix time in seconds
// (fractions allowed), milliseconds, microseconds or nanoseconds, as text
// or a number. It returns Unix nanoseconds.
func ParseTime(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return unixNanos(float64(v.Int()), v.Int())
	case pcommon.ValueTypeDouble:
		return unixNanos(v.Double(), int64(v.Double()))
	case pcommon.ValueTypeStr:
		return ParseTimeString(v.Str())
	}
	return 0, false
}

// ParseTimeString is ParseTime for text.
func ParseTimeString(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if len(s) > 4 && s[4] == '-' {
		if ns, ok := logstorage.TryParseTimestampRFC3339Nano(s); ok {
			return ns, true
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UnixNano(), true
			}
		}
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return unixNanos(float64(n), n)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return unixNanos(f, int64(f))
	}
	return 0, false
}

// unixNanos reads a Unix time whose unit its size tells, as the query
// API's times are read.
func unixNanos(f float64, n int64) (int64, bool) {
	switch abs := max(f, -f); {
	case abs >= 1e17:
		return n, true
	case abs >= 1e14:
		return n * 1e3, true
	case abs >= 1e11:
		return n * 1e6, true
	case abs >= 1e8:
		return int64(f * 1e9), true
	}
	return 0, false // too small to be a time this century: not a time
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// isCanonicalHex reports whether s is n lowercase hex digits, the form the
// IDs are stored in.
func isCanonicalHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func hexOf(id pcommon.TraceID) string    { return hex.EncodeToString(id[:]) }
func hexOfSpan(id pcommon.SpanID) string { return hex.EncodeToString(id[:]) }
