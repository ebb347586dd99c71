package analysis

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the analysis' own health, served on /metrics.
type metrics struct {
	spansAnalysed    prometheus.Counter
	spansSkipped     prometheus.Counter
	spansLate        prometheus.Counter
	overflow         *prometheus.CounterVec
	endpointOverflow *prometheus.CounterVec
	waitingSpans     prometheus.Gauge
	trackedSeries    *prometheus.GaugeVec
	samplesRefused   prometheus.Counter
	flushErrors      prometheus.Counter
	minutesDropped   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		spansAnalysed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skytrail_analysis_spans_total",
			Help: "Spans the analysis looked at.",
		}),
		spansSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skytrail_analysis_spans_skipped_total",
			Help: "Spans not counted because the agent asked (SkyWalking skipAnalysis).",
		}),
		spansLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skytrail_analysis_late_spans_total",
			Help: "Spans (or joined edges) that arrived after their minute was written; counted into the oldest open minute.",
		}),
		overflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skytrail_analysis_overflow_total",
			Help: "Spans counted under <overflow> or resolved early because a cap was reached, by what was capped: service, instance, endpoint, edge, join, registry.",
		}, []string{"kind"}),
		endpointOverflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skytrail_analysis_endpoint_overflow_total",
			Help: "Entry spans counted as endpoint <overflow> because their service reached its endpoint cap.",
		}, []string{"service"}),
		waitingSpans: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skytrail_analysis_waiting_spans",
			Help: "Client and server spans waiting for their partner to draw a service-map edge.",
		}),
		trackedSeries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "skytrail_analysis_tracked",
			Help: "Names the analysis keeps under its caps, by kind: service, endpoint, instance, registry_instance, and total (series with a running total).",
		}, []string{"kind"}),
		samplesRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skytrail_analysis_samples_refused_total",
			Help: "Samples the metric store refused as out of order or already written (a minute written at shutdown and seen again after a restart).",
		}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skytrail_analysis_flush_errors_total",
			Help: "Failed writes of figures to the metric store (a full disk, say); the minutes are written again on the next tick.",
		}),
		minutesDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skytrail_analysis_minutes_dropped_total",
			Help: "Minutes of figures dropped unwritten after the metric store refused them for an hour.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.spansAnalysed, m.spansSkipped, m.spansLate, m.overflow, m.endpointOverflow,
			m.waitingSpans, m.trackedSeries, m.samplesRefused, m.flushErrors, m.minutesDropped)
	}
	return m
}
