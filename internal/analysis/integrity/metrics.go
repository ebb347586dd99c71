package integrity

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics export the findings on /metrics, so alarms can fire on them.
type metrics struct {
	findings      *prometheus.GaugeVec
	findingCount  *prometheus.GaugeVec
	tracesJudged  prometheus.Gauge
	tracesPending prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skytrail_diagnostics_findings",
			Help: "Integrity findings now open, by kind and service (see /api/v1/diagnostics).",
		}, []string{"kind", "service"}),
		findingCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skytrail_diagnostics_finding_count",
			Help: "Traces (instances, refused spans) behind the open findings, by kind and service.",
		}, []string{"kind", "service"}),
		tracesJudged: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skytrail_diagnostics_traces_judged",
			Help: "Traces judged for integrity since the server started.",
		}),
		tracesPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skytrail_diagnostics_traces_pending",
			Help: "Traces waiting for their grace period before they are judged.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.findings, m.findingCount, m.tracesJudged, m.tracesPending)
	}
	return m
}

// publish sets the gauges from the findings.
func (j *judge) publish() {
	m := j.metrics
	m.findings.Reset()
	m.findingCount.Reset()
	for _, f := range j.findings {
		if !j.visible(f) {
			continue
		}
		m.findings.WithLabelValues(f.Kind, f.Service).Inc()
		m.findingCount.WithLabelValues(f.Kind, f.Service).Add(float64(f.Count))
	}
	m.tracesJudged.Set(float64(j.judged))
	m.tracesPending.Set(float64(j.pendingTraces))
}
