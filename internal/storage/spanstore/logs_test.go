package spanstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/logfields"
	"github.com/skytrail/skytrail/internal/pipeline"
)

// shopLogs is a batch of JSON-ish log lines as the log shippers' decoders
// make them: fields as attributes, normalised as the front door does.
func shopLogs(t *testing.T, at time.Time, lines ...map[string]any) plog.Logs {
	t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("host.name", "web-1")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i, l := range lines {
		rec := recs.AppendEmpty()
		if err := rec.Attributes().FromRaw(l); err != nil {
			t.Fatal(err)
		}
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i))))
		if _, ok := l["ts"]; !ok {
			rec.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
		}
		logfields.Normalize(rec)
	}
	return ld
}

const logTrace = "4bf92f3577b34da6a3ce929d0e0e4736"

func TestLogsSearchByFieldTextSeverityAndTrace(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	ld := shopLogs(t, now.Add(-time.Minute),
		map[string]any{"msg": "order placed", "level": "info", "order_id": 1001, "trace_id": logTrace, "span_id": "00f067aa0ba902b7"},
		map[string]any{"msg": "Payment DECLINED for card", "level": "error", "order_id": "1001", "trace_id": logTrace},
		map[string]any{"msg": "order placed", "level": "info", "order_id": 1002},
		map[string]any{"msg": "odd field names", "service": "not the stream", "_stream": "x", "attr.y": "z", "quote": `a"b|c:d` + "\n"},
	)
	if err := s.ConsumeLogs(ctx, pipeline.LogsOf(ld)); err != nil {
		t.Fatal(err)
	}
	s.Flush()

	find := func(q LogQuery) []LogEntry {
		t.Helper()
		got, err := s.Logs(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := find(LogQuery{Fields: []FieldFilter{{"order_id", "1001"}}})
	if len(got) != 2 || got[0].Body != "Payment DECLINED for card" || got[1].Body != "order placed" {
		t.Fatalf("order_id:1001 found %+v, want the two lines of order 1001, newest first", got)
	}
	if l := got[1]; l.TraceID != logTrace || l.SpanID != "00f067aa0ba902b7" || l.Severity != "info" || l.SeverityNumber != 9 ||
		l.Attributes["order_id"] != "1001" || l.Service != "checkout" || l.Resource["host.name"] != "web-1" || len(l.Attributes) != 1 {
		t.Errorf("line read back as %+v", l)
	}
	if got := find(LogQuery{Text: "payment declined"}); len(got) != 1 {
		t.Errorf("text search found %d lines, want 1", len(got))
	}
	if got := find(LogQuery{MinSeverity: plog.SeverityNumberWarn}); len(got) != 1 || got[0].Severity != "error" {
		t.Errorf("severity search found %+v", got)
	}
	id, _ := hex.DecodeString(logTrace)
	if got := find(LogQuery{TraceIDs: []pcommon.TraceID{pcommon.TraceID(id)}}); len(got) != 2 {
		t.Errorf("trace search found %d lines, want 2", len(got))
	}
	if got := find(LogQuery{Fields: []FieldFilter{{"host.name", "web-1"}, {"order_id", "1002"}}}); len(got) != 1 {
		t.Errorf("resource and field search found %d lines, want 1", len(got))
	}
	// Names the row uses itself are kept apart, and read back as given.
	odd := find(LogQuery{Fields: []FieldFilter{{"service", "not the stream"}}})
	if len(odd) != 1 || odd[0].Attributes["_stream"] != "x" || odd[0].Attributes["attr.y"] != "z" || odd[0].Service != "checkout" {
		t.Fatalf("odd names read back as %+v", odd)
	}
	// A value with quotes, a pipe, a colon and a newline is matched literally.
	if got := find(LogQuery{Fields: []FieldFilter{{"quote", `a"b|c:d` + "\n"}}}); len(got) != 1 {
		t.Errorf("literal value found %d lines, want 1", len(got))
	}
	for _, hostile := range []string{`a"b`, `a" or *`, "*", `a" | delete`, "a\nb"} {
		if got := find(LogQuery{Fields: []FieldFilter{{"quote", hostile}}}); len(got) != 0 {
			t.Errorf("value %q found %d lines, want none", hostile, len(got))
		}
	}
	for _, bad := range []string{"", "order*", strings.Repeat("k", 200), "a\nb"} {
		if _, err := s.Logs(ctx, LogQuery{Fields: []FieldFilter{{bad, "1"}}}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("field name %q: %v, want ErrBadQuery", bad, err)
		}
	}
	// The trace's lines, oldest first.
	tl, err := s.TraceLogs(ctx, []pcommon.TraceID{pcommon.TraceID(id)}, 10)
	if err != nil || len(tl) != 2 || tl[0].Body != "order placed" {
		t.Errorf("TraceLogs = %+v, %v", tl, err)
	}
}

func TestLogsPagesAndLogsQL(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	var lines []map[string]any
	for i := range 25 {
		lines = append(lines, map[string]any{"msg": fmt.Sprintf("line %d", i), "n": i})
	}
	if err := s.ConsumeLogs(ctx, pipeline.LogsOf(shopLogs(t, now.Add(-time.Minute), lines...))); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	page, err := s.Logs(ctx, LogQuery{Limit: 10})
	if err != nil || len(page) != 10 || page[0].Body != "line 24" {
		t.Fatalf("first page %v %v", page, err)
	}
	next, err := s.Logs(ctx, LogQuery{Limit: 10, End: page[9].Time, Skip: 1})
	if err != nil || len(next) != 10 || next[0].Body != "line 14" {
		t.Fatalf("second page starts at %+v, %v; want line 14", next, err)
	}

	var rows [][]LogsQLField
	err = s.LogsQL(ctx, LogsQLQuery{Query: `n:>=20 | sort by (n) | fields _msg, n`}, func(row []LogsQLField) {
		rows = append(rows, append([]LogsQLField(nil), row...))
	})
	if err != nil || len(rows) != 5 {
		t.Fatalf("LogsQL: %d rows, %v", len(rows), err)
	}
	// Spans are out of its reach: a span store's span never shows.
	if err := s.ConsumeTraces(ctx, pipeline.TracesOf(sampleTrace(1, now.Add(-time.Minute), false))); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	rows = rows[:0]
	if err := s.LogsQL(ctx, LogsQLQuery{Query: `name:*`}, func(row []LogsQLField) { rows = append(rows, row) }); err != nil || len(rows) != 0 {
		t.Errorf("LogsQL reached spans: %d rows, %v", len(rows), err)
	}
	if err := s.LogsQL(ctx, LogsQLQuery{Query: `foo | bar(`}, func([]LogsQLField) {}); !errors.Is(err, ErrBadQuery) {
		t.Errorf("a broken query: %v, want ErrBadQuery", err)
	}
}

// TestTraceLogsIndexAtTheRetentionsEdge: a line stamped near the oldest
// time the store keeps, and one a day ahead, are found by their trace
// after a restart (the log index on disk, not in memory): their index rows
// are stamped inside the days logstorage accepts (the end of the line's
// day, never older than the line), and a row refused there would leave
// the line unfindable by trace.
func TestTraceLogsIndexAtTheRetentionsEdge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ahead := pcommon.TraceID{16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "edge")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for _, l := range []struct {
		id pcommon.TraceID
		at time.Time
	}{{old, now.Add(-22 * time.Hour)}, {ahead, now.Add(22 * time.Hour)}} {
		rec := recs.AppendEmpty()
		rec.SetTraceID(l.id)
		rec.SetTimestamp(pcommon.NewTimestampFromTime(l.at))
		rec.Body().SetStr("line of " + l.id.String())
	}
	if err := s.ConsumeLogs(t.Context(), pipeline.LogsOf(ld)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{Dir: dir, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, id := range []pcommon.TraceID{old, ahead} {
		got, err := s.TraceLogs(t.Context(), []pcommon.TraceID{id}, 10)
		if err != nil || len(got) != 1 || got[0].Body != "line of "+id.String() {
			t.Errorf("TraceLogs(%s) after a restart = %+v, %v; want its one line", id, got, err)
		}
	}
}
