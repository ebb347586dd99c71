package integrity

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/selfmetrics"
)

// Findings are exported on /metrics so alarms can fire on them.
var (
	findingsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skytrail_diagnostics_findings",
		Help: "Integrity findings now open, by kind and service (see /api/v1/diagnostics).",
	}, []string{"kind", "service"})
	findingCount = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skytrail_diagnostics_finding_count",
		Help: "Traces (instances, refused spans) behind the open findings, by kind and service.",
	}, []string{"kind", "service"})
	tracesJudged = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skytrail_diagnostics_traces_judged",
		Help: "Traces judged for integrity since the server started.",
	})
	tracesPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skytrail_diagnostics_traces_pending",
		Help: "Traces waiting for their grace period before they are judged.",
	})
)

func init() {
	selfmetrics.Registry.MustRegister(findingsGauge, findingCount, tracesJudged, tracesPending)
}

// publish sets the gauges from the findings.
func (j *judge) publish() {
	findingsGauge.Reset()
	findingCount.Reset()
	for _, f := range j.findings {
		if !j.visible(f) {
			continue
		}
		findingsGauge.WithLabelValues(f.Kind, f.Service).Inc()
		findingCount.WithLabelValues(f.Kind, f.Service).Add(float64(f.Count))
	}
	tracesJudged.Set(float64(j.judged))
	tracesPending.Set(float64(j.pendingTraces))
}
