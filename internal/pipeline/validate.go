package pipeline

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Limits bound what one item may carry. Storage cannot keep what exceeds
// them, so such items are refused with a reason rather than silently lost.
type Limits struct {
	MaxAttributes      int           // per span, resource and scope each; default 256
	MaxKeyBytes        int           // attribute key length; default 100, at most what storage keeps
	MaxValueBytes      int           // one attribute value; default 64 KiB
	MaxSpanBytes       int           // all attributes of a span together; default 1 MiB
	MaxEvents          int           // events per span; default 1024
	MaxLinks           int           // links per span; default 1024
	MaxAge             time.Duration // oldest start accepted; default 7 days, at most what storage keeps
	MaxFuture          time.Duration // furthest start ahead of now; default 24h, at most what storage keeps
	MaxServiceNameSize int           // default 256
}

// StorageLimits is what a store can keep, as the store states it
// (spanstore.Store.Limits): the front door refuses what exceeds it rather
// than letting the engine drop it after the client was told it was kept.
type StorageLimits struct {
	// MaxKeyBytes is the longest attribute key stored.
	MaxKeyBytes int
	// MaxAge is how old a start time may be: the retention.
	MaxAge time.Duration
	// MaxFuture is how far ahead of now a start time may be.
	MaxFuture time.Duration
}

// effective fills in the defaults and tightens l to what storage keeps.
func (l Limits) effective(s StorageLimits) Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxAttributes, 256)
	def(&l.MaxKeyBytes, 100)
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
	if s.MaxKeyBytes > 0 {
		l.MaxKeyBytes = min(l.MaxKeyBytes, s.MaxKeyBytes)
	}
	if s.MaxAge > 0 {
		l.MaxAge = min(l.MaxAge, s.MaxAge)
	}
	if s.MaxFuture > 0 {
		l.MaxFuture = min(l.MaxFuture, s.MaxFuture)
	}
	return l
}

// Validation is what validating a batch found.
type Validation struct {
	Accepted int
	Rejected int
	// FirstError explains the first rejected item ("span 3 of service x: ...").
	FirstError string
}

func (v *Validation) reject(reason string) {
	v.Rejected++
	if v.FirstError == "" {
		v.FirstError = reason
	}
}

// Validate removes from td, in place, every span that storage could not keep
// whole, and says why. A resource whose spans are all removed goes too.
// Limits are taken as given, with defaults for what is unset.
func Validate(td ptrace.Traces, limits Limits, now time.Time) Validation {
	return validateTraces(td, limits.effective(StorageLimits{}), now)
}

func validateTraces(td ptrace.Traces, l Limits, now time.Time) Validation {
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

// validateLogs removes from ld, in place, every record storage could not
// keep whole. Records keep their own time even when it is outside what
// storage accepts: the store files them at arrival and keeps the original.
func validateLogs(ld plog.Logs, l Limits) Validation {
	var v Validation
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		service := serviceOf(rl.Resource().Attributes())
		resErr := checkResource(rl.Resource().Attributes(), service, l)
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			scopeErr := checkAttributes(sl.Scope().Attributes(), l, "scope ")
			sl.LogRecords().RemoveIf(func(rec plog.LogRecord) bool {
				if reason := firstOf(resErr, scopeErr, checkLogRecord(rec, l)); reason != "" {
					v.reject(fmt.Sprintf("log record of service %q: %s", truncate(service, 64), reason))
					return true
				}
				v.Accepted++
				return false
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	return v
}

func checkLogRecord(rec plog.LogRecord, l Limits) string {
	// A body holds a whole message or stack trace: it may be as large as all
	// of a span's attributes together.
	if n := valueSize(rec.Body()); n > l.MaxSpanBytes {
		return fmt.Sprintf("body is %d bytes, over the limit of %d", n, l.MaxSpanBytes)
	}
	return checkAttributes(rec.Attributes(), l, "")
}

// validateMetrics removes from md, in place, every metric whose attributes
// storage could not keep as labels.
func validateMetrics(md pmetric.Metrics, l Limits) Validation {
	var v Validation
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		service := serviceOf(rm.Resource().Attributes())
		resErr := checkResource(rm.Resource().Attributes(), service, l)
		rm.ScopeMetrics().RemoveIf(func(sm pmetric.ScopeMetrics) bool {
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				points := pointCount(m)
				reason := resErr
				if reason == "" && m.Name() == "" {
					reason = "metric without a name"
				}
				if reason == "" {
					reason = checkPoints(m, l)
				}
				if reason != "" {
					v.Rejected += points
					if v.FirstError == "" {
						v.FirstError = fmt.Sprintf("metric %q of service %q: %s", truncate(m.Name(), 64), truncate(service, 64), reason)
					}
					return true
				}
				v.Accepted += points
				return false
			})
			return sm.Metrics().Len() == 0
		})
		return rm.ScopeMetrics().Len() == 0
	})
	return v
}

func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// checkPoints checks the attributes of a metric's data points, which become
// its labels.
func checkPoints(m pmetric.Metric, l Limits) string {
	check := func(n int, attrs func(int) pcommon.Map) string {
		for i := range n {
			if reason := checkAttributes(attrs(i), l, "data point "); reason != "" {
				return reason
			}
		}
		return ""
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		return check(dps.Len(), func(i int) pcommon.Map { return dps.At(i).Attributes() })
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		return check(dps.Len(), func(i int) pcommon.Map { return dps.At(i).Attributes() })
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		return check(dps.Len(), func(i int) pcommon.Map { return dps.At(i).Attributes() })
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		return check(dps.Len(), func(i int) pcommon.Map { return dps.At(i).Attributes() })
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		return check(dps.Len(), func(i int) pcommon.Map { return dps.At(i).Attributes() })
	}
	return ""
}

func checkHeartbeat(hb Heartbeat, l Limits) string {
	switch {
	case hb.Service == "":
		return fmt.Sprintf("heartbeat of instance %q has no service", truncate(hb.Instance, 64))
	case hb.Instance == "":
		return fmt.Sprintf("heartbeat of service %q has no instance", truncate(hb.Service, 64))
	case len(hb.Service) > l.MaxServiceNameSize:
		return fmt.Sprintf("heartbeat's service name is %d bytes, over the limit of %d", len(hb.Service), l.MaxServiceNameSize)
	case len(hb.Instance) > l.MaxValueBytes:
		return fmt.Sprintf("heartbeat's instance name is %d bytes, over the limit of %d", len(hb.Instance), l.MaxValueBytes)
	}
	return ""
}

// checkResource checks a resource's attributes and service name.
func checkResource(attrs pcommon.Map, service string, l Limits) string {
	if reason := checkAttributes(attrs, l, "resource "); reason != "" {
		return reason
	}
	if len(service) > l.MaxServiceNameSize {
		return fmt.Sprintf("service.name is %d bytes, over the limit of %d", len(service), l.MaxServiceNameSize)
	}
	return ""
}

func serviceOf(attrs pcommon.Map) string {
	if sv, ok := attrs.Get("service.name"); ok {
		return sv.AsString()
	}
	return ""
}

func firstOf(reasons ...string) string {
	for _, r := range reasons {
		if r != "" {
			return r
		}
	}
	return ""
}
