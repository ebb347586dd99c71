package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/storage/metricstore"
)

// RemoteMetrics points the metric store at a Prometheus-compatible store
// (--metrics-write-url, --metrics-query-url); both empty keep it embedded
// in DataDir/metrics.
type RemoteMetrics struct {
	// WriteURL takes remote write (http://vm:8428/api/v1/write); QueryURL
	// is the base of its PromQL HTTP API (http://vm:8428).
	WriteURL, QueryURL string
	// Node is this node's name in the node label of every series it writes
	// (the host name when empty).
	Node string
	// Timeout bounds one request to the store (0: 10s).
	Timeout time.Duration
}

func (r RemoteMetrics) enabled() bool { return r.WriteURL != "" || r.QueryURL != "" }

// openMetrics opens the embedded TSDB, or the remote store when configured.
func openMetrics(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*metricstore.Store, error) {
	if r := cfg.RemoteMetrics; r.enabled() {
		node := r.Node
		if node == "" {
			node, _ = os.Hostname()
		}
		s, err := metricstore.Open(metricstore.Config{WriteURL: r.WriteURL, QueryURL: r.QueryURL, Node: node,
			RemoteTimeout: r.Timeout, Registerer: reg})
		if err != nil {
			return nil, err
		}
		log.Info("metric storage open: remote", "write", r.WriteURL, "query", r.QueryURL, "node", node)
		return s, nil
	}
	dir := filepath.Join(cfg.DataDir, "metrics")
	s, err := metricstore.Open(metricstore.Config{Dir: dir, Retention: cfg.MetricsRetention,
		MinFreeDiskBytes: cfg.MinFreeDisk, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	log.Info("metric storage open", "dir", abs, "retention", cfg.MetricsRetention.String())
	return s, nil
}
