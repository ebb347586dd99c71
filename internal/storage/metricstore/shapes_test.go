package metricstore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// BenchmarkSeriesShapes measures what each shape the analysis could write
// its figures in costs: series, samples and bytes on disk (one compacted
// block) for two hours of a system of 20 services (2 instances and 20
// endpoints each, 40 edges, 12 calls a minute to each endpoint), and the
// cost of a Grafana panel's range query over the last hour of it. The
// shapes:
//
//   - minute: the per-minute series (4 floats and a gauge native histogram
//     a series, one sample a minute);
//   - counters15s / counters5s: the running totals (4 counters and a counter
//     native histogram), written every 15 s / 5 s;
//   - classic15s: the running totals with the histogram stored as 20 classic
//     _bucket series plus _count and _sum, every 15 s.
//
// go test -run '^$' -bench SeriesShapes -benchtime 1x ./internal/storage/metricstore/
// (docs/metrics.md has the numbers and the choice they led to.)
func BenchmarkSeriesShapes(b *testing.B) {
	const (
		services, instances, endpoints = 20, 2, 20
		perEndpointMinute              = 12
		hours                          = 2
	)
	// Two hours from a block boundary: one block.
	start := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour).UnixMilli()
	end := start + hours*3600_000
	type shape struct {
		name  string
		store *Store
		every int64 // ms between writes of the totals; 0: the per-minute series
		class bool  // the histogram as classic buckets
	}
	shapes := []*shape{{name: "minute"}, {name: "counters15s", every: 15_000}, {name: "counters5s", every: 5_000}, {name: "classic15s", every: 15_000, class: true}}
	for _, s := range shapes {
		st, err := Open(Config{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		if !s.class {
			st.ServeClassic(red.CounterHistograms()...)
		}
		s.store = st
	}
	rng := rand.New(rand.NewPCG(1, 2))
	minutes := red.NewMinutes(red.NewTotals(20_000))
	observe := func(w *red.Window, svc, ep int) {
		seconds := math.Exp(rng.NormFloat64()*0.8) * 0.05
		failed := rng.Float64() < 0.02
		name := fmt.Sprintf("svc-%02d", svc)
		w.Service(name).Observe(seconds, failed, 0.5)
		w.Instance(red.Pair{Service: name, Name: fmt.Sprintf("%s-%d", name, ep%instances)}).Observe(seconds, failed, 0.5)
		w.Endpoint(red.Pair{Service: name, Name: fmt.Sprintf("GET /api/%d", ep)}).Observe(seconds, failed, 0.5)
		if ep < 2 {
			e := red.Edge{Client: name, Server: fmt.Sprintf("svc-%02d", (svc+1+ep)%services), ClientType: red.NodeService, ServerType: red.NodeService}
			w.ClientEdge(e).Observe(seconds, failed, 0)
			w.ServerEdge(e).Observe(seconds*0.9, failed, 0)
		}
	}
	commit := func(app interface{ Commit() error }) {
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	var snap []red.CounterSample
	cum := make([]float64, len(ClassicBounds))
	for t := start; t < end; t += 5_000 {
		// The calls of these 5 s, spread over the endpoints.
		w := minutes.For(t, t)
		for range services * endpoints * perEndpointMinute / 12 {
			observe(w, rng.IntN(services), rng.IntN(endpoints))
		}
		now := t + 5_000
		for _, s := range shapes {
			app := s.store.Appender(context.Background())
			switch {
			case s.every == 0 && now%60_000 == 0:
				for _, w := range minutes.Due(now, 0, false) {
					if _, _, err := w.Append(app); err != nil {
						b.Fatal(err)
					}
				}
			case s.every > 0 && now%s.every == 0:
				snap = minutes.Totals.Snapshot(snap[:0])
				if !s.class {
					if _, _, err := red.AppendCounters(app, snap, now); err != nil {
						b.Fatal(err)
					}
					break
				}
				for i := range snap {
					c := &snap[i]
					for _, d := range c.Family.Counters {
						kv := append([]string{labels.MetricName, d.Name}, c.KV()...)
						base := labels.FromStrings(kv...)
						if !d.Histogram() {
							if _, err := app.Append(0, base, now, d.Value(&c.Stats)); err != nil {
								b.Fatal(err)
							}
							continue
						}
						bucketCounts(c.Stats.Latency.Counter().ToFloat(nil), cum)
						for j, le := range classicLe {
							lb := labels.NewBuilder(base).Set(labels.MetricName, d.Name+"_bucket").Set(labels.BucketLabel, le).Labels()
							if _, err := app.Append(0, lb, now, cum[j]); err != nil {
								b.Fatal(err)
							}
						}
						for _, part := range []struct {
							suffix string
							v      float64
						}{{"_count", float64(c.Stats.Latency.Count)}, {"_sum", c.Stats.Latency.Sum}} {
							lb := labels.NewBuilder(base).Set(labels.MetricName, d.Name+part.suffix).Labels()
							if _, err := app.Append(0, lb, now, part.v); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			}
			commit(app)
		}
	}
	for _, s := range shapes {
		if err := s.store.db.CompactHead(tsdb.NewRangeHead(s.store.db.Head(), start, end-1)); err != nil {
			b.Fatal(err)
		}
		var series, samples uint64
		var chunkBytes, indexBytes int64
		for _, blk := range s.store.db.Blocks() {
			m := blk.Meta()
			series += m.Stats.NumSeries
			samples += m.Stats.NumSamples
			chunkBytes += dirSize(b, filepath.Join(blk.Dir(), "chunks"))
			indexBytes += dirSize(b, filepath.Join(blk.Dir(), "index"))
		}
		b.Run("storage/"+s.name, func(b *testing.B) {
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(samples)/hours, "samples/h")
			b.ReportMetric(float64(chunkBytes)/float64(samples), "chunk-bytes/sample")
			b.ReportMetric(float64(chunkBytes+indexBytes)/hours/1e6, "MB/h")
		})
	}
	// A Grafana panel: p99 of each service over the last hour, a point a minute.
	queries := []struct {
		shape, name, expr string
	}{
		{"minute", "p99 sum_over_time", `histogram_quantile(0.99, sum by (service) (sum_over_time(skytrail_service_duration_seconds:increase1m[5m])))`},
		{"counters15s", "p99 rate native", `histogram_quantile(0.99, sum by (service) (rate(skytrail_service_duration_seconds[5m])))`},
		{"counters15s", "p99 rate derived _bucket", `histogram_quantile(0.99, sum by (le, service) (rate(skytrail_service_duration_seconds_bucket[5m])))`},
		{"classic15s", "p99 rate stored _bucket", `histogram_quantile(0.99, sum by (le, service) (rate(skytrail_service_duration_seconds_bucket[5m])))`},
		{"minute", "calls/min sum_over_time", `sum by (service) (sum_over_time(skytrail_service_calls:increase1m[1m]))`},
		{"counters15s", "calls/min rate", `sum by (service) (rate(skytrail_service_calls_total[1m])) * 60`},
	}
	for _, q := range queries {
		var st *Store
		for _, s := range shapes {
			if s.name == q.shape {
				st = s.store
			}
		}
		b.Run("query/"+q.shape+"/"+q.name, func(b *testing.B) {
			var samples int64
			for b.Loop() {
				qry, err := st.Engine().NewRangeQuery(context.Background(), st.Queryable(), nil, q.expr,
					time.UnixMilli(end-3600_000), time.UnixMilli(end), time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				res := qry.Exec(context.Background())
				if res.Err != nil {
					b.Fatal(res.Err)
				}
				if m, err := res.Matrix(); err != nil || len(m) != services {
					b.Fatalf("%s: %d series, %v; want %d", q.expr, len(m), err, services)
				}
				samples = qry.Stats().Samples.TotalSamples
				qry.Close()
			}
			b.ReportMetric(float64(samples), "samples-read")
		})
	}
}

func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
