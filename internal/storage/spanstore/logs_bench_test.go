package spanstore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
)

// BenchmarkLogStore loads log lines (loadgen.LogLines: about 300 bytes of
// JSON, 8 fields; SKYTRAIL_LOG_BENCH_LINES of them, default 1M) in
// batches of 1,000, a millisecond apart, closes the store and weighs it
// (bytes on disk a line), then reopens it and times searches: a field value
// (order_id, as /api/v1/logs?field=order_id:N does over the last day) and
// the lines of a trace (as /api/v1/traces/{id}/logs does: in the minutes
// the log index gives; "with spans": the half of the traces that also got
// a span, which since the log index changes nothing, as the figures show).
// Reported: p50 and p99 of 200 searches of each kind.
func BenchmarkLogStore(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("SKYTRAIL_LOG_BENCH_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for range b.N {
		dir := b.TempDir()
		s, err := Open(Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		base := time.Now().Add(-time.Duration(n) * time.Millisecond)
		var orders []int64
		var traces []pcommon.TraceID
		var traceTimes []time.Time
		start := time.Now()
		for i := 0; i < n; i += 1000 {
			lines := loadgen.LogLines(1000, uint64(i+1), base.Add(time.Duration(i+1000)*time.Millisecond))
			if err := s.ConsumeLogs(context.Background(), pipeline.LogsOf(loadgen.Logs(lines))); err != nil {
				b.Fatal(err)
			}
			orders = append(orders, lines[i/1000%1000].OrderID)
			traces = append(traces, lines[(i/1000*7)%1000].TraceID)
			traceTimes = append(traceTimes, lines[(i/1000*7)%1000].Time)
		}
		load := time.Since(start)
		_ = s.Close()
		var total int64
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return err
		})
		b.ReportMetric(float64(total)/float64(n), "B/line")
		b.ReportMetric(float64(n)/load.Seconds(), "stored-lines/s")

		s, err = Open(Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		p := func(d []time.Duration, q float64) float64 {
			slices.Sort(d)
			return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
		}
		// The sampled traces' spans, so that their lines are looked for in
		// their window, as for a trace SkyTrail has spans of.
		withSpans := map[pcommon.TraceID]bool{}
		for i := range 200 {
			j := i * 104729 % len(traces)
			if i%2 == 1 || withSpans[traces[j]] {
				continue
			}
			withSpans[traces[j]] = true
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "order")
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			sp.SetTraceID(traces[j])
			sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, byte(i)})
			sp.SetName("POST /orders")
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(traceTimes[j].Add(-time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(traceTimes[j].Add(10 * time.Millisecond)))
			if err := s.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
				b.Fatal(err)
			}
		}
		s.Flush()
		var field, trace, traceSpans []time.Duration
		for i := range 200 {
			order := orders[i*7919%len(orders)]
			t0 := time.Now()
			got, err := s.Logs(ctx, LogQuery{Fields: []FieldFilter{{"order_id", strconv.FormatInt(order, 10)}}, Limit: 100})
			field = append(field, time.Since(t0))
			if err != nil || len(got) == 0 {
				b.Fatalf("order_id:%d: %d lines, %v", order, len(got), err)
			}
			id := traces[i*104729%len(traces)]
			t0 = time.Now()
			tl, err := s.TraceLogs(ctx, []pcommon.TraceID{id}, 1000)
			if withSpans[id] {
				traceSpans = append(traceSpans, time.Since(t0))
			} else {
				trace = append(trace, time.Since(t0))
			}
			if err != nil || len(tl) == 0 {
				b.Fatalf("trace %x: %d lines, %v", id, len(tl), err)
			}
		}
		_ = s.Close()
		b.ReportMetric(p(field, 0.5), "field-p50-ms")
		b.ReportMetric(p(field, 0.99), "field-p99-ms")
		b.ReportMetric(p(trace, 0.5), "trace-p50-ms")
		b.ReportMetric(p(trace, 0.99), "trace-p99-ms")
		b.ReportMetric(p(traceSpans, 0.5), "trace-with-spans-p50-ms")
		b.ReportMetric(p(traceSpans, 0.99), "trace-with-spans-p99-ms")
	}
}
