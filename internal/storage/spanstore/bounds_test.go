package spanstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// queryDeadline bounds each query these tests make. A search over a store
// this small takes milliseconds; one that never ends (issue 18: the search
// window grew until its duration overflowed) must fail the test, not hang it.
const queryDeadline = 5 * time.Second

// openBoundsStore is openTestStore that leaves the store open when a query
// is still running at the end of the test: closing logstorage under a
// running query would turn a failed test into a crashed or hung one.
func openBoundsStore(t *testing.T) (*Store, *bool) {
	t.Helper()
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hung := new(bool)
	t.Cleanup(func() {
		if !*hung {
			_ = s.Close()
		}
	})
	return s, hung
}

// within runs fn and fails the test if it has not returned in queryDeadline.
func within[T any](t *testing.T, hung *bool, what string, fn func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(queryDeadline):
		*hung = true
		t.Fatalf("%s still running after %v", what, queryDeadline)
		panic("unreachable")
	}
}

func idPrefixes(ids []pcommon.TraceID) string {
	var out []string
	for _, id := range ids {
		out = append(out, id.String()[:2])
	}
	return strings.Join(out, ",")
}

// Time ranges reaching far beyond what the store can hold (year 1, year
// 3000, the epoch) are answered promptly, as the part of them the store
// holds: the oldest day retention keeps and the day ahead SDK clocks may be.
func TestSearchOverAbsurdRangesEnds(t *testing.T) {
	s, hung := openBoundsStore(t)
	ctx := context.Background()
	now := time.Now()
	for i, at := range []time.Time{
		now.Add(-time.Minute),                 // 01: recent
		now.Add(20 * time.Hour),               // 02: from a clock running ahead
		now.Add(-s.Retention() + 2*time.Hour), // 03: about to expire
	} {
		if err := s.ConsumeTraces(ctx, pipeline.TracesOf(sampleTrace(byte(i+1), at, false))); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()

	year := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 1, 0, time.UTC) }
	for _, tc := range []struct {
		name       string
		start, end time.Time
		want       string
	}{
		{"start year 1", year(1), time.Time{}, "01,03"},
		{"year 1 to year 3000", year(1), year(3000), "02,01,03"},
		{"epoch to year 9999", time.UnixMicro(1), year(9999), "02,01,03"},
		{"past the future window", year(2500), year(3000), ""},
		{"before the epoch", year(1), year(2), ""},
		{"before retention", year(2000), now.Add(-s.Retention() - 48*time.Hour), ""},
		{"end before start", now, now.Add(-time.Hour), ""},
	} {
		q := TraceQuery{Service: "frontend", Start: tc.start, End: tc.end}
		ids, err := within(t, hung, "search "+tc.name, func() ([]pcommon.TraceID, error) { return s.FindTraceIDs(ctx, q) })
		if err != nil || idPrefixes(ids) != tc.want {
			t.Errorf("search %s: found %q (%v), want %q", tc.name, idPrefixes(ids), err, tc.want)
		}
		sums, err := within(t, hung, "summaries "+tc.name, func() ([]TraceSummary, error) { return s.FindTraces(ctx, q) })
		if err != nil || len(sums) != len(ids) {
			t.Errorf("summaries %s: %d (%v), want %d", tc.name, len(sums), err, len(ids))
		}
	}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "frontend")
	rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Minute)))
	rec.Body().SetStr("cart loaded")
	if err := s.ConsumeLogs(ctx, pipeline.LogsOf(ld)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	logs, err := within(t, hung, "logs from year 1 to 3000", func() ([]LogEntry, error) {
		return s.Logs(ctx, LogQuery{Service: "frontend", Start: year(1), End: year(3000)})
	})
	if err != nil || len(logs) != 1 || logs[0].Body != "cart loaded" {
		t.Errorf("logs from year 1 to 3000: %+v (%v), want the one record", logs, err)
	}
	logs, err = within(t, hung, "logs past the future window", func() ([]LogEntry, error) {
		return s.Logs(ctx, LogQuery{Start: year(2500), End: year(3000)})
	})
	if err != nil || len(logs) != 0 {
		t.Errorf("logs past the future window: %+v (%v), want none", logs, err)
	}
}

// A query whose context has ended returns the context's error, saying what
// it was doing, rather than a partial answer (logstorage ends a cancelled
// query early and reports success) or running on.
func TestCancelledQueriesStop(t *testing.T) {
	s, hung := openBoundsStore(t)
	now := time.Now()
	for i := byte(1); i <= 3; i++ {
		if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(sampleTrace(i, now.Add(-time.Duration(i)*time.Minute), false))); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := pcommon.TraceID{1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	forever := TraceQuery{Start: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), End: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for name, call := range map[string]func() (int, error){
		"search": func() (int, error) {
			ids, err := s.FindTraceIDs(ctx, TraceQuery{Service: "frontend"})
			return len(ids), err
		},
		"search year 1..3000": func() (int, error) { ids, err := s.FindTraceIDs(ctx, forever); return len(ids), err },
		"summaries":           func() (int, error) { sums, err := s.FindTraces(ctx, TraceQuery{}); return len(sums), err },
		"trace":               func() (int, error) { td, err := s.GetTrace(ctx, id); return td.SpanCount(), err },
		"traces":              func() (int, error) { td, err := s.GetTraces(ctx, []pcommon.TraceID{id}); return td.SpanCount(), err },
		"services":            func() (int, error) { svcs, err := s.Services(ctx); return len(svcs), err },
		"operations":          func() (int, error) { ops, err := s.Operations(ctx, "frontend"); return len(ops), err },
		"logs":                func() (int, error) { logs, err := s.Logs(ctx, LogQuery{}); return len(logs), err },
	} {
		n, err := within(t, hung, name, call)
		if !errors.Is(err, context.Canceled) || n != 0 {
			t.Errorf("%s with a cancelled context: %d results, error %v; want none and context.Canceled", name, n, err)
		} else if err.Error() == context.Canceled.Error() {
			t.Errorf("%s: error %q does not say what was being done", name, err)
		}
	}
}

// Once a query's context ends, the blocks logstorage still hands over are
// not decoded: a lookup over many blocks stops at the block it was on.
func TestCancelStopsBlockCallbacks(t *testing.T) {
	s, hung := openBoundsStore(t)
	now := time.Now()
	// One service a trace: each its own stream, so its own block.
	for i := byte(1); i <= 8; i++ {
		td := sampleTrace(i, now.Add(-time.Duration(i)*time.Minute), false)
		td.ResourceSpans().At(0).Resource().Attributes().PutStr("service.name", "svc-"+string('a'+rune(i)))
		if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
	q, err := parse("*")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, err = within(t, hung, "run", func() (struct{}, error) {
		return struct{}{}, s.run(ctx, tenantSpans, q, func(*logstorage.DataBlock) {
			calls++
			cancel()
		})
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("query cancelled in its first block: %d blocks handed over, error %v; want 1 and context.Canceled", calls, err)
	}
}
