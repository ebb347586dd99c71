package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the router's counters on /metrics.
type metrics struct {
	forwarded *prometheus.CounterVec
	rerouted  *prometheus.CounterVec
	failures  *prometheus.CounterVec
	refused   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, r *Router) *metrics {
	m := &metrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skytrail_cluster_forwarded_spans_total",
			Help: "Spans forwarded to the peer that owns their trace, and acknowledged by it."}, []string{"peer"}),
		rerouted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skytrail_cluster_rerouted_spans_total",
			Help: "Spans whose owner (peer) was down or failed, sent to the next node in rendezvous order instead."}, []string{"peer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skytrail_cluster_forward_failures_total",
			Help: "Forwards to a peer that failed (down, refused, too slow); the peer is skipped until a refresh finds it serving."}, []string{"peer"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skytrail_cluster_peer_refused_spans_total",
			Help: "Forwarded spans a peer refused as invalid (its limits are stricter than this node's)."}, []string{"peer"}),
	}
	if reg != nil {
		reg.MustRegister(m.forwarded, m.rerouted, m.failures, m.refused,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skytrail_cluster_members",
				Help: "Nodes in the membership (--peers), this one included."}, func() float64 {
				if v := r.view.Load(); v != nil {
					return float64(len(v.peers))
				}
				return 0
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skytrail_cluster_peers_down",
				Help: "Peers marked down after a failed forward, until a refresh finds them serving."}, func() float64 {
				n, v := 0, r.view.Load()
				if v == nil {
					return 0
				}
				for _, p := range v.peers {
					if p != nil && p.down.Load() {
						n++
					}
				}
				return float64(n)
			}))
	}
	return m
}
