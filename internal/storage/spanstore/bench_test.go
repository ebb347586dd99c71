package spanstore

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/loadgen"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// benchBatches returns n batches of about 1,000 spans each, the traces
// `skytrail loadgen` sends (four services, about ten attributes a span),
// every batch with its own trace and span IDs.
func benchBatches(b *testing.B, n int, base time.Time) []pipeline.Traces {
	b.Helper()
	out := make([]pipeline.Traces, n)
	for i := range out {
		td, err := loadgen.Traces(1000, 4, uint64(i+1), base.Add(time.Duration(i)*100*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		out[i] = pipeline.TracesOf(td)
	}
	return out
}

// BenchmarkDiskPerSpan writes 1M spans of loadgen's traces in 1,000-span
// batches 10 ms apart (100k spans/s), closes the store and weighs its
// directory: bytes on disk a span, trace-ID index included, and the part of
// them that is bloom filters. bench/ingest measures the same at 10M spans
// through a real server.
func BenchmarkDiskPerSpan(b *testing.B) {
	base := time.Now().Add(-time.Hour)
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		s, err := Open(Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		spans := 0
		for j := range 1000 {
			td, err := loadgen.Traces(1000, 4, uint64(j+1), base.Add(time.Duration(j)*10*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
				b.Fatal(err)
			}
			spans += td.SpanCount()
		}
		_ = s.Close()
		var total, bloom int64
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
			if strings.HasPrefix(d.Name(), "bloom.bin") {
				bloom += info.Size()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(total)/float64(spans), "B/span")
		b.ReportMetric(float64(bloom)/float64(spans), "bloom-B/span")
	}
}

func BenchmarkConsumeTraces(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batches := benchBatches(b, 64, time.Now())
	spans := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		td := batches[i%len(batches)]
		if err := s.ConsumeTraces(context.Background(), td); err != nil {
			b.Fatal(err)
		}
		spans += td.SpanCount()
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkGetTrace looks traces up by ID in a store of about 1M spans;
// bench/ingest measures the same through the HTTP API at 10M. "recent":
// written by this process, windows in memory; "reopened": after a restart,
// every lookup goes through the on-disk trace-ID index.
func BenchmarkGetTrace(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	batches := benchBatches(b, 1000, time.Now().Add(-time.Hour))
	var ids []pcommon.TraceID
	for _, td := range batches {
		if err := s.ConsumeTraces(context.Background(), td); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID())
	}
	s.Flush()
	lookups := func(b *testing.B, s *Store) {
		for i := 0; i < b.N; i++ {
			id := ids[i*7919%len(ids)]
			td, err := s.GetTrace(context.Background(), id)
			if err != nil || td.SpanCount() == 0 {
				b.Fatalf("trace %x: %d spans, %v", id, td.SpanCount(), err)
			}
		}
	}
	b.Run("recent", func(b *testing.B) { lookups(b, s) })
	_ = s.Close()
	s, err = Open(Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.Run("reopened", func(b *testing.B) { lookups(b, s) })
}

// BenchmarkEncodeSpans turns loadgen's spans into rows without storing
// them: the encoder's own cost, column budget included, apart from
// logstorage's (which dominates BenchmarkConsumeTraces and varies with its
// background merges).
func BenchmarkEncodeSpans(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batches := benchBatches(b, 16, time.Now())
	e := newRowEncoder(s.columns)
	e.now = time.Now()
	spans := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := batches[i%len(batches)]
		rss := batch.ResourceSpans()
		for j := 0; j < rss.Len(); j++ {
			e.setResource(rss.At(j).Resource(), batch.Resources[j].Service)
			sss := rss.At(j).ScopeSpans()
			for k := 0; k < sss.Len(); k++ {
				e.setScope(sss.At(k).Scope())
				ss := sss.At(k).Spans()
				for l := 0; l < ss.Len(); l++ {
					e.encodeSpan(ss.At(l))
					spans++
				}
			}
		}
		if err := e.admitted.sync(s.columns); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
}
