package spanstore

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// Sync makes every span and log record written so far durable: the rows
// logstorage buffers become parts, and its in-memory parts are written to
// files and fsynced. logstorage flushes in-memory parts on demand only when
// it snapshots a partition, so Sync snapshots every partition and deletes
// the snapshots at once (they are hard links: cheap). The write-ahead log
// checkpoints on it. While the disk is too full it does nothing and fails,
// so the log keeps its records.
func (s *Store) Sync() error {
	if s.remote != nil {
		// Every row was acknowledged by VictoriaLogs before ConsumeTraces
		// returned; keeping it is VictoriaLogs' part (docs/cluster.md).
		return nil
	}
	if err := s.disk.Err(); err != nil {
		return fmt.Errorf("flush span storage to disk: %w", err)
	}
	s.storage.DebugFlush()
	for _, path := range s.storage.PartitionSnapshotMustCreate("") {
		if err := s.storage.PartitionSnapshotDelete(path); err != nil {
			return fmt.Errorf("flush span storage to disk: delete the snapshot that flushed it: %w", err)
		}
	}
	return nil
}

// ReplayTraces writes the spans of td the store does not hold yet
// (pipeline.TracesReplayer). A span acknowledged after the write-ahead
// log's last checkpoint is replayed at start, but logstorage may have
// flushed it to disk on its own before the process died: it is looked up by
// trace and span ID and not written twice.
func (s *Store) ReplayTraces(ctx context.Context, td pipeline.Traces) error {
	type key struct {
		trace pcommon.TraceID
		span  pcommon.SpanID
	}
	var ids []pcommon.TraceID
	seen := map[pcommon.TraceID]bool{}
	forEachSpan(td.Traces, func(sp ptrace.Span) {
		if id := sp.TraceID(); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	})
	held, err := s.getTraces(ctx, ids, []string{fieldTraceID, fieldSpan})
	if err != nil {
		return fmt.Errorf("replay spans: look up which are stored already: %w", err)
	}
	if held.SpanCount() > 0 {
		have := make(map[key]bool, held.SpanCount())
		forEachSpan(held, func(sp ptrace.Span) { have[key{sp.TraceID(), sp.SpanID()}] = true })
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				sss.At(j).Spans().RemoveIf(func(sp ptrace.Span) bool { return have[key{sp.TraceID(), sp.SpanID()}] })
			}
		}
	}
	if td.SpanCount() == 0 {
		return nil
	}
	return s.ConsumeTraces(ctx, td)
}

func forEachSpan(td ptrace.Traces, fn func(ptrace.Span)) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				fn(spans.At(k))
			}
		}
	}
}

var _ pipeline.TracesReplayer = (*Store)(nil)
