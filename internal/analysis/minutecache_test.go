package analysis

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/testutil/victoriametrics"
)

// figureQuery is one of the ways the API asks for figures.
type figureQuery struct {
	what   string
	prefix string
	by     []string
	sel    string
	apdex  bool
}

var figureQueries = []figureQuery{
	{"services", "skytrail_service_", []string{"service"}, "", true},
	{"one service", "skytrail_service_", []string{"service"}, `service="frontend"`, true},
	{"client edges", "skytrail_edge_client_", edgeLabels, "", false},
	{"server edges", "skytrail_edge_server_", edgeLabels, "", false},
	{"virtual nodes", "skytrail_edge_client_", []string{"server", "server_type"}, `server_type!="service"`, false},
	{"every instance", "skytrail_instance_", []string{"service", "instance"}, `service!=""`, true},
	{"one service's instances", "skytrail_instance_", []string{"instance"}, `service="frontend"`, true},
}

// sameFigures compares the cache's figures with PromQL's: counts, rates
// and minutes exactly, the mean and percentiles to a billionth (a float
// sum added in another order may differ in its last bits).
func sameFigures(t *testing.T, what string, cached, promql map[string]*Figures) {
	t.Helper()
	if len(cached) != len(promql) {
		t.Errorf("%s: %d groups from the cache, %d from PromQL", what, len(cached), len(promql))
	}
	close := func(a, b float64) bool { return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	for k, p := range promql {
		c := cached[k]
		if c == nil {
			t.Errorf("%s: %q missing from the cache's figures", what, k)
			continue
		}
		if c.Calls != p.Calls || c.Errors != p.Errors || c.CallsPerMinute != p.CallsPerMinute || c.Minutes != p.Minutes ||
			c.SuccessRate != p.SuccessRate || (c.Apdex == nil) != (p.Apdex == nil) || (c.Apdex != nil && *c.Apdex != *p.Apdex) ||
			!close(c.MeanMs, p.MeanMs) || !close(c.P50Ms, p.P50Ms) || !close(c.P75Ms, p.P75Ms) || !close(c.P90Ms, p.P90Ms) ||
			!close(c.P95Ms, p.P95Ms) || !close(c.P99Ms, p.P99Ms) {
			t.Errorf("%s %q: cache %+v, PromQL %+v", what, k, *c, *p)
		}
	}
}

// compareFigures asks every figureQuery over each range both ways.
func compareFigures(t *testing.T, a *Analyser, ranges [][2]time.Time) {
	t.Helper()
	ctx := context.Background()
	groups := 0
	for _, r := range ranges {
		for _, q := range figureQueries {
			what := q.what + " over " + r[0].Format("15:04:05") + "–" + r[1].Format("15:04:05")
			cached, ok, err := a.cachedFigures(ctx, q.prefix, q.by, q.sel, q.apdex, r[0], r[1])
			if err != nil || !ok {
				t.Fatalf("%s from the cache: %v (used: %v)", what, err, ok)
			}
			promql, err := a.promqlFigures(ctx, q.prefix, q.by, q.sel, q.apdex, r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			sameFigures(t, what, cached, promql)
			groups += len(promql)
		}
	}
	if groups == 0 {
		t.Fatal("no figures at all: the comparison proves nothing")
	}
}

// TestCachedFiguresMatchPromQL: the figure cache answers what PromQL over
// the per-minute series answers, for every way the API asks, over ranges
// with the running minute, a minute not yet written, a minute written
// early (a Flush), minutes before the range's start and an hour before;
// again once the cache holds the minutes; again as minutes pass from
// memory to the store; and again after a restart, when the cache starts
// empty and reads the minutes back from the TSDB.
func TestCachedFiguresMatchPromQL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A clock that stands still between Advances: the running minute's
	// rate is over its elapsed part, which must read the same both ways.
	clock := &stillClock{}
	clock.at.Store(time.Now().UnixNano())
	now := clock.Now()
	// 25 minutes of traffic, starting 40 s into a minute.
	clock.Advance(now.Truncate(time.Minute).Add(-25*time.Minute + 40*time.Second).Sub(now))
	store, err := metricstore.Open(metricstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{Now: clock.Now}, store)
	ctx := context.Background()
	send := func(a *Analyser, seed uint64) {
		td, err := loadgen.Traces(300, 12, seed, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
	}
	for m := range 25 {
		send(a, uint64(m+1))
		if m == 12 {
			// A minute written early, as at shutdown: its samples lie
			// inside it, and a later window of it beside them.
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			send(a, 100)
		}
		clock.Advance(time.Minute)
		if err := a.tick(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	send(a, 200) // the running minute; the one before is not due yet
	ranges := func() [][2]time.Time {
		now := clock.Now()
		end := now.Truncate(time.Minute).Add(time.Minute)
		return [][2]time.Time{
			{end.Add(-time.Hour), end},                              // the UI's: the running minute included
			{now.Add(-time.Hour), now},                              // partial minutes at both ends
			{end.Add(-15 * time.Minute), end.Add(-5 * time.Minute)}, // finished minutes only
			{end.Add(-3 * time.Minute), end},                        // the store's newest minutes and memory's
		}
	}
	compareFigures(t, a, ranges()) // filling the cache
	a.cache.mu.Lock()
	cached := len(a.cache.minutes)
	a.cache.mu.Unlock()
	if cached == 0 {
		t.Fatal("nothing cached after asking for an hour of figures")
	}
	compareFigures(t, a, ranges()) // from the cache

	// Minutes pass: what was in memory is written and becomes cacheable.
	for m := range 3 {
		clock.Advance(time.Minute)
		send(a, uint64(300+m))
		if err := a.tick(ctx, false); err != nil {
			t.Fatal(err)
		}
		compareFigures(t, a, ranges())
	}

	// A restart: the minutes written before it are read back from the TSDB.
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err = metricstore.Open(metricstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a = New(Config{Now: clock.Now}, store)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	clock.Advance(20 * time.Second)
	send(a, 400)
	compareFigures(t, a, ranges())
	compareFigures(t, a, ranges())
}

// TestRemoteStoreBypassesTheCache: with a remote metric store other nodes
// write the same series, so this node's cache of its own minutes would be
// wrong; the figures come from PromQL over every node's samples.
func TestRemoteStoreBypassesTheCache(t *testing.T) {
	t.Parallel()
	vm := victoriametrics.Start(t)
	open := func(node string) *metricstore.Store {
		s, err := metricstore.Open(metricstore.Config{WriteURL: vm.URL + "/api/v1/write", QueryURL: vm.URL, Node: node, RemoteTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	ctx := context.Background()
	at := time.Now().Add(-3 * time.Minute)
	nodes := []*Analyser{New(Config{}, open("node-a")), New(Config{}, open("node-b"))}
	for i, a := range nodes {
		td, err := loadgen.Traces(200, 5, uint64(i+1), at)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
		if err := a.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	end := time.Now().Truncate(time.Minute).Add(time.Minute)
	a := nodes[0]
	if _, ok, err := a.cachedFigures(ctx, "skytrail_service_", []string{"service"}, "", true, end.Add(-time.Hour), end); ok || err != nil {
		t.Fatalf("the cache answered with a remote store (err %v)", err)
	}
	// Both nodes' calls count: what a per-node cache would have missed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		figs, err := a.ServiceFigures(ctx, end.Add(-time.Hour), end)
		if err != nil {
			t.Fatal(err)
		}
		var calls uint64
		for _, f := range figs {
			calls += f.Calls
		}
		own, err := nodes[0].promqlOwnCalls(ctx, end)
		if err != nil {
			t.Fatal(err)
		}
		if calls > own && own > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in the figures, %d of them this node's: the other node's are missing", calls, own)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// promqlOwnCalls is this node's calls over the hour before end.
func (a *Analyser) promqlOwnCalls(ctx context.Context, end time.Time) (uint64, error) {
	vec, err := a.store.InstantQuery(ctx, `sum(sum_over_time(skytrail_service_calls:increase1m{node="node-a"}[1h]))`, end)
	if err != nil || len(vec) == 0 {
		return 0, err
	}
	return uint64(vec[0].F), nil
}

// stillClock is a clock that moves only when advanced.
type stillClock struct{ at atomic.Int64 }

func (c *stillClock) Now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *stillClock) Advance(d time.Duration) { c.at.Add(int64(d)) }

// TestFigureCacheIsBounded: the cache keeps cachedMinutes a family and at
// most maxCacheBytes, dropping the oldest minutes, and lets go of the label
// sets of the series no kept minute holds.
func TestFigureCacheIsBounded(t *testing.T) {
	c := newFigureCache()
	// Minutes of 3,000 series with 40 buckets each, about 1.3 MB apiece:
	// 70 of them would outgrow the byte cap.
	minute := func(end int64, tag string) map[string]*rawSeries {
		raw := map[string]*rawSeries{}
		for i := range 3000 {
			l := labels.FromStrings("service", fmt.Sprintf("%s-%d", tag, i))
			r := &rawSeries{lbls: l, sums: minuteSums{calls: 1, hasCalls: true}}
			r.sums.hist.addBucket(0, 1)
			r.sums.hist.addBucket(39, 1)
			raw[string(l.Bytes(nil))] = r
		}
		return raw
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for m := range int64(200) {
		// A new set of series every minute (instances coming and going).
		rows, kept := c.put("skytrail_service_", m*minuteMs, minute(m*minuteMs, fmt.Sprint(m)))
		if !kept {
			c.release(rows)
		}
		if c.bytes > maxCacheBytes {
			t.Fatalf("minute %d: %d bytes cached, over the cap of %d", m, c.bytes, maxCacheBytes)
		}
	}
	if n := len(c.minutes); n == 0 || n >= cachedMinutes {
		t.Fatalf("%d minutes cached; want some, fewer than %d (the byte cap binding first)", n, cachedMinutes)
	}
	held := 0
	for k, rows := range c.minutes {
		if k.end < 199*minuteMs-(cachedMinutes-1)*minuteMs {
			t.Errorf("minute ending %d kept, older than the newest %d", k.end, cachedMinutes)
		}
		held += len(rows)
	}
	if len(c.ids) != held {
		t.Errorf("%d label sets held for %d cached series-minutes (each minute has its own series)", len(c.ids), held)
	}
}
