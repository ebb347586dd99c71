package pipeline_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/wal"
)

// journalModes are the front door without the write-ahead log and with it,
// fsynced before every acknowledgement or every 100 ms.
var journalModes = []struct {
	name string
	wal  bool
	sync time.Duration
}{{"nowal", false, 0}, {"always", true, 0}, {"100ms", true, 100 * time.Millisecond}}

const journalBatchSpans = 500

// newJournalDoor is the front door over a real span store, with a
// write-ahead log when wal is set.
func newJournalDoor(b *testing.B, withWAL bool, sync time.Duration) *pipeline.Pipeline {
	store, err := spanstore.Open(spanstore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	cfg := pipeline.Config{Storage: store.Limits(), Registerer: prometheus.NewRegistry(), MaxInFlightBytes: 1 << 30}
	if withWAL {
		l, err := wal.Open(wal.Config{Dir: b.TempDir(), SyncInterval: sync})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = l.Close() })
		cfg.Journal = l
	}
	return pipeline.New(cfg, pipeline.Consumers{Traces: []pipeline.TracesConsumer{store}})
}

// journalBatch is a request as the OTLP receiver hands it over: decoded,
// with its protobuf bytes.
type journalBatch struct {
	td  ptrace.Traces
	raw []byte
}

func (jb journalBatch) traces() *pipeline.Traces {
	td := ptrace.NewTraces()
	jb.td.CopyTo(td)
	return &pipeline.Traces{Traces: td, Raw: jb.raw}
}

func journalBatches(b *testing.B) []journalBatch {
	batches := make([]journalBatch, 16)
	for i := range batches {
		td, err := loadgen.Traces(journalBatchSpans, 10, uint64(i+1), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		raw, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		batches[i] = journalBatch{td: td, raw: raw}
	}
	return batches
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestJournal measures what the write-ahead log costs the front
// door over a real span store, with loadgen's traces in 500-span batches.
//
// cpu/<mode>: 8 clients flat out; cpu-us/span is the process' CPU time (the
// store's background merges included) a span, steadier than spans/s on a
// shared machine. Run it with -count to interleave the modes.
//
// latency: one front door of each mode side by side, 8 clients sending
// 20,000 spans/s in all, each request to the next door in turn, so a busy
// moment of the machine hits all three alike; <mode>-p50-ms and -p99-ms are
// a request's time in Ingest.
func BenchmarkIngestJournal(b *testing.B) {
	batches := journalBatches(b)
	for _, mode := range journalModes {
		b.Run("cpu/"+mode.name, func(b *testing.B) {
			p := newJournalDoor(b, mode.wal, mode.sync)
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu := cpuTime()
			b.ResetTimer()
			for range 8 {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if _, err := p.Ingest(context.Background(), src, batches[i%int64(len(batches))].traces()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			spans := float64(b.N * journalBatchSpans)
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/spans, "cpu-us/span")
			b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(0, "ns/op")
		})
	}
	b.Run("latency", func(b *testing.B) {
		doors := make([]*pipeline.Pipeline, len(journalModes))
		for i, mode := range journalModes {
			doors[i] = newJournalDoor(b, mode.wal, mode.sync)
		}
		const clients, rate = 8, 20_000.0
		interval := time.Duration(float64(time.Second) * journalBatchSpans * clients / rate)
		var (
			next  atomic.Int64
			mu    sync.Mutex
			waits = make([][]time.Duration, len(doors))
			wg    sync.WaitGroup
		)
		b.ResetTimer()
		for c := range clients {
			wg.Go(func() {
				mine := make([][]time.Duration, len(doors))
				tick := time.Now().Add(time.Duration(c) * interval / clients)
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					time.Sleep(time.Until(tick))
					tick = tick.Add(interval)
					t := batches[i%int64(len(batches))].traces()
					d := int(i) % len(doors)
					start := time.Now()
					if _, err := doors[d].Ingest(context.Background(), src, t); err != nil {
						b.Error(err)
						return
					}
					mine[d] = append(mine[d], time.Since(start))
				}
				mu.Lock()
				for d := range doors {
					waits[d] = append(waits[d], mine[d]...)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		b.StopTimer()
		for d, mode := range journalModes {
			w := waits[d]
			slices.Sort(w)
			if n := len(w); n > 0 {
				b.ReportMetric(float64(w[(n-1)/2].Microseconds())/1000, mode.name+"-p50-ms")
				b.ReportMetric(float64(w[(n*99+99)/100-1].Microseconds())/1000, mode.name+"-p99-ms")
			}
		}
		b.ReportMetric(0, "ns/op")
	})
}
