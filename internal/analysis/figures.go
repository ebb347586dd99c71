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
)

// Figures summarise a service, instance, endpoint or edge over a time range.
type Figures struct {
	Calls          uint64  `json:"calls"`
	Errors         uint64  `json:"errors"`
	CallsPerMinute float64 `json:"callsPerMinute"`
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

// rangeOf is the PromQL range covering the whole minutes in [start, end],
// at least one minute.
func rangeOf(start, end time.Time) string {
	d := end.Sub(start).Truncate(time.Minute)
	if d < time.Minute {
		d = time.Minute
	}
	return model.Duration(d).String()
}

// figures queries the figures of one metric family (prefix such as
// "skytrail_service_") over [start, end], grouped by the labels in by,
// restricted by the PromQL matchers in sel ("" for all). The result is
// keyed by the values of by joined with "\x00".
func (a *Analyser) figures(ctx context.Context, prefix string, by []string, sel string, apdex bool, start, end time.Time) (map[string]*Figures, error) {
	rng := rangeOf(start, end)
	minutes := math.Max(1, math.Round(end.Sub(start).Minutes()))
	group := strings.Join(by, ",")
	q := func(name string) string {
		return fmt.Sprintf("sum by (%s) (sum_over_time(%s%s{%s}[%s]))", group, prefix, name, sel, rng)
	}
	out := map[string]*Figures{}
	hists, err := a.store.InstantQuery(ctx, q("duration_seconds"), end)
	if err != nil {
		return nil, fmt.Errorf("reading latency histograms: %w", err)
	}
	for _, s := range hists {
		if s.H == nil || s.H.Count == 0 {
			continue
		}
		f := &Figures{Calls: uint64(s.H.Count), SuccessRate: 1, CallsPerMinute: s.H.Count / minutes, MeanMs: s.H.Sum / s.H.Count * 1000}
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
	counters := []string{"errors"}
	if apdex {
		counters = append(counters, "apdex_satisfied", "apdex_tolerating")
	}
	values := map[string]map[string]float64{}
	for _, c := range counters {
		vec, err := a.store.InstantQuery(ctx, q(c), end)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", c, err)
		}
		values[c] = vectorByKey(vec, by)
	}
	for k, f := range out {
		f.Errors = uint64(values["errors"][k])
		f.SuccessRate = 1 - float64(f.Errors)/float64(f.Calls)
		if apdex {
			v := (values["apdex_satisfied"][k] + values["apdex_tolerating"][k]/2) / float64(f.Calls)
			f.Apdex = &v
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
