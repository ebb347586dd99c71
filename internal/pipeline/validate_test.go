package pipeline

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestValidateRefusesWhatStorageCannotKeep(t *testing.T) {
	now := time.Now()
	good := func(sp ptrace.Span) {
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Minute)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	cases := map[string]struct {
		mutate func(ptrace.Span)
		reason string
	}{
		"zero trace ID":    {func(sp ptrace.Span) { sp.SetTraceID(pcommon.TraceID{}) }, "trace ID is missing or all zero"},
		"zero span ID":     {func(sp ptrace.Span) { sp.SetSpanID(pcommon.SpanID{}) }, "span ID is missing or all zero"},
		"no start":         {func(sp ptrace.Span) { sp.SetStartTimestamp(0) }, "start time is missing"},
		"end before start": {func(sp ptrace.Span) { sp.SetEndTimestamp(sp.StartTimestamp() - 1) }, "is before start time"},
		"beyond retention": {func(sp ptrace.Span) { sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-8 * 24 * time.Hour))) }, "older than the retention allows"},
		"far future": {func(sp ptrace.Span) {
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(48 * time.Hour)))
			sp.SetEndTimestamp(sp.StartTimestamp())
		}, "too far in the future"},
		"long key":          {func(sp ptrace.Span) { sp.Attributes().PutStr(strings.Repeat("k", 101), "v") }, "over the limit of 100"},
		"empty key":         {func(sp ptrace.Span) { sp.Attributes().PutStr("", "v") }, "empty key"},
		"huge value":        {func(sp ptrace.Span) { sp.Attributes().PutStr("k", strings.Repeat("v", 70<<10)) }, "over the limit of 65536"},
		"absurd attributes": {func(sp ptrace.Span) { manyAttributes(sp.Attributes(), 300) }, "300 attributes, over the limit of 256"},
		"many events": {func(sp ptrace.Span) {
			for i := 0; i < 1100; i++ {
				sp.Events().AppendEmpty()
			}
		}, "1100 events"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "svc")
			spans := rs.ScopeSpans().AppendEmpty().Spans()
			good(spans.AppendEmpty())
			bad := spans.AppendEmpty()
			good(bad)
			bad.SetSpanID(pcommon.SpanID{2})
			c.mutate(bad)
			v := Validate(td, Limits{}, now)
			if v.Accepted != 1 || v.Rejected != 1 || !strings.Contains(v.FirstError, c.reason) {
				t.Fatalf("got %+v, want 1 accepted, 1 rejected for %q", v, c.reason)
			}
			if td.SpanCount() != 1 || td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SpanID() != (pcommon.SpanID{1}) {
				t.Fatalf("the rejected span was not removed")
			}
		})
	}
}

func manyAttributes(m pcommon.Map, n int) {
	for i := 0; i < n; i++ {
		m.PutInt("k"+string(rune('a'+i%26))+strings.Repeat("x", i/26), int64(i))
	}
}

func TestValidateDropsEmptyResources(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", strings.Repeat("s", 300))
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	sp.SetEndTimestamp(sp.StartTimestamp())
	v := Validate(td, Limits{}, time.Now())
	if v.Rejected != 1 || td.ResourceSpans().Len() != 0 || !strings.Contains(v.FirstError, "service.name is 300 bytes") {
		t.Fatalf("got %+v with %d resources left", v, td.ResourceSpans().Len())
	}
}
