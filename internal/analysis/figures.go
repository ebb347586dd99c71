package analysis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser/posrange"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// Figures summarise a service, instance, endpoint or edge over a time range:
// the whole minutes it overlaps, the running minute included, read from the
// per-minute series (exact counts, by the minute a span started in).
type Figures struct {
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
	// CallsPerMinute is the rate over the complete minutes of the range
	// that had calls, Minutes of them: a service busy for five minutes of
	// an hour reads its rate in those five, and a minute still running
	// does not drag it down. While only the running minute has calls, it
	// is the rate over its elapsed part (at least 10 s). The services list,
	// the service page and the charts (one point a complete minute) agree.
	CallsPerMinute float64 `json:"callsPerMinute"`
	// Minutes is what CallsPerMinute is over, in minutes.
	Minutes float64 `json:"minutes"`
	// SuccessRate is the share of calls without error, 0 to 1; 1 with no calls.
	SuccessRate float64 `json:"successRate"`
	// Apdex is (satisfied + tolerating/2) / calls; absent on edges.
	Apdex *float64 `json:"apdex,omitempty"`
	// Latency percentiles in milliseconds, read from the latency histogram
	// (within about 9% of the true value); 0 with no calls.
	P50Ms float64 `json:"p50Ms"`
	P75Ms float64 `json:"p75Ms"`
	P90Ms float64 `json:"p90Ms"`
	P95Ms float64 `json:"p95Ms"`
	P99Ms float64 `json:"p99Ms"`
	// MeanMs is the mean latency in milliseconds.
	MeanMs float64 `json:"meanMs"`
}

// minutesOf is the whole minutes overlapping [start, end], as the range
// (from, to] their samples are stamped in: each minute's figures are stamped
// with its end.
func minutesOf(start, end time.Time) (from, to time.Time) {
	from, to = start.Truncate(time.Minute), end.Truncate(time.Minute)
	if to.Before(end) {
		to = to.Add(time.Minute)
	}
	if !to.After(from) {
		to = from.Add(time.Minute)
	}
	return from, to
}

// minRunningPart is the least of the running minute a rate is taken over:
// a second into a minute, one call would read as 60 a minute.
const minRunningPart = 10 * time.Second

// figures queries the figures of one metric family (prefix such as
// "skytrail_service_") over the minutes overlapping [start, end], grouped by
// the labels in by, restricted by the PromQL matchers in sel ("" for all).
// The result is keyed by the values of by joined with "\x00".
//
// They come from the figure cache (minutecache.go) where it applies, from
// PromQL over the per-minute series otherwise: the same figures.
func (a *Analyser) figures(ctx context.Context, prefix string, by []string, sel string, apdex bool, start, end time.Time) (map[string]*Figures, error) {
	if out, ok, err := a.cachedFigures(ctx, prefix, by, sel, apdex, start, end); ok || err != nil {
		return out, err
	}
	return a.promqlFigures(ctx, prefix, by, sel, apdex, start, end)
}

// promqlFigures is figures read with PromQL.
func (a *Analyser) promqlFigures(ctx context.Context, prefix string, by []string, sel string, apdex bool, start, end time.Time) (map[string]*Figures, error) {
	from, to := minutesOf(start, end)
	rng := model.Duration(to.Sub(from)).String()
	group := strings.Join(by, ",")
	name := func(f red.Field) string { return red.MinuteName(prefix, f) + "{" + sel + "}" }
	sum := func(f red.Field) string {
		return fmt.Sprintf("sum by (%s) (sum_over_time(%s[%s]))", group, name(f), rng)
	}
	out := map[string]*Figures{}
	hists, err := a.store.InstantQuery(ctx, sum(red.FieldDuration), to)
	if err != nil {
		return nil, fmt.Errorf("reading latency histograms: %w", err)
	}
	for _, s := range hists {
		if s.H == nil || s.H.Count == 0 {
			continue
		}
		f := &Figures{Calls: uint64(s.H.Count), SuccessRate: 1, MeanMs: s.H.Sum / s.H.Count * 1000}
		for _, p := range []struct {
			q   float64
			dst *float64
		}{{0.5, &f.P50Ms}, {0.75, &f.P75Ms}, {0.9, &f.P90Ms}, {0.95, &f.P95Ms}, {0.99, &f.P99Ms}} {
			v, _ := promql.HistogramQuantile(p.q, s.H, "", posrange.PositionRange{})
			if !math.IsNaN(v) {
				*p.dst = v * 1000
			}
		}
		out[key(s.Metric, by)] = f
	}
	if len(out) == 0 {
		return out, nil
	}
	values := map[red.Field]map[string]float64{}
	fields := []red.Field{red.FieldErrors}
	if apdex {
		fields = append(fields, red.FieldSatisfied, red.FieldTolerating)
	}
	for _, f := range fields {
		vec, err := a.store.InstantQuery(ctx, sum(f), to)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", red.MinuteName(prefix, f), err)
		}
		values[f] = vectorByKey(vec, by)
	}
	// The minutes with calls: a subquery steps through the range a minute
	// at a time, where each minute's sample is, and counts the steps at
	// which the group had one.
	vec, err := a.store.InstantQuery(ctx, fmt.Sprintf("count_over_time((sum by (%s) (%s))[%s:1m])", group, name(red.FieldCalls), rng), to)
	if err != nil {
		return nil, fmt.Errorf("counting the minutes with calls: %w", err)
	}
	minutes := vectorByKey(vec, by)
	// The running minute's calls, if it is in the range.
	now := a.now()
	running := map[string]float64{}
	if runEnd := now.Truncate(time.Minute).Add(time.Minute); runEnd.After(from) && !runEnd.After(to) {
		vec, err := a.store.InstantQuery(ctx, fmt.Sprintf("sum by (%s) (sum_over_time(%s[1m]))", group, name(red.FieldCalls)), runEnd)
		if err != nil {
			return nil, fmt.Errorf("reading the running minute: %w", err)
		}
		running = vectorByKey(vec, by)
	}
	elapsed := max(now.Sub(now.Truncate(time.Minute)), minRunningPart).Minutes()
	for k, f := range out {
		f.Errors = uint64(values[red.FieldErrors][k])
		f.SuccessRate = 1 - float64(f.Errors)/float64(f.Calls)
		if apdex {
			v := (values[red.FieldSatisfied][k] + values[red.FieldTolerating][k]/2) / float64(f.Calls)
			f.Apdex = &v
		}
		complete, calls := minutes[k], float64(f.Calls)
		if r, ok := running[k]; ok {
			complete, calls = complete-1, calls-r
		}
		if complete >= 1 {
			f.Minutes, f.CallsPerMinute = complete, calls/complete
		} else {
			f.Minutes, f.CallsPerMinute = elapsed, running[k]/elapsed
		}
	}
	return out, nil
}

func key(l labels.Labels, by []string) string {
	if len(by) == 1 {
		return l.Get(by[0])
	}
	parts := make([]string, len(by))
	for i, b := range by {
		parts[i] = l.Get(b)
	}
	return strings.Join(parts, "\x00")
}

func vectorByKey(v promql.Vector, by []string) map[string]float64 {
	m := make(map[string]float64, len(v))
	for _, s := range v {
		m[key(s.Metric, by)] = s.F
	}
	return m
}

// quote renders s as a PromQL string literal.
func quote(s string) string { return fmt.Sprintf("%q", s) }

// ServiceFigures returns each service's figures over [start, end], for
// /api/v1/services.
func (a *Analyser) ServiceFigures(ctx context.Context, start, end time.Time) (map[string]Figures, error) {
	m, err := a.figures(ctx, "skytrail_service_", []string{"service"}, "", true, start, end)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Figures, len(m))
	for k, f := range m {
		out[k] = *f
	}
	return out, nil
}

// OneServiceFigures is ServiceFigures for one service (the service page's),
// reading only its series; nil when it had no calls in [start, end].
func (a *Analyser) OneServiceFigures(ctx context.Context, service string, start, end time.Time) (*Figures, error) {
	m, err := a.figures(ctx, "skytrail_service_", []string{"service"}, "service="+quote(service), true, start, end)
	if err != nil {
		return nil, err
	}
	return m[service], nil
}

// Dependency is one edge of the service map in Jaeger's shape.
type Dependency struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}

// Dependencies lists the service map's edges over (end-lookback, end] as
// Jaeger's /api/dependencies does: calls as the client counted them, or as
// the server did where no client reported. Edges from the "user" node are
// left out; Jaeger has no such node.
func (a *Analyser) Dependencies(ctx context.Context, end time.Time, lookback time.Duration) ([]Dependency, error) {
	edges, err := a.edges(ctx, end.Add(-lookback), end)
	if err != nil {
		return nil, err
	}
	deps := make([]Dependency, 0, len(edges))
	for _, e := range edges {
		if e.ClientType == "user" {
			continue
		}
		deps = append(deps, Dependency{Parent: e.Client, Child: e.Server, CallCount: e.calls()})
	}
	return deps, nil
}
