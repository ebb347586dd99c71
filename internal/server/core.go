package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/analysis"
	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/cluster"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/query"
	"github.com/skytrail/skytrail/internal/query/jaeger"
	"github.com/skytrail/skytrail/internal/query/promapi"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/tenant"
)

// core is one tenant's SkyTrail: its span and metric stores, analysis,
// integrity, alerting, write-ahead log, front door and query handlers.
// Tenants share the listeners and nothing below them, so no query of one
// can reach another's data: isolation is the structure, not a filter each
// query must remember (Mimir keeps one TSDB per tenant for the same reason).
type core struct {
	name      string
	dir       string
	log       *slog.Logger
	Spans     *spanstore.Store
	Metrics   *metricstore.Store
	Analyser  *analysis.Analyser
	Integrity *integrity.Analyser
	Alerting  *alerting.Alerting
	Pipeline  *pipeline.Pipeline
	// Cluster routes spans to the peers owning their traces; nil without
	// --peers.
	Cluster *cluster.Router
	journal *journal // nil without --wal
	// api serves the tenant's query APIs and UI.
	api *http.ServeMux
}

// coreDir is where a tenant keeps its data: the default tenant in the data
// directory itself, as before tenants existed; the others in
// DataDir/tenants/NAME.
func coreDir(dataDir, name string) string {
	if name == tenant.Default {
		return dataDir
	}
	return filepath.Join(dataDir, "tenants", name)
}

// openCore opens the tenant name's stores in cfg.DataDir (already the
// tenant's directory), starts its analysis and alerting, replays its
// write-ahead log and builds its query handlers. Its figures go to reg;
// gather is what its alerting samples from (its own figures only).
// status is the server's status, shared by every tenant.
func openCore(cfg Config, name string, log *slog.Logger, reg prometheus.Registerer, gather prometheus.Gatherer, ui http.Handler, status func() query.Status) (*core, error) {
	c := &core{name: name, dir: cfg.DataDir, log: log}
	var err error
	if c.Spans, err = openSpans(cfg, log, reg); err != nil {
		return nil, err
	}
	if c.Metrics, err = openMetrics(cfg, log, reg); err != nil {
		_ = c.Spans.Close()
		return nil, err
	}
	if cfg.Analysis.RegistryFile == "" {
		cfg.Analysis.RegistryFile = filepath.Join(cfg.DataDir, "instances.json")
	}
	cfg.Analysis.Registerer, cfg.Analysis.Logger = reg, log
	// With the write-ahead log, the running totals are written at its
	// checkpoints only, so a replay counts every span once.
	cfg.Analysis.CheckpointedTotals = cfg.WAL
	c.Analyser = analysis.New(cfg.Analysis, c.Metrics)
	if err := c.Analyser.Start(context.Background()); err != nil {
		_ = c.Metrics.Close()
		_ = c.Spans.Close()
		return nil, fmt.Errorf("start analysis: %w", err)
	}

	cfg.Integrity.Registry, cfg.Integrity.Registerer = c.Analyser.Registry(), reg
	c.Integrity = integrity.New(cfg.Integrity)
	_ = c.Integrity.Start(context.Background()) // starts a goroutine, cannot fail

	// With peers, only the ruler evaluates alarm rules, so an alarm is
	// notified once, not once per node.
	ac := cfg.Alerting
	ac.Dir, ac.Registerer, ac.Gatherer, ac.Traces, ac.Findings, ac.Logger = alerting.Dir(cfg.DataDir), reg, gather, c.Spans, c.Integrity, log
	if cfg.Cluster.Enabled() && !cfg.Cluster.Ruler {
		log.Info("alarm rules are not evaluated on this node: another node of --peers runs with --ruler")
	} else if c.Alerting, err = alerting.New(ac, c.Metrics); err != nil {
		_ = c.close(context.Background())
		return nil, err
	}

	var journal pipeline.Journal
	if !cfg.WAL {
		warnUnreplayed(log, filepath.Join(cfg.DataDir, "wal"))
	}
	if cfg.WAL {
		if c.journal, err = c.openJournal(cfg, reg); err != nil {
			_ = c.close(context.Background())
			return nil, err
		}
		journal = c.journal.log
		abs, _ := filepath.Abs(filepath.Join(cfg.DataDir, "wal"))
		sync := "always"
		if cfg.WALSync > 0 {
			sync = cfg.WALSync.String()
		}
		log.Info("write-ahead log open", "dir", abs, "sync", sync)
	}

	// The write-ahead log, then storage: a request is acknowledged once its
	// batch is durable in the log and its spans are stored; analysis only
	// aggregates in memory and cannot fail a request. With peers, the
	// router hands these consumers only the spans this node owns.
	traces := []pipeline.TracesConsumer{c.Spans, c.Analyser, c.Integrity}
	if cfg.Cluster.Enabled() {
		cc := cfg.Cluster
		cc.ListenAddr, cc.Registerer, cc.Logger = cfg.OTLPGRPCAddr, reg, log
		if c.Cluster, err = cluster.New(cc, traces); err != nil {
			_ = c.close(context.Background())
			return nil, err
		}
		traces = []pipeline.TracesConsumer{c.Cluster}
	}
	c.Pipeline = pipeline.New(pipeline.Config{
		MaxInFlightBytes: cfg.MaxInFlight,
		Limits:           cfg.Limits,
		Storage:          c.Spans.Limits(),
		Registerer:       reg,
		Journal:          journal,
	}, pipeline.Consumers{
		Traces:     traces,
		Logs:       []pipeline.LogsConsumer{c.Spans},
		Metrics:    []pipeline.MetricsConsumer{c.Metrics},
		Heartbeats: []pipeline.HeartbeatConsumer{c.Analyser},
	})
	c.Pipeline.Subscribe(c.Integrity.Rejected)
	if c.journal != nil {
		// Before any listener opens: what was acknowledged comes first.
		if err := c.journal.replay(c.Pipeline); err != nil {
			_ = c.close(context.Background())
			return nil, err
		}
		c.journal.run()
	}

	c.api = http.NewServeMux()
	query.NewAPI(c.Spans, c.Spans, c.Analyser, c.Integrity).WithStatus(status).Routes(c.api)
	if c.Alerting != nil {
		query.NewAlertsAPI(c.Alerting).Routes(c.api) // /api/v1/{alerts,rules,silences}, /prometheus/api/v1/{rules,alerts}, /-/reload
	} else if err := c.Cluster.AlertsElsewhere(c.api); err != nil {
		_ = c.close(context.Background())
		return nil, err
	}
	c.api.Handle("/jaeger/", http.StripPrefix("/jaeger", jaeger.NewHandler(c.Spans, dependencies{c.Analyser})))
	c.api.Handle("/prometheus/", http.StripPrefix("/prometheus", promapi.NewHandler(c.Metrics)))
	c.api.Handle("/", ui)
	return c, nil
}

// stopCheckpoints stops the write-ahead log's checkpoints, before the
// stores close under them.
func (c *core) stopCheckpoints() {
	if c.journal != nil {
		c.journal.stopCheckpoints()
	}
}

// close flushes and closes what openCore opened; what was acknowledged is
// on disk after it.
func (c *core) close(ctx context.Context) error {
	if c.Cluster != nil {
		_ = c.Cluster.Close() // no request is being routed any more
	}
	c.stopCheckpoints()
	var errs []error
	if c.Alerting != nil {
		errs = append(errs, c.Alerting.Shutdown(ctx))
	}
	if c.Integrity != nil {
		errs = append(errs, c.Integrity.Shutdown(ctx))
	}
	if c.Analyser != nil {
		errs = append(errs, c.Analyser.Shutdown(ctx))
	}
	if c.Metrics != nil {
		errs = append(errs, c.Metrics.Close())
	}
	if c.Spans != nil {
		errs = append(errs, c.Spans.Close())
	}
	if c.journal != nil {
		// Only once the stores hold everything is the log emptied.
		errs = append(errs, c.journal.close(errors.Join(errs...) == nil && c.Spans != nil && c.Metrics != nil))
	}
	return errors.Join(errs...)
}
