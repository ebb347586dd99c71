package metricstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/skytrail/skytrail/internal/analysis/red"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/testutil/victoriametrics"
)

// benchServices and benchEndpoints size a minute of figures: 20 services
// of 20 endpoints, each with calls, errors, two Apdex counts and a latency
// histogram (2,100 series a minute with the services' own).
const benchServices, benchEndpoints = 20, 20

func benchLatency() *red.Histogram {
	h := &red.Histogram{}
	for i := range 60 {
		h.Observe(0.001 * float64(1+i%40))
	}
	return h
}

// writeMinute writes one minute of figures ending at end in one commit, as
// the analysis does.
func writeMinute(b *testing.B, s *metricstore.Store, end time.Time, h *red.Histogram) {
	app := s.Appender(b.Context())
	ts := end.UnixMilli()
	for sv := range benchServices {
		svc := fmt.Sprintf("svc-%02d", sv)
		for ep := -1; ep < benchEndpoints; ep++ {
			family, extra := "skytrail_service_", []string{}
			if ep >= 0 {
				family, extra = "skytrail_endpoint_", []string{"endpoint", fmt.Sprintf("GET /%d", ep)}
			}
			for f, v := range map[red.Field]float64{red.FieldCalls: 60, red.FieldErrors: 3, red.FieldSatisfied: 50, red.FieldTolerating: 7} {
				ls := labels.FromStrings(append([]string{"__name__", red.MinuteName(family, f), "service", svc}, extra...)...)
				if _, err := app.Append(0, ls, ts, v); err != nil {
					b.Fatal(err)
				}
			}
			ls := labels.FromStrings(append([]string{"__name__", red.MinuteName(family, red.FieldDuration), "service", svc}, extra...)...)
			if _, err := app.AppendHistogram(0, ls, ts, nil, h.Float()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
}

func benchStores(b *testing.B) map[string]func(b *testing.B) *metricstore.Store {
	return map[string]func(b *testing.B) *metricstore.Store{
		"embedded": func(b *testing.B) *metricstore.Store {
			s, err := metricstore.Open(metricstore.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		},
		"victoriametrics": func(b *testing.B) *metricstore.Store {
			vm := victoriametrics.Start(b)
			s, err := metricstore.Open(metricstore.Config{WriteURL: vm.URL + "/api/v1/write", QueryURL: vm.URL, Node: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
}

// BenchmarkFiguresWrite: one minute of figures (2,100 series) written in
// one commit, embedded and to a VictoriaMetrics on loopback.
//
// go test -run '^$' -bench 'FiguresWrite|ServicesQuery' -benchtime 20x ./internal/storage/metricstore/
func BenchmarkFiguresWrite(b *testing.B) {
	for _, mode := range []string{"embedded", "victoriametrics"} {
		b.Run(mode, func(b *testing.B) {
			s := benchStores(b)[mode](b)
			h := benchLatency()
			end := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
			b.ResetTimer()
			for i := range b.N {
				// A second apart: each commit new samples.
				writeMinute(b, s, end.Add(time.Duration(i)*time.Second), h)
			}
		})
	}
}

// BenchmarkServicesQuery: the three queries of the services list's
// figures (latency histograms, errors, minutes with calls) over an hour
// of 20 services' figures.
func BenchmarkServicesQuery(b *testing.B) {
	for _, mode := range []string{"embedded", "victoriametrics"} {
		b.Run(mode, func(b *testing.B) {
			s := benchStores(b)[mode](b)
			h := benchLatency()
			end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
			for m := 59; m >= 0; m-- {
				writeMinute(b, s, end.Add(-time.Duration(m)*time.Minute), h)
			}
			exprs := []string{
				`sum by (service) (sum_over_time(skytrail_service_duration_seconds:increase1m[1h]))`,
				`sum by (service) (sum_over_time(skytrail_service_errors:increase1m[1h]))`,
				`count_over_time((sum by (service) (skytrail_service_calls:increase1m))[1h:1m])`,
			}
			check := func() error {
				for _, e := range exprs {
					v, err := s.InstantQuery(b.Context(), e, end)
					if err != nil {
						return err
					}
					if len(v) != benchServices {
						return fmt.Errorf("%s: %d series, want %d", e, len(v), benchServices)
					}
				}
				return nil
			}
			deadline := time.Now().Add(30 * time.Second)
			for err := check(); err != nil; err = check() {
				if time.Now().After(deadline) {
					b.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			b.ResetTimer()
			for range b.N {
				if err := check(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
