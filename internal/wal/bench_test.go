package wal_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/wal"
)

// BenchmarkAppend appends 200 KiB records (about 250 spans of OTLP as
// loadgen shapes them) from 8 goroutines at once, flat out, as 8 clients'
// requests: MB/s is what the log takes, p50-ms and p99-ms how long one
// append waits for its write (and fsync), shared with those waiting with it.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		sync time.Duration
	}{{"always", 0}, {"100ms", 100 * time.Millisecond}} {
		b.Run(c.name, func(b *testing.B) {
			l, err := wal.Open(wal.Config{Dir: b.TempDir(), SyncInterval: c.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := make([]byte, 200<<10)
			b.SetBytes(int64(len(rec)))
			var mu sync.Mutex
			var waits []time.Duration
			b.SetParallelism(4) // with GOMAXPROCS 2: 8 appenders
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					a, err := l.Append(context.Background(), rec)
					if err == nil {
						err = a.Durable()
					}
					if err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
					a.Done()
				}
				mu.Lock()
				waits = append(waits, mine...)
				mu.Unlock()
			})
			slices.Sort(waits)
			if n := len(waits); n > 0 {
				b.ReportMetric(float64(waits[(n-1)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(waits[(n*99+99)/100-1].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
