package spanstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// A service that starts instance after instance gets maxInstanceStreams log
// streams of its own; the instances beyond share one, and lose nothing.
func TestInstanceStreamsAreBounded(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	const instances = maxInstanceStreams + 20
	td := ptrace.NewTraces()
	start := time.Now().Add(-time.Minute)
	for i := range instances {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "lambda")
		rs.Resource().Attributes().PutStr("faas.instance", fmt.Sprintf("i-%04d", i))
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, 2, byte(i >> 8), byte(i), 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, byte(i >> 8), byte(i)})
		sp.SetSpanID(pcommon.SpanID{1, byte(i >> 8), byte(i), 1, 1, 1, 1, 1})
		sp.SetName("invoke")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	}
	if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
		t.Fatal(err)
	}
	s.Flush()

	q, err := parse("* | uniq by (_stream)")
	if err != nil {
		t.Fatal(err)
	}
	streams := 0
	if err := s.run(context.Background(), tenantSpans, q, func(db *logstorage.DataBlock) { streams += db.RowsCount() }); err != nil {
		t.Fatal(err)
	}
	if streams != maxInstanceStreams+1 {
		t.Errorf("%d instances made %d log streams, want %d", instances, streams, maxInstanceStreams+1)
	}

	// The last instance's span, in the shared stream, comes back whole.
	last := instances - 1
	got, err := s.GetTrace(context.Background(), pcommon.TraceID{1, 2, byte(last >> 8), byte(last), 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, byte(last >> 8), byte(last)})
	if err != nil || got.SpanCount() != 1 {
		t.Fatalf("last instance's trace: %d spans, %v", got.SpanCount(), err)
	}
	if v, _ := got.ResourceSpans().At(0).Resource().Attributes().Get("faas.instance"); v.Str() != fmt.Sprintf("i-%04d", last) {
		t.Errorf("last instance's resource: %v", got.ResourceSpans().At(0).Resource().Attributes().AsRaw())
	}
	for _, i := range []int{0, last} {
		q := TraceQuery{Service: "lambda", Attributes: map[string]string{"faas.instance": fmt.Sprintf("i-%04d", i)}, Start: start.Add(-time.Minute)}
		if sums, err := s.FindTraces(context.Background(), q); err != nil || len(sums) != 1 {
			t.Errorf("search for instance %d found %d traces (%v), want 1", i, len(sums), err)
		}
	}
}
