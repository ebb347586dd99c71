// Package metrictest reads a Prometheus registry the way a scrape of
// /metrics would, for tests that check what a component counted.
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Value is the value of the first series of metric name (a counter, gauge
// or untyped metric) whose labels include every given name/value pair, or
// 0 when there is none: a counter nobody has touched yet reads 0.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				matched := false
				for _, l := range m.GetLabel() {
					matched = matched || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !matched {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return 0
}
