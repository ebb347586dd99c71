package server

import (
	"cmp"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// RemoteSpans points the span store at a VictoriaLogs server or cluster
// (--spans-url); all empty keeps it embedded in DataDir/spans.
type RemoteSpans struct {
	// URL serves both inserts and queries (a single-node victoria-logs, or
	// a node that is both vlinsert and vlselect).
	URL string
	// InsertURL and SelectURL, when set, override URL for writes (vlinsert)
	// and for queries (vlselect).
	InsertURL, SelectURL string
	// Timeout bounds one request to VictoriaLogs (0: 10s).
	Timeout time.Duration
}

func (r RemoteSpans) enabled() bool { return r.URL != "" || r.InsertURL != "" || r.SelectURL != "" }

// openSpans opens the span store cfg asks for: embedded in DataDir/spans,
// or over VictoriaLogs' HTTP API, keeping only the column budget in
// DataDir/spans-remote.
func openSpans(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*spanstore.Store, error) {
	if cfg.Spans.enabled() {
		dir := filepath.Join(cfg.DataDir, "spans-remote")
		insert, sel := cmp.Or(cfg.Spans.InsertURL, cfg.Spans.URL), cmp.Or(cfg.Spans.SelectURL, cfg.Spans.URL)
		store, err := spanstore.OpenRemote(spanstore.RemoteConfig{
			InsertURL: insert, SelectURL: sel, Dir: dir, Retention: cfg.Retention,
			Timeout: cfg.Spans.Timeout, Registerer: reg, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		abs, _ := filepath.Abs(dir)
		log.Info("span storage open: remote VictoriaLogs", "insert", insert, "select", sel,
			"retention", store.Retention().String(), "column budget", abs)
		return store, nil
	}
	dir := filepath.Join(cfg.DataDir, "spans")
	store, err := spanstore.Open(spanstore.Config{Dir: dir, Retention: cfg.Retention,
		MinFreeDiskBytes: cfg.MinFreeDisk, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	log.Info("span storage open", "dir", abs, "retention", store.Retention().String())
	return store, nil
}
