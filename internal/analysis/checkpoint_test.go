package analysis

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/testutil/testclock"
)

func entrySpans(service string, n int, at time.Time, first byte) pipeline.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		s := spans.AppendEmpty()
		s.SetTraceID(pcommon.TraceID{first, byte(i), byte(i >> 8), 1})
		s.SetSpanID(pcommon.SpanID{first, byte(i), byte(i >> 8), 1})
		s.SetKind(ptrace.SpanKindServer)
		s.SetName("GET /")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i)*time.Millisecond + 3*time.Millisecond)))
	}
	return pipeline.TracesOf(td)
}

// TestCheckpointedTotalsCountEachSpanOnce is the write-ahead log's crash and
// replay as the analysis sees it: the totals a checkpoint wrote hold the
// spans before it, the process dies without writing more, and the spans
// after the checkpoint, replayed into the next process, are counted there
// once: the counters' increase across the crash is every span, once.
func TestCheckpointedTotalsCountEachSpanOnce(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	now := clock.Now()
	clock.Advance(now.Truncate(time.Minute).Add(time.Minute + 40*time.Second).Sub(now))
	dir := t.TempDir()
	minute := clock.Now().Truncate(time.Minute).Add(-time.Minute)

	store, err := metricstore.Open(metricstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first := New(Config{Now: clock.Now, CheckpointedTotals: true}, store)
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = first.ConsumeTraces(context.Background(), entrySpans("replayed", 100, minute, 1))
	snap := first.SnapshotTotals() // the checkpoint's moment
	_ = first.ConsumeTraces(context.Background(), entrySpans("replayed", 40, minute.Add(time.Second), 2))
	clock.Advance(15 * time.Second)
	// A tick of its own does not write the totals: only checkpoints do.
	if err := first.tick(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := first.WriteTotals(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	// The crash: the background work stops, nothing more is written.
	close(first.stop)
	<-first.done
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	clock.Advance(5 * time.Second)
	second := newHarnessIn(t, Config{Now: clock.Now, CheckpointedTotals: true}, dir)
	// The replay: the 40 spans after the checkpoint.
	_ = second.analyser.ConsumeTraces(context.Background(), entrySpans("replayed", 40, minute.Add(time.Second), 2))
	clock.Advance(15 * time.Second)
	if err := second.analyser.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	at := clock.Now()
	if got := second.scalarAt(`sum(increase(skytrail_service_calls_total{service="replayed"}[10m]))`, at); got != 140 {
		t.Errorf("increase across the crash and replay = %g, want 140: every span once", got)
	}
}
