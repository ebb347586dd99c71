package pipeline_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/wal"
)

// BenchmarkIngestJournal is the front door over a real span store, without
// the write-ahead log and with it (fsync before every acknowledgement, or
// every 100 ms): 8 clients send 500-span batches of loadgen's traces, flat
// out (spans/s, the throughput the log costs) and paced at 20,000 spans/s
// (p50-ms, p99-ms: what the log adds to a request's latency below
// saturation).
func BenchmarkIngestJournal(b *testing.B) {
	const clients, batchSpans = 8, 500
	batches := make([]ptrace.Traces, 16)
	for i := range batches {
		td, err := loadgen.Traces(batchSpans, 10, uint64(i+1), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		batches[i] = td
	}
	for _, pace := range []struct {
		name string
		rate float64 // spans/s, 0: flat out
	}{{"flat", 0}, {"paced20k", 20_000}} {
		for _, mode := range []struct {
			name string
			wal  bool
			sync time.Duration
		}{{"nowal", false, 0}, {"always", true, 0}, {"100ms", true, 100 * time.Millisecond}} {
			b.Run(pace.name+"/"+mode.name, func(b *testing.B) {
				store, err := spanstore.Open(spanstore.Config{Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				defer store.Close()
				cfg := pipeline.Config{Storage: store.Limits(), Registerer: prometheus.NewRegistry(), MaxInFlightBytes: 1 << 30}
				if mode.wal {
					l, err := wal.Open(wal.Config{Dir: b.TempDir(), SyncInterval: mode.sync})
					if err != nil {
						b.Fatal(err)
					}
					defer l.Close()
					cfg.Journal = l
				}
				p := pipeline.New(cfg, pipeline.Consumers{Traces: []pipeline.TracesConsumer{store}})
				var (
					next  atomic.Int64
					mu    sync.Mutex
					waits []time.Duration
					wg    sync.WaitGroup
				)
				interval := time.Duration(0)
				if pace.rate > 0 {
					interval = time.Duration(float64(time.Second) * batchSpans * clients / pace.rate)
				}
				b.ResetTimer()
				for c := range clients {
					wg.Go(func() {
						var mine []time.Duration
						tick := time.Now().Add(time.Duration(c) * interval / clients)
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							if interval > 0 {
								time.Sleep(time.Until(tick))
								tick = tick.Add(interval)
							}
							td := ptrace.NewTraces()
							batches[i%int64(len(batches))].CopyTo(td)
							start := time.Now()
							if _, err := p.Ingest(context.Background(), src, &pipeline.Traces{Traces: td}); err != nil {
								b.Error(err)
								return
							}
							mine = append(mine, time.Since(start))
						}
						mu.Lock()
						waits = append(waits, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N*batchSpans)/b.Elapsed().Seconds(), "spans/s")
				slices.Sort(waits)
				if n := len(waits); n > 0 {
					b.ReportMetric(float64(waits[(n-1)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(waits[(n*99+99)/100-1].Microseconds())/1000, "p99-ms")
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
