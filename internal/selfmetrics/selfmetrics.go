// Package selfmetrics holds SkyTrail's own health metrics, served on /metrics:
// what each receiver took and turned away, how full the pipeline is, how long
// storage writes take. Every component records into these package-level
// collectors so /metrics needs no wiring beyond Handler.
package selfmetrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the registry /metrics serves.
var Registry = prometheus.NewRegistry()

var (
	// SpansReceived counts spans decoded by a receiver, before validation.
	SpansReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skytrail_receiver_spans_received_total",
		Help: "Spans decoded by a receiver, before validation.",
	}, []string{"receiver"})
	// SpansAccepted counts spans a receiver acknowledged.
	SpansAccepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skytrail_receiver_spans_accepted_total",
		Help: "Spans acknowledged to the client.",
	}, []string{"receiver"})
	// SpansRejected counts spans (or, for undecodable requests, requests)
	// refused, by reason: malformed, invalid, too_large, overloaded,
	// unauthenticated, storage.
	SpansRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skytrail_receiver_spans_rejected_total",
		Help: "Spans refused by a receiver, by reason.",
	}, []string{"receiver", "reason"})
	// InFlightBytes is the size of requests being processed.
	InFlightBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skytrail_pipeline_inflight_bytes",
		Help: "Bytes of requests admitted and not yet acknowledged (the queue depth).",
	})
	// StorageWriteSeconds is the time taken to hand a batch to span storage.
	StorageWriteSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                        "skytrail_spanstore_write_seconds",
		Help:                        "Time to write one batch of spans into span storage.",
		NativeHistogramBucketFactor: 1.1,
		Buckets:                     prometheus.ExponentialBuckets(0.0001, 4, 9),
	})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		SpansReceived, SpansAccepted, SpansRejected, InFlightBytes, StorageWriteSeconds,
	)
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}
