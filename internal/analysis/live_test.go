package analysis

import (
	"context"
	"math"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/testutil/testclock"
)

// TestLiveFigures: spans just received show in every figure at once —
// services, endpoints, instances, the service map, Jaeger's dependencies,
// the per-minute series and the counters through PromQL — before any minute
// is written; once written, the same figures, counted once.
func TestLiveFigures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	frontend, flushFrontend := h.tracer("frontend", attribute.String("service.instance.id", "fe-1"))
	payment, flushPayment := h.tracer("payment", attribute.String("service.instance.id", "pay-1"))
	start := time.Now()
	const n = 7
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		ctx, root := frontend.Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at))
		call(ctx, frontend, payment, "POST /charge", at.Add(time.Millisecond), 30, 25)
		root.End(trace.WithTimestamp(at.Add(40 * time.Millisecond)))
	}
	flushPayment()
	flushFrontend()

	check := func(when string) {
		t.Helper()
		ctx := context.Background()
		now := time.Now()
		figs, err := h.analyser.ServiceFigures(ctx, now.Add(-15*time.Minute), now)
		if err != nil {
			t.Fatal(err)
		}
		if figs["frontend"].Calls != n || figs["payment"].Calls != n {
			t.Errorf("%s: service figures %+v, want %d calls each", when, figs, n)
		}
		topo, err := h.analyser.Topology(ctx, now.Add(-15*time.Minute), now)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range topo.Edges {
			if e.Client == "frontend" && e.Server == "payment" {
				found = e.ClientSide != nil && e.ClientSide.Calls == n && e.ServerSide != nil && e.ServerSide.Calls == n
			}
		}
		if !found {
			t.Errorf("%s: the map lacks frontend -> payment with %d calls a side: %+v", when, n, topo.Edges)
		}
		deps, err := h.analyser.Dependencies(ctx, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(deps) != 1 || deps[0].Parent != "frontend" || deps[0].Child != "payment" || deps[0].CallCount != n {
			t.Errorf("%s: dependencies %+v, want frontend -> payment, %d calls", when, deps, n)
		}
		insts := h.instances("payment")
		if len(insts.Instances) != 1 || insts.Instances[0].Figures == nil || insts.Instances[0].Figures.Calls != n {
			t.Errorf("%s: payment's instances %+v, want pay-1 with %d calls", when, insts.Instances, n)
		}
		eps, err := h.analyser.Endpoints(ctx, "payment", now.Add(-15*time.Minute), now)
		if err != nil {
			t.Fatal(err)
		}
		if len(eps.Endpoints) != 1 || eps.Endpoints[0].Figures.Calls != n {
			t.Errorf("%s: payment's endpoints %+v, want POST /charge with %d calls", when, eps.Endpoints, n)
		}
		// The minute the spans started in is stamped with its end.
		minuteEnd := start.Truncate(time.Minute).Add(time.Minute)
		if got := h.scalarAt(`sum_over_time(skytrail_service_calls:increase1m{service="payment"}[5m])`, minuteEnd); got != n {
			t.Errorf("%s: per-minute calls = %g, want %d", when, got, n)
		}
		if got := h.scalar(`sum(increase(skytrail_service_calls_total{service="payment"}[5m]))`); got != n {
			t.Errorf("%s: increase of the calls counter = %g, want %d", when, got, n)
		}
		if got := h.scalar(`sum(rate(skytrail_edge_client_calls_total{client="frontend",server="payment"}[1m]))`); got <= 0 {
			t.Errorf("%s: rate of frontend -> payment calls = %g, want some", when, got)
		}
	}
	// Nothing written yet: everything above comes from memory.
	h.analyser.mu.Lock()
	written := h.analyser.countersMs
	h.analyser.mu.Unlock()
	if written != 0 {
		t.Fatalf("the totals were written at %d before the check", written)
	}
	check("before any write")
	h.flush()
	if h.analyser.minutes.Len() != 0 {
		t.Fatalf("%d minutes open after a flush", h.analyser.minutes.Len())
	}
	check("once written")
}

// TestCallsPerMinute: the rate is over the complete minutes that had calls,
// not the whole range (a service busy for three minutes of an hour reads its
// rate in them) and not dragged down by the running minute; a service with
// calls in the running minute only reads its rate over the part elapsed.
// The endpoints say the same.
func TestCallsPerMinute(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	// 20 s into a minute, so the running minute is known for the test's span.
	now := clock.Now()
	clock.Advance(now.Truncate(time.Minute).Add(time.Minute + 20*time.Second).Sub(now))
	h := newHarness(t, Config{Now: clock.Now})
	running := clock.Now().Truncate(time.Minute)
	steady, finishSteady := h.tracer("steady")
	burst, finishBurst := h.tracer("burst")
	entry := func(tr trace.Tracer, at time.Time) {
		_, s := tr.Start(context.Background(), "GET /", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at))
		s.End(trace.WithTimestamp(at.Add(5 * time.Millisecond)))
	}
	for m := 3; m >= 1; m-- {
		for i := range 300 {
			entry(steady, running.Add(-time.Duration(m)*time.Minute+time.Duration(i)*200*time.Millisecond))
		}
	}
	for i := range 50 {
		entry(steady, running.Add(time.Duration(i)*100*time.Millisecond))
	}
	for i := range 40 {
		entry(burst, running.Add(time.Duration(i)*100*time.Millisecond))
	}
	finishSteady()
	finishBurst()

	end := running.Add(time.Minute)
	figs, err := h.analyser.ServiceFigures(context.Background(), end.Add(-time.Hour), end)
	if err != nil {
		t.Fatal(err)
	}
	if f := figs["steady"]; f.Calls != 950 || f.CallsPerMinute != 300 || f.Minutes != 3 {
		t.Errorf("steady: %d calls, %g a minute over %g minutes; want 950, 300 over 3", f.Calls, f.CallsPerMinute, f.Minutes)
	}
	f := figs["burst"]
	if f.Calls != 40 || f.Minutes < 20.0/60 || f.Minutes > 1 || math.Abs(f.CallsPerMinute*f.Minutes-40) > 1e-9 {
		t.Errorf("burst: %d calls, %g a minute over %g minutes; want 40 over the 20 s or so of the running minute", f.Calls, f.CallsPerMinute, f.Minutes)
	}
	eps, err := h.analyser.Endpoints(context.Background(), "steady", end.Add(-time.Hour), end)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps.Endpoints) != 1 || eps.Endpoints[0].Figures.CallsPerMinute != 300 {
		t.Errorf("steady's endpoints %+v, want GET / at 300 a minute", eps.Endpoints)
	}
}

// grafanaQueries are the PromQL queries docs/metrics.md offers Grafana
// users, with what each must answer for the traffic TestGrafanaQueries
// sends: 75 calls every 15 s for 5 minutes, latencies 10 ms to 750 ms, one
// call in 15 failed, each with a MySQL query.
var grafanaQueries = []struct {
	what, query string
	want        func(truth) (lo, hi float64)
}{
	{"calls per second", `sum by (service) (rate(skytrail_service_calls_total[5m]))`,
		func(x truth) (float64, float64) { return near(x.perSecond, 0.01) }},
	{"calls in the last hour", `sum by (service) (increase(skytrail_service_calls_total[1h]))`,
		func(x truth) (float64, float64) { return near(x.calls, 0.001) }},
	{"error ratio", `sum by (service) (rate(skytrail_service_errors_total[5m])) / sum by (service) (rate(skytrail_service_calls_total[5m]))`,
		func(x truth) (float64, float64) { return near(x.errorRatio, 0.01) }},
	{"p99, native histogram", `histogram_quantile(0.99, sum by (service) (rate(skytrail_service_duration_seconds[5m])))`,
		func(x truth) (float64, float64) { return near(x.p99, histogramTolerance) }},
	{"p99, classic buckets", `histogram_quantile(0.99, sum by (le, service) (rate(skytrail_service_duration_seconds_bucket[5m])))`,
		func(x truth) (float64, float64) { return x.p99Bucket() }},
	{"mean latency", `sum by (service) (rate(skytrail_service_duration_seconds_sum[5m])) / sum by (service) (rate(skytrail_service_duration_seconds_count[5m]))`,
		func(x truth) (float64, float64) { return near(x.mean, 0.01) }},
	{"Apdex", `(sum by (service) (rate(skytrail_service_apdex_satisfied_total[5m])) + sum by (service) (rate(skytrail_service_apdex_tolerating_total[5m])) / 2) / sum by (service) (rate(skytrail_service_calls_total[5m]))`,
		func(x truth) (float64, float64) { return near(x.apdex, 0.01) }},
	{"p99 of each endpoint", `histogram_quantile(0.99, sum by (service, endpoint) (rate(skytrail_endpoint_duration_seconds{service="shop"}[5m])))`,
		func(x truth) (float64, float64) { return near(x.p99, histogramTolerance) }},
	{"calls per second of each instance", `sum by (service, instance) (rate(skytrail_instance_calls_total{service="shop"}[5m]))`,
		func(x truth) (float64, float64) { return near(x.perSecond, 0.01) }},
	{"calls to databases, per second", `sum by (client, server) (rate(skytrail_edge_client_calls_total{server_type="database"}[5m]))`,
		func(x truth) (float64, float64) { return near(x.perSecond, 0.01) }},
	{"the complete minutes' calls, exact", `sum by (service) (sum_over_time(skytrail_service_calls:increase1m[1h]))`,
		func(x truth) (float64, float64) { return x.completeCalls, x.completeCalls }},
}

// truth is what the traffic of TestGrafanaQueries was.
type truth struct {
	calls, perSecond, errorRatio, p99, mean, apdex float64
	// completeCalls are those that started in a minute ended by the time
	// of the query: the running minute's sample is stamped at its end.
	completeCalls float64
}

// p99Bucket is the classic bucket (between powers of two) the p99 lies in:
// histogram_quantile over the _bucket series reads a value inside it.
func (x truth) p99Bucket() (float64, float64) {
	hi := math.Exp2(math.Ceil(math.Log2(x.p99)))
	return hi / 2, hi
}

func near(v, rel float64) (float64, float64) { return v * (1 - rel), v * (1 + rel) }

// TestGrafanaQueries sends known traffic through the OpenTelemetry SDK,
// lets the running totals be written every 15 s for 5 minutes (a test clock
// passes them), and runs the queries docs/metrics.md gives through the
// Prometheus API: a Grafana user's usual rate(), increase() and
// histogram_quantile() forms, native and classic, answer right.
func TestGrafanaQueries(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	h := newHarness(t, Config{Now: clock.Now})
	shop, finish := h.tracer("shop", attribute.String("service.instance.id", "shop-1"))
	var latencies []float64
	var starts []time.Time
	var errs, satisfied, tolerating float64
	for range 20 {
		start := clock.Now()
		for i := range 75 {
			ms := float64(i+1) * 10
			at := start.Add(time.Duration(i) * time.Millisecond)
			ctx, span := shop.Start(context.Background(), "GET /item", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at))
			_, db := shop.Start(ctx, "SELECT item", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at),
				trace.WithAttributes(attribute.String("db.system", "mysql"), attribute.String("server.address", "mysql")))
			db.End(trace.WithTimestamp(at.Add(time.Millisecond)))
			switch {
			case i%15 == 14:
				span.SetStatus(codes.Error, "out of stock")
				errs++
			case ms <= 500:
				satisfied++
			case ms <= 2000:
				tolerating++
			}
			span.End(trace.WithTimestamp(at.Add(time.Duration(ms * 1e6))))
			latencies = append(latencies, ms/1000)
			starts = append(starts, at)
		}
		// The SDK exports each batch before the clock moves on.
		if err := h.flushTracer(shop); err != nil {
			t.Fatal(err)
		}
		clock.Advance(15 * time.Second)
		if err := h.analyser.tick(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	finish()
	n := float64(len(latencies))
	var sum float64
	for _, l := range latencies {
		sum += l
	}
	x := truth{calls: n, perSecond: 75.0 / 15, errorRatio: errs / n, p99: 0.75, mean: sum / n, apdex: (satisfied + tolerating/2) / n}
	at := clock.Now()
	for _, s := range starts {
		if !s.Truncate(time.Minute).Add(time.Minute).After(at) {
			x.completeCalls++
		}
	}
	for _, q := range grafanaQueries {
		lo, hi := q.want(x)
		if got := h.scalarAt(q.query, at); got < lo || got > hi {
			t.Errorf("%s: %s = %g, want %g to %g", q.what, q.query, got, lo, hi)
		}
	}
	// The derived count is the calls counter, sample for sample.
	if got := h.scalarAt(`sum(skytrail_service_duration_seconds_count) - sum(skytrail_service_calls_total)`, at); got != 0 {
		t.Errorf("duration_seconds_count - calls_total = %g, want 0", got)
	}
}

// TestCountersAcrossARestart: a restart starts the running totals again from
// zero. PromQL takes the drop as a counter reset and counts the calls on
// both sides once; the per-minute figures count every call once.
func TestCountersAcrossARestart(t *testing.T) {
	t.Parallel()
	// 40 s into a minute, so which minutes are due when is known.
	clock := testclock.New()
	now := clock.Now()
	clock.Advance(now.Truncate(time.Minute).Add(time.Minute + 40*time.Second).Sub(now))
	dir := t.TempDir()
	entries := func(h *harness, n int, at time.Time) {
		tr, finish := h.tracer("restarted")
		for i := range n {
			_, s := tr.Start(context.Background(), "GET /", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at.Add(time.Duration(i)*time.Millisecond)))
			s.End(trace.WithTimestamp(at.Add(time.Duration(i)*time.Millisecond + 3*time.Millisecond)))
		}
		finish()
	}
	minute := clock.Now().Truncate(time.Minute).Add(-2 * time.Minute)
	first := newHarnessIn(t, Config{Now: clock.Now}, dir)
	entries(first, 100, minute)
	clock.Advance(15 * time.Second)
	// Writes the minute (ended 75 s ago) and the totals (100).
	if err := first.analyser.tick(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	// Late for their minute: counted in the next, which the shutdown
	// writes, with the totals (150).
	entries(first, 50, minute.Add(10*time.Second))
	first.stop()

	clock.Advance(15 * time.Second)
	second := newHarnessIn(t, Config{Now: clock.Now}, dir)
	// For the minute the first process wrote last: late too, not a second
	// sample on that minute's (which the store would refuse).
	entries(second, 30, minute.Add(time.Minute))
	clock.Advance(15 * time.Second)
	if err := second.analyser.tick(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	at := clock.Now()
	if got := second.scalarAt(`sum(increase(skytrail_service_calls_total{service="restarted"}[10m]))`, at); got != 180 {
		t.Errorf("increase across the restart = %g, want 180", got)
	}
	if got := second.scalarAt(`sum(resets(skytrail_service_calls_total{service="restarted"}[10m]))`, at); got != 1 {
		t.Errorf("resets = %g, want 1", got)
	}
	end := at.Truncate(time.Minute).Add(time.Minute)
	figs, err := second.analyser.ServiceFigures(context.Background(), end.Add(-15*time.Minute), end)
	if err != nil {
		t.Fatal(err)
	}
	if f := figs["restarted"]; f.Calls != 180 {
		t.Errorf("figures across the restart: %d calls, want 180", f.Calls)
	}
}

// TestFlushedMinuteCountedAgain: a minute written early twice (Flush, as
// at shutdown) and counted into in between keeps every call: each early
// write lands inside the minute on a stamp of its own, and the sums add
// both. (Both flushes fell in the same millisecond about once in 300 runs
// on a busy machine, and the second was refused until Due kept the stamps
// apart: TestEarlyWritesOfAMinuteNeverShareAStamp.)
func TestFlushedMinuteCountedAgain(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	now := clock.Now()
	clock.Advance(now.Truncate(time.Minute).Add(time.Minute + 10*time.Second).Sub(now))
	h := newHarness(t, Config{Now: clock.Now})
	running := clock.Now().Truncate(time.Minute)
	send := func(n int) {
		tr, finish := h.tracer("flushed")
		for i := range n {
			_, s := tr.Start(context.Background(), "GET /", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(running.Add(time.Duration(i)*time.Millisecond)))
			s.End(trace.WithTimestamp(running.Add(time.Duration(i+2) * time.Millisecond)))
		}
		finish()
	}
	send(40)
	h.flush()
	send(2)
	h.flush()
	end := running.Add(time.Minute)
	if got := h.scalarAt(`sum_over_time(skytrail_service_calls:increase1m{service="flushed"}[1m])`, end); got != 42 {
		t.Errorf("the minute's calls = %g, want 42", got)
	}
	figs, err := h.analyser.ServiceFigures(context.Background(), running, end)
	if err != nil {
		t.Fatal(err)
	}
	if f := figs["flushed"]; f.Calls != 42 {
		t.Errorf("figures: %d calls, want 42", f.Calls)
	}
}

// TestLiveLabels: label look-ups (Grafana's query editor) find the series
// held in memory, as the query API serves them.
func TestLiveLabels(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	tr, finish := h.tracer("labelled", attribute.String("service.instance.id", "labelled-1"))
	_, s := tr.Start(context.Background(), "GET /x", trace.WithSpanKind(trace.SpanKindServer))
	s.End()
	finish()
	var names struct{ Data []string }
	h.get("/prometheus/api/v1/label/__name__/values?match[]="+url.QueryEscape(`{service="labelled"}`), &names)
	want := map[string]bool{"skytrail_service_calls_total": false, "skytrail_service_calls:increase1m": false,
		"skytrail_service_duration_seconds_bucket": false, "skytrail_endpoint_duration_seconds": false}
	for _, n := range names.Data {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, found := range want {
		if !found {
			t.Errorf("metric names for service labelled lack %s: %v", n, names.Data)
		}
	}
	var values struct{ Data []string }
	h.get("/prometheus/api/v1/label/endpoint/values", &values)
	if len(values.Data) != 1 || values.Data[0] != "GET /x" {
		t.Errorf("endpoint values %v, want [GET /x]", values.Data)
	}
}

// TestLiveUnderLoad: spans counted, minutes and totals written, and
// queries over the live view, all at once (run it with -race).
func TestLiveUnderLoad(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{CounterInterval: time.Millisecond})
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := uint64(i * 1000); ; seed++ {
				select {
				case <-stop:
					return
				default:
				}
				td, err := loadgen.Traces(200, 5, seed, time.Now().Add(-time.Duration(seed%120)*time.Second))
				if err != nil {
					t.Error(err)
					return
				}
				_ = h.analyser.ConsumeTraces(ctx, pipeline.TracesOf(td))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := h.analyser.tick(ctx, false); err != nil {
				t.Error(err)
				return
			}
			if err := h.analyser.Flush(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		now := time.Now()
		if _, err := h.analyser.Topology(ctx, now.Add(-15*time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.InstantQuery(ctx, `histogram_quantile(0.99, sum by (le) (rate(skytrail_service_duration_seconds_bucket[1m])))`, now); err != nil {
			t.Fatal(err)
		}
		var names struct{ Data []string }
		h.get("/prometheus/api/v1/labels", &names)
	}
	close(stop)
	wg.Wait()
}

// TestRateAtAnInstantBeforeTheFirstWrite: a query stamped just before a
// new series' totals were first written, and run after (as a rule's
// evaluation is: stamped, then run), still sees the series. Before, the
// store's first sample lay past the query's end and the live view no
// longer offered the series, so rate() gave nothing and an alert on a new
// service resolved for one evaluation.
func TestRateAtAnInstantBeforeTheFirstWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	payment, flush := h.tracer("payment")
	start := time.Now().Add(-10 * time.Second)
	for i := range 5 {
		_, sp := payment.Start(context.Background(), "POST /charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(time.Duration(i)*time.Millisecond)))
		sp.End(trace.WithTimestamp(start.Add(time.Duration(i)*time.Millisecond + 20*time.Millisecond)))
	}
	flush()
	stamped := time.Now()
	time.Sleep(5 * time.Millisecond) // the write comes after the query's stamp
	h.flush()
	if got := h.scalarAt(`sum(increase(skytrail_service_calls_total{service="payment"}[5m]))`, stamped); got < 5 {
		t.Errorf("calls at an instant before the first write = %g, want 5", got)
	}
}
