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
		"ends in 2100": {func(sp ptrace.Span) {
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)))
		}, "end time 2100-01-01T00:00:00Z is too far in the future"},
		"huge event name":       {func(sp ptrace.Span) { sp.Events().AppendEmpty().SetName(strings.Repeat("e", 2<<20)) }, "event 0's name is 2097152 bytes"},
		"huge event attribute":  {func(sp ptrace.Span) { sp.Events().AppendEmpty().Attributes().PutStr("k", strings.Repeat("v", 2<<20)) }, "event 0: event attribute \"k\" is 2097152 bytes"},
		"huge link attribute":   {func(sp ptrace.Span) { sp.Links().AppendEmpty().Attributes().PutStr("k", strings.Repeat("v", 2<<20)) }, "link 0: link attribute \"k\" is 2097152 bytes"},
		"huge status message":   {func(sp ptrace.Span) { sp.Status().SetMessage(strings.Repeat("m", 2<<20)) }, "status message is 2097152 bytes"},
		"long event attr key":   {func(sp ptrace.Span) { sp.Events().AppendEmpty().Attributes().PutStr(strings.Repeat("k", 200), "v") }, "over the limit of 100"},
		"events total too much": {func(sp ptrace.Span) { manyEvents(sp, 20, 60<<10) }, "name, status, attributes, events and links total"},
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

// manyEvents gives sp n events of one attribute of size bytes each.
func manyEvents(sp ptrace.Span, n, size int) {
	for range n {
		sp.Events().AppendEmpty().Attributes().PutStr("stack", strings.Repeat("x", size))
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

// A scope's name and version are kept with every span of the scope.
func TestValidateRefusesHugeScopes(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(strings.Repeat("s", 2<<20))
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	sp.SetEndTimestamp(sp.StartTimestamp())
	v := Validate(td, Limits{}, time.Now())
	if v.Rejected != 1 || !strings.Contains(v.FirstError, "scope name and version are 2097152 bytes") {
		t.Fatalf("got %+v", v)
	}
}
