package wal_test

import (
	"context"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/wal"
)

// BenchmarkAppend appends 200 KiB records (about 500 spans of OTLP) from
// 8 goroutines at once, as 8 clients' requests: ns/op is the time a batch
// waits for its write and fsync, shared by those waiting with it.
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
			b.SetParallelism(4) // with GOMAXPROCS 2: 8 appenders
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					done, err := l.Append(context.Background(), rec)
					if err != nil {
						b.Error(err)
						return
					}
					done()
				}
			})
		})
	}
}
