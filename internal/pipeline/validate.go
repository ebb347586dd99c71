package pipeline

import (
	"fmt"
	"strconv"
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
	// MaxRowBytes is what storage keeps of one item (StorageLimits); an
	// item that may take more is checked exactly and refused if it does.
	MaxRowBytes int
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
	// MaxRowBytes bounds one stored item, all its fields and their names
	// together, text written as the store quotes it.
	MaxRowBytes int
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
	if s.MaxRowBytes > 0 {
		l.MaxRowBytes = s.MaxRowBytes
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
		resBytes, resErr := sizeAttributes(rs.Resource().Attributes(), l, "resource ")
		if resErr == "" && len(service) > l.MaxServiceNameSize {
			resErr = fmt.Sprintf("service.name is %d bytes, over the limit of %d", len(service), l.MaxServiceNameSize)
		}
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			scopeErr := checkScope(ss.Scope(), l)
			shared := resBytes + textBytes(ss.Scope().Attributes()) + len(ss.Scope().Name()) + len(ss.Scope().Version())
			ss.Spans().RemoveIf(func(span ptrace.Span) bool {
				if resErr != "" {
					return reject(service, span, resErr)
				}
				if scopeErr != "" {
					return reject(service, span, scopeErr)
				}
				reason, size := checkSpan(span, l, oldest, newest)
				if reason == "" {
					reason = checkRow(span, size, rs.Resource().Attributes(), ss.Scope(), shared, l)
				}
				if reason != "" {
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

// checkSpan checks one span and returns, when it may be kept, the size of
// its text: name, status, attributes, events and links.
func checkSpan(span ptrace.Span, l Limits, oldest, newest int64) (string, int) {
	if reason := checkSpanTimes(span, oldest, newest); reason != "" {
		return reason, 0
	}
	return checkSpanText(span, l)
}

func checkSpanTimes(span ptrace.Span, oldest, newest int64) string {
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
	case end > newest:
		// A span ending in 2100 once made a service's p99 2.3e12 ms.
		return fmt.Sprintf("end time %s is too far in the future (limit %s; check the client's clock)", fmtNs(end), fmtNs(newest))
	}
	return ""
}

func checkSpanText(span ptrace.Span, l Limits) (string, int) {
	if span.Events().Len() > l.MaxEvents {
		return fmt.Sprintf("%d events, over the limit of %d", span.Events().Len(), l.MaxEvents), 0
	}
	if span.Links().Len() > l.MaxLinks {
		return fmt.Sprintf("%d links, over the limit of %d", span.Links().Len(), l.MaxLinks), 0
	}
	for _, f := range []struct{ what, text string }{
		{"name", span.Name()}, {"status message", span.Status().Message()}, {"trace state", span.TraceState().AsRaw()},
	} {
		if len(f.text) > l.MaxValueBytes {
			return fmt.Sprintf("%s is %d bytes, over the limit of %d", f.what, len(f.text), l.MaxValueBytes), 0
		}
	}
	attrs, reason := sizeAttributes(span.Attributes(), l, "")
	if reason != "" {
		return reason, 0
	}
	// Events and links are kept whole with the span: every part of them is
	// bounded as the span's own are.
	total := len(span.Name()) + len(span.Status().Message()) + len(span.TraceState().AsRaw()) + attrs
	for i := range span.Events().Len() {
		e := span.Events().At(i)
		if len(e.Name()) > l.MaxValueBytes {
			return fmt.Sprintf("event %d's name is %d bytes, over the limit of %d", i, len(e.Name()), l.MaxValueBytes), 0
		}
		n, reason := sizeAttributes(e.Attributes(), l, "event ")
		if reason != "" {
			return fmt.Sprintf("event %d: %s", i, reason), 0
		}
		total += len(e.Name()) + n
	}
	for i := range span.Links().Len() {
		lk := span.Links().At(i)
		n, reason := sizeAttributes(lk.Attributes(), l, "link ")
		if reason != "" {
			return fmt.Sprintf("link %d: %s", i, reason), 0
		}
		total += len(lk.TraceState().AsRaw()) + n
	}
	if total > l.MaxSpanBytes {
		return fmt.Sprintf("name, status, attributes, events and links total %d bytes, over the limit of %d", total, l.MaxSpanBytes), 0
	}
	return "", total
}

// checkScope checks an instrumentation scope, kept with each of its spans.
func checkScope(scope pcommon.InstrumentationScope, l Limits) string {
	if n := len(scope.Name()) + len(scope.Version()); n > l.MaxValueBytes {
		return fmt.Sprintf("scope name and version are %d bytes, over the limit of %d", n, l.MaxValueBytes)
	}
	return checkAttributes(scope.Attributes(), l, "scope ")
}

// textBytes is the size of m's keys and values as text.
func textBytes(m pcommon.Map) int {
	n := 0
	m.Range(func(k string, v pcommon.Value) bool {
		n += len(k) + valueSize(v)
		return true
	})
	return n
}

// checkRow refuses a span that, stored, could be more than storage keeps in
// one row: logstorage drops such a row with only a warning, after the client
// was told the span was stored. shared is the text of the span's resource
// and scope, which every row of theirs carries. Most spans are far below the
// limit on a cheap count; only a span within a quarter of it is measured as
// the store writes it, text quoted.
func checkRow(span ptrace.Span, size int, res pcommon.Map, scope pcommon.InstrumentationScope, shared int, l Limits) string {
	const perField = 32 // a field's name and framing
	if l.MaxRowBytes <= 0 || 4*(shared+size)+perField*(span.Attributes().Len()+res.Len()+scope.Attributes().Len()) <= l.MaxRowBytes {
		return ""
	}
	stored := quotedBytes(res) + quotedBytes(scope.Attributes()) + len(strconv.Quote(scope.Name())) + len(strconv.Quote(scope.Version())) +
		len(span.Name()) + len(span.Status().Message()) + len(span.TraceState().AsRaw()) +
		quotedBytes(span.Attributes()) + perField*(span.Attributes().Len()+res.Len()+scope.Attributes().Len()) +
		extraBytes(span, textBytes)
	if stored > l.MaxRowBytes {
		return fmt.Sprintf("stored, the span would take about %d bytes, over the %d storage keeps of one span", stored, l.MaxRowBytes)
	}
	return ""
}

// extraBytes bounds what a span's events and links take stored: base64 of
// their protobuf, 4/3 of it and a little framing.
func extraBytes(span ptrace.Span, text func(pcommon.Map) int) int {
	n := 0
	for i := range span.Events().Len() {
		e := span.Events().At(i)
		n += 24 + len(e.Name()) + text(e.Attributes()) + 8*e.Attributes().Len()
	}
	for i := range span.Links().Len() {
		lk := span.Links().At(i)
		n += 40 + len(lk.TraceState().AsRaw()) + text(lk.Attributes()) + 8*lk.Attributes().Len()
	}
	return n * 4 / 3
}

// quotedBytes is the size of m's keys and values written as Go-quoted
// strings, as the store writes packed resources and attributes over a
// service's column budget: a control byte takes four.
func quotedBytes(m pcommon.Map) int {
	n := 0
	m.Range(func(k string, v pcommon.Value) bool {
		n += len(strconv.Quote(k)) + len(strconv.Quote(v.AsString())) + 2
		return true
	})
	return n
}

func checkAttributes(m pcommon.Map, l Limits, what string) string {
	_, reason := sizeAttributes(m, l, what)
	return reason
}

// sizeAttributes checks m as checkAttributes does and returns the size of its
// keys and values as text.
func sizeAttributes(m pcommon.Map, l Limits, what string) (int, string) {
	if m.Len() > l.MaxAttributes {
		return 0, fmt.Sprintf("%d %sattributes, over the limit of %d", m.Len(), what, l.MaxAttributes)
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
	return total, reason
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
