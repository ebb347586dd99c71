package pipeline

import "github.com/prometheus/client_golang/prometheus"

// counters are the front door's figures on /metrics: what each receiver
// took and turned away, in the unit of each signal (as the OpenTelemetry
// Collector counts accepted spans, log records and metric points), and how
// full the in-flight budget is.
type counters struct {
	bySignal map[Signal]*signalCounters
	inFlight prometheus.Gauge
}

type signalCounters struct {
	received, accepted, rejected *prometheus.CounterVec
}

func newCounters(reg prometheus.Registerer) *counters {
	c := &counters{
		bySignal: map[Signal]*signalCounters{},
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skytrail_pipeline_inflight_bytes",
			Help: "Bytes of requests admitted and not yet answered (the queue depth).",
		}),
	}
	collectors := []prometheus.Collector{c.inFlight}
	for _, s := range []Signal{SignalSpans, SignalLogs, SignalMetrics, SignalHeartbeats} {
		noun := s.noun()
		sc := &signalCounters{
			received: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skytrail_receiver_" + string(s) + "_received_total",
				Help: "Items (" + noun + ") a receiver decoded, before validation.",
			}, []string{"receiver"}),
			accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skytrail_receiver_" + string(s) + "_accepted_total",
				Help: "Items (" + noun + ") acknowledged to the client.",
			}, []string{"receiver"}),
			rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "skytrail_receiver_" + string(s) + "_rejected_total",
				Help: "Items (" + noun + ", or requests refused before they could be counted) refused, by reason: malformed, invalid, too_large, unauthenticated, overloaded, storage.",
			}, []string{"receiver", "reason"}),
		}
		c.bySignal[s] = sc
		collectors = append(collectors, sc.received, sc.accepted, sc.rejected)
	}
	if reg != nil {
		reg.MustRegister(collectors...)
	}
	return c
}

func (c *counters) received(receiver string, s Signal, n int) {
	if n > 0 {
		c.bySignal[s].received.WithLabelValues(receiver).Add(float64(n))
	}
}

func (c *counters) accepted(receiver string, s Signal, n int) {
	if n > 0 {
		c.bySignal[s].accepted.WithLabelValues(receiver).Add(float64(n))
	}
}

func (c *counters) rejected(receiver string, s Signal, reason Reason, n int) {
	if n > 0 {
		c.bySignal[s].rejected.WithLabelValues(receiver, string(reason)).Add(float64(n))
	}
}
