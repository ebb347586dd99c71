package spanstore

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
)

// BenchmarkLogStore loads log lines (loadgen.LogLines: about 300 bytes of
// JSON, 8 fields; SKYTRAIL_LOG_BENCH_LINES of them, default 1M) in
// batches of 1,000, a millisecond apart, closes the store and weighs it
// (bytes on disk a line), then reopens it and times searches, one kind
// after the other: 200 of a field value ("field": order_id, as
// /api/v1/logs?field=order_id:N does over the last day), 20 of a
// service's newest 100 lines ("service": what the Logs page opens with),
// 200 of the lines of a trace ("trace": as /api/v1/traces/{id}/logs
// does) and the same 200 in the log index alone ("trace-index"), with the
// engine's flags as the program sets them (shippedFlags). Reported for
// each kind: p50 and p99,
// the process' CPU time (user+system) a search, and the blocks the engine
// read a search; and the load average (1 minute) at the end, since this
// machine is shared and wall-clock latencies wait for a core.
//
// SKYTRAIL_LOG_BENCH_DIR keeps the loaded store in that directory and, on
// the next run with the same number of lines, searches it without loading
// again (to iterate on the searches); SKYTRAIL_LOG_BENCH_CPUPROFILE=path
// writes CPU profiles of the searches alone, path.<kind>.
// The searches begin once the engine has finished merging the parts that
// closing and reopening the store left (waitMerges).
func BenchmarkLogStore(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("SKYTRAIL_LOG_BENCH_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	shippedFlags(b)
	for range b.N {
		dir, base, loaded := benchLogDir(b, n)
		var orders []int64
		var traces []pcommon.TraceID
		if !loaded {
			base = time.Now().Add(-time.Duration(n) * time.Millisecond)
		}
		s, err := Open(Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < n; i += 1000 {
			lines := loadgen.LogLines(1000, uint64(i+1), base.Add(time.Duration(i+1000)*time.Millisecond))
			if !loaded {
				if err := s.ConsumeLogs(context.Background(), pipeline.LogsOf(loadgen.Logs(lines))); err != nil {
					b.Fatal(err)
				}
			}
			orders = append(orders, lines[i/1000%1000].OrderID)
			traces = append(traces, lines[(i/1000*7)%1000].TraceID)
		}
		load := time.Since(start)
		_ = s.Close()
		if !loaded {
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
			benchLogDirLoaded(b, dir, n, base)
		}

		s, err = Open(Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		s.Flush()
		waitMerges(s)
		ctx := context.Background()
		search := func(name string, count int, one func(i int) (int, error)) {
			if path := os.Getenv("SKYTRAIL_LOG_BENCH_CPUPROFILE"); path != "" {
				f, err := os.Create(path + "." + name)
				if err != nil {
					b.Fatal(err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
			var took []time.Duration
			stats := &logstorage.QueryStats{}
			s.queryStats = stats
			cpu0 := processCPU()
			for i := range count {
				t0 := time.Now()
				got, err := one(i)
				took = append(took, time.Since(t0))
				if err != nil || got == 0 {
					b.Fatalf("%s search %d: %d lines, %v", name, i, got, err)
				}
			}
			cpu := processCPU() - cpu0
			s.queryStats = nil
			slices.Sort(took)
			p := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), name+"-p50-ms")
			b.ReportMetric(p(0.99), name+"-p99-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(took)), name+"-cpu-ms/op")
			b.ReportMetric(float64(stats.BlocksProcessed)/float64(len(took)), name+"-blocks/op")
			b.Logf("%s, %d searches: %+v", name, count, *stats)
		}
		search("field", 200, func(i int) (int, error) {
			order := orders[i*7919%len(orders)]
			got, err := s.Logs(ctx, LogQuery{Fields: []FieldFilter{{"order_id", strconv.FormatInt(order, 10)}}, Limit: 100})
			return len(got), err
		})
		// What the Logs page shows first: a service's newest 100 lines.
		search("service", 20, func(i int) (int, error) {
			got, err := s.Logs(ctx, LogQuery{Service: []string{"frontend", "order", "inventory", "payment"}[i%4], Limit: 100})
			return len(got), err
		})
		search("trace", 200, func(i int) (int, error) {
			got, err := s.TraceLogs(ctx, []pcommon.TraceID{traces[i*104729%len(traces)]}, 1000)
			return len(got), err
		})
		// The first step of the lookup alone: the log index.
		search("trace-index", 200, func(i int) (int, error) {
			got, err := s.logMinutes(ctx, []pcommon.TraceID{traces[i*104729%len(traces)]})
			return len(got), err
		})
		_ = s.Close()
		b.ReportMetric(loadAverage(), "load1")
	}
}

// shippedFlags sets the global flags the program sets for the engine
// (GlobalFlags: part files read with pread, not mmap), so that the
// searches cost what they cost in SkyTrail, and restores them at the end.
func shippedFlags(b *testing.B) {
	for name, value := range GlobalFlags {
		f := flag.Lookup(name)
		if f == nil {
			b.Fatalf("no flag %q", name)
		}
		old := f.Value.String()
		if err := flag.Set(name, value); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = flag.Set(name, old) })
	}
}

// waitMerges waits (up to two minutes) until the engine merges no parts,
// such as the ones closing the store left behind, so that the CPU time
// the searches are charged is theirs.
func waitMerges(s *Store) {
	quiet := 0
	for deadline := time.Now().Add(2 * time.Minute); quiet < 3 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		var ss logstorage.StorageStats
		s.storage.UpdateStats(&ss)
		if ss.ActiveInmemoryMerges+ss.ActiveSmallMerges+ss.ActiveBigMerges == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// benchLogDir is the store's directory: a fresh one, or
// SKYTRAIL_LOG_BENCH_DIR; loaded says that directory holds n lines from an
// earlier run, loaded at base.
func benchLogDir(b *testing.B, n int) (dir string, base time.Time, loaded bool) {
	dir = os.Getenv("SKYTRAIL_LOG_BENCH_DIR")
	if dir == "" {
		return b.TempDir(), time.Time{}, false
	}
	var ln, ns int64
	if mark, err := os.ReadFile(filepath.Join(dir, "bench-loaded")); err == nil {
		if _, err := fmt.Sscan(string(mark), &ln, &ns); err == nil && ln == int64(n) {
			return dir, time.Unix(0, ns), true
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	return dir, time.Time{}, false
}

// benchLogDirLoaded marks SKYTRAIL_LOG_BENCH_DIR as holding n lines loaded
// at base.
func benchLogDirLoaded(b *testing.B, dir string, n int, base time.Time) {
	if os.Getenv("SKYTRAIL_LOG_BENCH_DIR") == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-loaded"), fmt.Appendf(nil, "%d %d\n", n, base.UnixNano()), 0o644); err != nil {
		b.Fatal(err)
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the machine's load average over the last minute, 0 if
// unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

// BenchmarkConsumeLogs stores batches of 1,000 log lines (loadgen.LogLines,
// as an OTLP batch) into a store in a temporary directory: the storage
// engine's share of a line's ingest cost, in CPU time (the engine's own
// background work included, as a flat-out ingest pays it).
func BenchmarkConsumeLogs(b *testing.B) {
	s, err := Open(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := time.Now()
	var batches []pipeline.Logs
	for i := range 32 {
		batches = append(batches, pipeline.LogsOf(loadgen.Logs(loadgen.LogLines(1000, uint64(i+1), base))))
	}
	lines := 0
	cpu := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ld := batches[i%len(batches)]
		if err := s.ConsumeLogs(context.Background(), ld); err != nil {
			b.Fatal(err)
		}
		lines += ld.LogRecordCount()
	}
	s.storage.DebugFlush()
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/1e3/float64(lines), "cpu-us/line")
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
