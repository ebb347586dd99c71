package pipeline

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Limits bound what one span may carry. Storage cannot keep what exceeds
// them, so such spans are refused with a reason rather than silently lost.
type Limits struct {
	MaxAttributes      int           // per span, resource and scope each; default 256
	MaxKeyBytes        int           // attribute key length; default and maximum 100
	MaxValueBytes      int           // one attribute value; default 64 KiB
	MaxSpanBytes       int           // all attributes of a span together; default 1 MiB
	MaxEvents          int           // events per span; default 1024
	MaxLinks           int           // links per span; default 1024
	MaxAge             time.Duration // oldest start accepted: the retention
	MaxFuture          time.Duration // furthest start ahead of now; default 24h
	MaxServiceNameSize int           // default 256
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxAttributes, 256)
	def(&l.MaxKeyBytes, 100)
	l.MaxKeyBytes = min(l.MaxKeyBytes, 100)
	def(&l.MaxValueBytes, 64<<10)
	def(&l.MaxSpanBytes, 1<<20)
	def(&l.MaxEvents, 1024)
	def(&l.MaxLinks, 1024)
	def(&l.MaxServiceNameSize, 256)
	if l.MaxAge <= 0 {
		l.MaxAge = 7 * 24 * time.Hour
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = 24 * time.Hour
	}
	return l
}

// Validation is the outcome of Validate.
type Validation struct {
	Accepted int
	Rejected int
	// FirstError explains the first rejected span ("span 3 of service x: ...").
	FirstError string
}

// Validate removes from td, in place, every span that storage could not keep
// whole, and says why. A resource whose spans are all removed goes too.
func Validate(td ptrace.Traces, limits Limits, now time.Time) Validation {
	l := limits.withDefaults()
	oldest := now.Add(-l.MaxAge).UnixNano()
	newest := now.Add(l.MaxFuture).UnixNano()
	var v Validation
	reject := func(service string, span ptrace.Span, reason string) bool {
		v.Rejected++
		if v.FirstError == "" {
			v.FirstError = fmt.Sprintf("span %q of service %q: %s", truncate(span.Name(), 64), truncate(service, 64), reason)
		}
		return true
	}
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		service := ""
		if sv, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = sv.AsString()
		}
		resErr := checkAttributes(rs.Resource().Attributes(), l, "resource ")
		if resErr == "" && len(service) > l.MaxServiceNameSize {
			resErr = fmt.Sprintf("service.name is %d bytes, over the limit of %d", len(service), l.MaxServiceNameSize)
		}
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			scopeErr := checkAttributes(ss.Scope().Attributes(), l, "scope ")
			ss.Spans().RemoveIf(func(span ptrace.Span) bool {
				if resErr != "" {
					return reject(service, span, resErr)
				}
				if scopeErr != "" {
					return reject(service, span, scopeErr)
				}
				if reason := checkSpan(span, l, oldest, newest); reason != "" {
					return reject(service, span, reason)
				}
				v.Accepted++
				return false
			})
			return ss.Spans().Len() == 0
		})
		return rs.ScopeSpans().Len() == 0
	})
	return v
}

func checkSpan(span ptrace.Span, l Limits, oldest, newest int64) string {
	if span.TraceID().IsEmpty() {
		return "trace ID is missing or all zero"
	}
	if span.SpanID().IsEmpty() {
		return "span ID is missing or all zero"
	}
	start, end := int64(span.StartTimestamp()), int64(span.EndTimestamp())
	switch {
	case start == 0:
		return "start time is missing"
	case end < start:
		return fmt.Sprintf("end time %s is before start time %s", fmtNs(end), fmtNs(start))
	case start < oldest:
		return fmt.Sprintf("start time %s is older than the retention allows (%s)", fmtNs(start), fmtNs(oldest))
	case start > newest:
		return fmt.Sprintf("start time %s is too far in the future (limit %s; check the client's clock)", fmtNs(start), fmtNs(newest))
	}
	if span.Events().Len() > l.MaxEvents {
		return fmt.Sprintf("%d events, over the limit of %d", span.Events().Len(), l.MaxEvents)
	}
	if span.Links().Len() > l.MaxLinks {
		return fmt.Sprintf("%d links, over the limit of %d", span.Links().Len(), l.MaxLinks)
	}
	if len(span.Name()) > l.MaxValueBytes {
		return fmt.Sprintf("name is %d bytes, over the limit of %d", len(span.Name()), l.MaxValueBytes)
	}
	return checkAttributes(span.Attributes(), l, "")
}

func checkAttributes(m pcommon.Map, l Limits, what string) string {
	if m.Len() > l.MaxAttributes {
		return fmt.Sprintf("%d %sattributes, over the limit of %d", m.Len(), what, l.MaxAttributes)
	}
	total := 0
	reason := ""
	m.Range(func(k string, v pcommon.Value) bool {
		if k == "" {
			reason = what + "attribute with an empty key"
			return false
		}
		if len(k) > l.MaxKeyBytes {
			reason = fmt.Sprintf("%sattribute key %q... is %d bytes, over the limit of %d", what, truncate(k, 32), len(k), l.MaxKeyBytes)
			return false
		}
		n := valueSize(v)
		if n > l.MaxValueBytes {
			reason = fmt.Sprintf("%sattribute %q is %d bytes, over the limit of %d", what, k, n, l.MaxValueBytes)
			return false
		}
		total += len(k) + n
		return true
	})
	if reason == "" && total > l.MaxSpanBytes {
		reason = fmt.Sprintf("%sattributes total %d bytes, over the limit of %d", what, total, l.MaxSpanBytes)
	}
	return reason
}

// valueSize approximates the stored size of v without encoding it.
func valueSize(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return len(v.Str())
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len() * 4 / 3
	case pcommon.ValueTypeSlice:
		n := 2
		s := v.Slice()
		for i := 0; i < s.Len(); i++ {
			n += valueSize(s.At(i)) + 3
		}
		return n
	case pcommon.ValueTypeMap:
		n := 2
		v.Map().Range(func(k string, e pcommon.Value) bool {
			n += len(k) + valueSize(e) + 6
			return true
		})
		return n
	}
	return 24
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func fmtNs(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
