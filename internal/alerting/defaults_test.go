package alerting

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// defaultExprs parses the default rules and returns each alert's
// expression by name.
func defaultExprs(t testing.TB, th Thresholds) map[string]string {
	t.Helper()
	rgs, errs := rulefmt.Parse(DefaultRules(th), false, model.UTF8Validation, parser.NewParser(parser.Options{}), quiet())
	if len(errs) > 0 {
		t.Fatalf("the default rules do not parse: %v", errs)
	}
	out := map[string]string{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// figureWriter writes figures the way the series in f are kept: running
// counters, or one sample a minute of that minute's count.
type figureWriter struct {
	t     *testing.T
	store *metricstore.Store
	f     FigureSeries
	now   time.Time
}

// calls writes, for the last 10 minutes, perMinute calls a minute of which
// errPerMinute fail, each taking latency, for series with labels pairs.
func (w figureWriter) calls(calls, errs, duration string, perMinute, errPerMinute int, latency float64, pairs ...string) {
	w.t.Helper()
	app := w.store.AppenderV2(context.Background())
	lbl := func(name string) labels.Labels {
		return labels.FromStrings(append([]string{labels.MetricName, name}, pairs...)...)
	}
	var totalCalls, totalErrs float64
	for m := 10; m >= 0; m-- {
		ts := w.now.Add(-time.Duration(m) * time.Minute).UnixMilli()
		c, e := float64(perMinute), float64(errPerMinute)
		if w.f.Counters {
			totalCalls += c
			totalErrs += e
			c, e = totalCalls, totalErrs
		}
		hist := latencyHistogram(latency, uint64(c))
		if !w.f.Counters {
			hist.CounterResetHint = histogram.GaugeType
		}
		for _, s := range []struct {
			name string
			v    float64
		}{{calls, c}, {errs, e}} {
			if _, err := app.Append(0, lbl(s.name), 0, ts, s.v, nil, nil, storage.AOptions{}); err != nil {
				w.t.Fatal(err)
			}
		}
		if _, err := app.Append(0, lbl(duration), 0, ts, 0, hist, nil, storage.AOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		w.t.Fatal(err)
	}
}

// latencyHistogram is a native histogram (schema 0: powers of two) of n
// calls all taking seconds.
func latencyHistogram(seconds float64, n uint64) *histogram.Histogram {
	// Bucket i of schema 0 holds (2^(i-1), 2^i]; find i for seconds.
	i := int32(0)
	for v := 1.0; v < seconds; v *= 2 {
		i++
	}
	for v := 1.0; v/2 >= seconds && i > -20; v /= 2 {
		i--
	}
	return &histogram.Histogram{Schema: 0, Count: n, Sum: seconds * float64(n), ZeroThreshold: 1e-9,
		PositiveSpans: []histogram.Span{{Offset: i, Length: 1}}, PositiveBuckets: []int64{int64(n)}}
}

// The default figure rules find what they are meant to and nothing else,
// read over the series in DefaultFigureSeries (as counters) and over
// per-minute samples (as the analysis writes today).
func TestDefaultFigureRules(t *testing.T) {
	t.Parallel()
	series := map[string]FigureSeries{
		"counters": DefaultFigureSeries,
		"minutes": {ServiceCalls: "skytrail_service_calls", ServiceErrors: "skytrail_service_errors", ServiceDuration: "skytrail_service_duration_seconds",
			EndpointCalls: "skytrail_endpoint_calls", EndpointErrors: "skytrail_endpoint_errors", EndpointDuration: "skytrail_endpoint_duration_seconds",
			InstanceCalls: "skytrail_instance_calls"},
	}
	for name, f := range series {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := openStore(t, t.TempDir())
			t.Cleanup(func() { _ = store.Close() })
			th := DefaultThresholds()
			th.Series = f
			exprs := defaultExprs(t, th)
			now := time.Now().Truncate(time.Minute)
			w := figureWriter{t: t, store: store, f: f, now: now}
			svc := func(perMinute, errs int, latency float64, service string) {
				w.calls(f.ServiceCalls, f.ServiceErrors, f.ServiceDuration, perMinute, errs, latency, "service", service)
			}
			svc(600, 60, 0.05, "failing") // 10% errors
			svc(600, 6, 0.05, "healthy")  // 1%
			svc(1, 1, 0.05, "quiet")      // every call fails, but one a minute
			svc(600, 0, 3, "slow")        // p99 ~3 s
			svc(2, 0, 3, "quiet-slow")    // slow, too few calls
			ep := func(perMinute, errs int, latency float64, service, endpoint string) {
				w.calls(f.EndpointCalls, f.EndpointErrors, f.EndpointDuration, perMinute, errs, latency, "service", service, "endpoint", endpoint)
			}
			ep(600, 300, 0.05, "healthy", "POST /pay") // 50% of one endpoint
			ep(600, 0, 5, "healthy", "GET /report")
			ep(600, 0, 0.05, "healthy", "GET /ok")

			// An instance that stopped 8 minutes ago while its service goes on.
			app := store.AppenderV2(context.Background())
			var total float64
			for m := 50; m >= 0; m-- {
				ts := now.Add(-time.Duration(m) * time.Minute).UnixMilli()
				for _, inst := range []string{"healthy-1", "healthy-2"} {
					if inst == "healthy-2" && m < 8 {
						continue
					}
					v := 100.0
					if f.Counters {
						total += 100
						v = total
					}
					_, _ = app.Append(0, labels.FromStrings(labels.MetricName, f.InstanceCalls, "service", "healthy", "instance", inst), 0, ts, v, nil, nil, storage.AOptions{})
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}

			at := now.Add(time.Second)
			for alert, want := range map[string][]string{
				AlertServiceErrorRate:  {"failing"},
				AlertServiceLatency:    {"slow"},
				AlertEndpointErrorRate: {"healthy POST /pay"},
				AlertEndpointLatency:   {"healthy GET /report"},
				AlertInstanceStopped:   {"healthy healthy-2"},
			} {
				v, err := store.InstantQuery(context.Background(), exprs[alert], at)
				if err != nil {
					t.Fatalf("%s: %v", alert, err)
				}
				var got []string
				for _, s := range v {
					k := s.Metric.Get("service")
					for _, l := range []string{"endpoint", "instance"} {
						if x := s.Metric.Get(l); x != "" {
							k += " " + x
						}
					}
					got = append(got, k)
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s found %v, want %v; expr:\n%s", alert, got, want, exprs[alert])
				}
			}
		})
	}
}

// A zero threshold turns its rule off.
func TestDefaultRulesOff(t *testing.T) {
	th := DefaultThresholds()
	th.ServiceP99, th.InstanceSilence, th.Integrity = 0, 0, false
	exprs := defaultExprs(t, th)
	for _, off := range []string{AlertServiceLatency, AlertInstanceStopped, AlertLostPropagation} {
		if _, ok := exprs[off]; ok {
			t.Errorf("%s is on", off)
		}
	}
	if _, ok := exprs[AlertServiceErrorRate]; !ok {
		t.Error("the error-rate rule is off")
	}
}

// The integrity findings' gauges, on the server's registry, are sampled
// into the store and fire the default integrity rules; a finding that
// closes resolves its alert at once (a staleness marker).
func TestIntegrityRulesReadSampledFindings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir+"/metrics")
	t.Cleanup(func() { _ = store.Close() })
	reg := prometheus.NewRegistry()
	count := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: FindingCountSeries, Help: "test"}, []string{"kind", "service"})
	reg.MustRegister(count)
	count.WithLabelValues("lost_propagation", "checkout").Set(7)
	cfg := testConfig(dir)
	cfg.DefaultRules = true
	cfg.Thresholds = Thresholds{Integrity: true}
	cfg.Gatherer = reg
	a := start(t, cfg, store)
	poll.Until(t, 10*time.Second, "SkyTrailLostPropagation pending or firing", func() bool {
		al, ok := alertState(a, AlertLostPropagation, "checkout")
		return ok && al.Value == 7 && al.Labels["kind"] == "lost_propagation"
	})
	count.Reset()
	poll.Until(t, 10*time.Second, "the alert gone once the finding closed", func() bool {
		_, ok := alertState(a, AlertLostPropagation, "checkout")
		return !ok
	})
}
