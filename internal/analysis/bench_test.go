package analysis

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/analysis/servicemap"
	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/storage/metricstore"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// realisticBatch is about 1,000 spans of the traces `skytrail loadgen`
// sends, from 10 services (about ten attributes a span).
func realisticBatch() ptrace.Traces {
	td, err := loadgen.Traces(1000, 10, 1, time.Now())
	if err != nil {
		panic(err)
	}
	return td
}

func BenchmarkConsumeTraces(b *testing.B) {
	store, err := metricstore.Open(metricstore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	a := New(Config{}, store)
	td := pipeline.TracesOf(realisticBatch())
	spans := td.SpanCount()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := a.ConsumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
		if i%100 == 99 {
			// Age the joins as the background tick would, so the table
			// stays as small as it would in a running server.
			a.mu.Lock()
			a.joiner.Rotate(func(c servicemap.Call) { a.resolveCall(c, time.Now().UnixMilli()) }, func(e servicemap.Entry) { a.resolveEntry(e, time.Now().UnixMilli()) })
			a.mu.Unlock()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() { _ = a.ConsumeTraces(ctx, td) }))/float64(spans), "allocs/span")
}

// BenchmarkLiveFigures times what the services list asks of the analysis
// (ServiceFigures over the last hour) while 1,000 services' figures are in
// memory, not written yet (the running minute and the one before): the live
// view's share is copying them out under the analysis' lock.
func BenchmarkLiveFigures(b *testing.B) {
	store, err := metricstore.Open(metricstore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	a := New(Config{}, store)
	now := time.Now()
	for i, at := range []time.Time{now.Add(-time.Minute), now} {
		td, err := loadgen.Traces(100_000, 1000, uint64(i+1), at)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	for b.Loop() {
		figs, err := a.ServiceFigures(ctx, now.Add(-time.Hour), now)
		if err != nil || len(figs) < 900 {
			b.Fatalf("%d services' figures, %v", len(figs), err)
		}
	}
}

// BenchmarkFirstDrawAPIs times what the UI's first pages ask of the
// analysis with 500 services (docs/benchmarks.md, issue 15): their
// figures, the service map and every instance over the last hour, after
// thirty minutes of traffic written to the TSDB and the running minute in
// memory. /api/v1/services, /api/v1/topology and /api/v1/instances are
// these calls and a JSON encoding.
func BenchmarkFirstDrawAPIs(b *testing.B) {
	store, err := metricstore.Open(metricstore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	a := New(Config{}, store)
	ctx := context.Background()
	now := time.Now()
	for m := 30; m >= 0; m-- {
		td, err := loadgen.Traces(10_000, 500, uint64(m+1), now.Add(-time.Duration(m)*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if err := a.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
			b.Fatal(err)
		}
		if m == 1 {
			if err := a.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	end := now.Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Hour)
	b.Run("ServiceFigures", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			figs, err := a.ServiceFigures(ctx, start, end)
			if err != nil || len(figs) < 450 {
				b.Fatalf("%d services' figures, %v", len(figs), err)
			}
		}
	})
	b.Run("OneServiceFigures", func(b *testing.B) {
		one := "frontend" // loadgen's first service
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if f, err := a.OneServiceFigures(ctx, one, start, end); err != nil || f == nil {
				b.Fatalf("%s's figures: %v, %v", one, f, err)
			}
		}
	})
	b.Run("Topology", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := a.Topology(ctx, start, end); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AllInstances", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := a.AllInstances(ctx, start, end); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What the figure cache holds after those calls (every family they
	// read, the minutes of the hour that are finished).
	bytes, rows := a.cache.stats()
	if rows > 0 {
		b.Logf("figure cache: %d bytes for %d series-minutes, %.0f B/series-minute", bytes, rows, float64(bytes)/float64(rows))
	}
	// The map's first call after a restart: the figure cache starts
	// empty and reads the hour's finished minutes from the TSDB.
	b.Run("TopologyColdCache", func(b *testing.B) {
		b.ReportAllocs()
		defer cpuPerOp(b)()
		for b.Loop() {
			a.cache = newFigureCache()
			if _, err := a.Topology(ctx, start, end); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuPerOp reports the process' CPU time (user and system) per operation as
// cpu-ns/op, from when it is called to when the returned function is: on a
// shared machine wall time also counts the waits for a CPU.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatalf("reading CPU time: %v", err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	begin := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpu()-begin)/float64(b.N), "cpu-ns/op")
		}
	}
}
