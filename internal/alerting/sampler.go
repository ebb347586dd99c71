package alerting

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
)

// Series of the integrity analysis the default rules read, sampled from
// the server's registry into the metric store (sampler).
const (
	FindingsSeries     = "skytrail_diagnostics_findings"
	FindingCountSeries = "skytrail_diagnostics_finding_count"
)

// DefaultSampled are the families of the server's own registry written into
// the metric store every evaluation interval, so rules can read them.
var DefaultSampled = []string{FindingsSeries, FindingCountSeries}

// sampler copies gauges of the server's registry into the metric store, as
// Prometheus scraping the server itself would: the integrity analysis keeps
// its findings as gauges on /metrics, and rules only read the TSDB. A
// series that disappears gets a staleness marker, so a finding that closed
// stops matching at once instead of lingering for the lookback.
//
// Why a copy and not a Queryable over the live gauges: a gauge has one
// value, now; rules with range functions (max_over_time, for: across
// restarts) and Grafana need the history, which the TSDB keeps.
type sampler struct {
	gatherer prometheus.Gatherer
	store    Store
	families map[string]bool
	last     map[string]labels.Labels // series written last time, by labels string
}

func newSampler(g prometheus.Gatherer, store Store, families []string) *sampler {
	s := &sampler{gatherer: g, store: store, families: map[string]bool{}, last: map[string]labels.Labels{}}
	for _, f := range families {
		s.families[f] = true
	}
	return s
}

// sample writes the sampled families' current values at ts.
func (s *sampler) sample(ctx context.Context, ts time.Time) error {
	if s.gatherer == nil || len(s.families) == 0 {
		return nil
	}
	mfs, err := s.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return fmt.Errorf("gathering the server's metrics to sample: %w", err)
	}
	if err := s.store.Writable(); err != nil {
		return err
	}
	t := ts.UnixMilli()
	app := s.store.AppenderV2(ctx)
	seen := make(map[string]labels.Labels, len(s.last))
	b := labels.NewScratchBuilder(4)
	for _, mf := range mfs {
		if !s.families[mf.GetName()] {
			continue
		}
		for _, m := range mf.GetMetric() {
			v, ok := sampleValue(mf.GetType(), m)
			if !ok {
				continue
			}
			b.Reset()
			b.Add(labels.MetricName, mf.GetName())
			for _, lp := range m.GetLabel() {
				if lp.GetValue() != "" {
					b.Add(lp.GetName(), lp.GetValue())
				}
			}
			b.Sort()
			ls := b.Labels()
			if _, err := app.Append(0, ls, 0, t, v, nil, nil, storage.AOptions{}); err != nil {
				_ = app.Rollback()
				return fmt.Errorf("sampling %s into the metric store: %w", ls, err)
			}
			seen[ls.String()] = ls
		}
	}
	for k, ls := range s.last {
		if _, ok := seen[k]; ok {
			continue
		}
		if _, err := app.Append(0, ls, 0, t, math.Float64frombits(value.StaleNaN), nil, nil, storage.AOptions{}); err != nil {
			_ = app.Rollback()
			return fmt.Errorf("marking %s stale in the metric store: %w", ls, err)
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("committing sampled metrics: %w", err)
	}
	s.last = seen
	return nil
}

func sampleValue(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch t {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}
