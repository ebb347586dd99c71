// Package analysis turns every received span into service, instance and
// endpoint metrics, the service map and the instance registry: aggregated
// in memory per minute on the ingest path, written to the metric store in
// the background, and served as PromQL and JSON.
package analysis

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/analysis/instances"
)

// Config tunes the analysis; the zero value works.
type Config struct {
	// ApdexThreshold is the Apdex T of services without their own
	// (default 500 ms): a successful call within T satisfies, within 4T
	// is tolerated, anything else frustrates.
	ApdexThreshold time.Duration
	// ApdexThresholds overrides ApdexThreshold per service.
	ApdexThresholds map[string]time.Duration
	// MaxServices caps the services analysed (default 10000); spans of
	// further services count under service "<overflow>".
	MaxServices int
	// MaxEndpointsPerService caps endpoint series per service (default
	// 1000): URLs with IDs in them would otherwise make one series per
	// request. Further endpoints count as endpoint "<overflow>".
	MaxEndpointsPerService int
	// MaxInstancesPerService caps instance series per service (default 1000).
	MaxInstancesPerService int
	// MaxEdges caps service-map edges per minute (default 20000).
	MaxEdges int
	// IdleExpiry forgets an endpoint or instance unseen this long, freeing
	// its place under the caps (default 1 h).
	IdleExpiry time.Duration
	// JoinGrace is how long a client span waits for the server span that
	// answered it (and the other way round) before it becomes an edge to a
	// virtual node (default 30 s).
	JoinGrace time.Duration
	// MaxWaitingSpans caps spans waiting for their partner (default
	// 500000); beyond it spans are resolved at once as unmatched.
	MaxWaitingSpans int
	// FlushDelay is how long after a minute ends its figures are written
	// (default JoinGrace + 15 s, so resolved joins are in it).
	FlushDelay time.Duration
	// CounterInterval is how often the running totals (the _total
	// counters and counter histograms PromQL's rate() reads) are written
	// (default 15 s, Prometheus' usual scrape interval, so Grafana's
	// $__rate_interval finds four samples in a minute). The analysis ticks
	// every 5 s; a shorter interval is that. Between writes, queries read
	// the totals from memory.
	CounterInterval time.Duration
	// CheckpointedTotals leaves writing the running totals to the
	// write-ahead log's checkpoints (WriteTotals, every CounterInterval)
	// and Flush, so that the totals in the store hold exactly the spans the
	// log will not replay.
	CheckpointedTotals bool
	// Instances configures the instance registry.
	Instances instances.Config
	// RegistryFile, when set, is where the instance registry is saved each
	// minute and loaded at start, so first-seen times survive a restart.
	RegistryFile string
	// Registerer takes the analysis' own metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.ApdexThreshold <= 0 {
		c.ApdexThreshold = 500 * time.Millisecond
	}
	if c.MaxServices <= 0 {
		c.MaxServices = 10_000
	}
	if c.MaxEndpointsPerService <= 0 {
		c.MaxEndpointsPerService = 1000
	}
	if c.MaxInstancesPerService <= 0 {
		c.MaxInstancesPerService = 1000
	}
	if c.MaxEdges <= 0 {
		c.MaxEdges = 20_000
	}
	if c.IdleExpiry <= 0 {
		c.IdleExpiry = time.Hour
	}
	if c.JoinGrace <= 0 {
		c.JoinGrace = 30 * time.Second
	}
	if c.MaxWaitingSpans <= 0 {
		c.MaxWaitingSpans = 500_000
	}
	if c.FlushDelay <= 0 {
		c.FlushDelay = c.JoinGrace + 15*time.Second
	}
	if c.CounterInterval <= 0 {
		c.CounterInterval = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}
