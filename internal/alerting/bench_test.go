package alerting

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// BenchmarkDefaultRules evaluates every default rule once per iteration
// over an hour of figures (a sample a minute) of 1,000 services (5 endpoints and 2
// instances each): the work of one evaluation interval.
//
//	go test -run x -bench DefaultRules -benchtime 20x ./internal/alerting/
func BenchmarkDefaultRules(b *testing.B) {
	store := openStore(b, b.TempDir())
	b.Cleanup(func() { _ = store.Close() })
	f := DefaultFigureSeries
	now := time.Now().Truncate(time.Minute)
	app := store.AppenderV2(context.Background())
	for svc := range 1000 {
		service := fmt.Sprintf("svc-%04d", svc)
		for m := 60; m >= 0; m-- {
			ts := now.Add(-time.Duration(m) * time.Minute).UnixMilli()
			total := float64(600 * (61 - m))
			add := func(name string, v float64, pairs ...string) {
				ls := labels.FromStrings(append([]string{labels.MetricName, name, "service", service}, pairs...)...)
				if _, err := app.Append(0, ls, 0, ts, v, nil, nil, storage.AOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			add(f.ServiceCalls, total)
			add(f.ServiceErrors, total/100)
			if _, err := app.Append(0, labels.FromStrings(labels.MetricName, f.ServiceDuration, "service", service), 0, ts, 0, latencyHistogram(0.05, uint64(total)), nil, storage.AOptions{}); err != nil {
				b.Fatal(err)
			}
			for e := range 5 {
				ep := fmt.Sprintf("GET /e%d", e)
				add(f.EndpointCalls, total/5, "endpoint", ep)
				add(f.EndpointErrors, total/500, "endpoint", ep)
				if _, err := app.Append(0, labels.FromStrings(labels.MetricName, f.EndpointDuration, "endpoint", ep, "service", service), 0, ts, 0, latencyHistogram(0.05, uint64(total/5)), nil, storage.AOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 2 {
				add(f.InstanceCalls, total/2, "instance", fmt.Sprintf("%s-%d", service, i))
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	exprs := defaultExprs(b, DefaultThresholds())
	at := now.Add(time.Second)
	b.ResetTimer()
	for b.Loop() {
		for name, e := range exprs {
			if _, err := store.InstantQuery(context.Background(), e, at); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
	}
}
