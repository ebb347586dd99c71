// Package metricstore keeps SkyTrail's metrics (RED figures, the service
// map) in an embedded Prometheus TSDB and answers PromQL over it with the
// Prometheus engine, in-process: the same query language a Prometheus
// cluster would answer when one machine is not enough.
//
// With Config.WriteURL and QueryURL the samples live in a remote
// Prometheus-compatible store instead (VictoriaMetrics, Prometheus, Mimir,
// Thanos): written with remote write, read back as raw samples over its
// PromQL HTTP API, and evaluated by the same in-process engine, so every
// reader (the analysis, the rules engine, the PromQL API) and the live
// sources and classic histogram view work alike in both modes.
package metricstore

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/skytrail/skytrail/internal/storage/diskspace"
)

// DefaultRetention is how long samples are kept unless configured otherwise.
const DefaultRetention = 15 * 24 * time.Hour

// LookbackDelta is how far back an instant selector looks for a sample.
// SkyTrail writes one sample a minute per series, stamped at the end of the
// minute it describes, so a minute's figure is visible for exactly the next
// minute and not smeared over Prometheus' default five.
const LookbackDelta = time.Minute

// Config sets up a store.
type Config struct {
	// Dir holds the TSDB; created when missing.
	Dir string
	// Retention is how long samples are kept (DefaultRetention when zero).
	Retention time.Duration
	// Registerer takes the store's metrics and the TSDB's own
	// (prometheus_tsdb_*); nil keeps them unregistered.
	Registerer prometheus.Registerer
	// MinFreeDiskBytes is the free space kept in Dir (0: none): below it
	// Writable and ConsumeMetrics fail with ErrDiskFull and nothing is
	// written; queries go on. diskspace.DefaultMinFree says what it must
	// hold.
	MinFreeDiskBytes int64
	// Logger gets the read-only state's changes (default slog.Default()).
	Logger *slog.Logger

	// WriteURL (a remote-write endpoint, such as
	// http://vm:8428/api/v1/write) and QueryURL (the base of a PromQL HTTP
	// API, such as http://vm:8428) keep the samples in a remote store
	// instead of a TSDB in Dir; both or neither.
	WriteURL, QueryURL string
	// Node is the value of the NodeLabel on every series written to a
	// remote store (required with WriteURL).
	Node string
	// RemoteTimeout bounds each request to the remote store
	// (DefaultRemoteTimeout when zero).
	RemoteTimeout time.Duration
}

// SubqueryStep is the step of a subquery written without one (x[30m:]): the
// minute SkyTrail writes a sample for. The engine has no default; without
// one it dereferenced a nil function and the request died with its
// connection.
const SubqueryStep = time.Minute

// Store is an open metric store: a TSDB on disk (or a remote store) and a
// PromQL engine over it.
type Store struct {
	db     *tsdb.DB     // nil with a remote store
	remote *remoteStore // nil with the embedded TSDB
	engine *promql.Engine
	dir    string
	// writeSeconds times the analysis' writes of figures.
	writeSeconds prometheus.Histogram
	disk         *diskspace.Guard

	mu sync.RWMutex // guards sources and classic
	// sources serve, beside the TSDB, what their owners hold in memory and
	// have not written yet (the analysis' open minutes).
	sources []storage.Queryable
	// classic names the native histograms served with a classic view.
	classic map[string]bool
}

// ErrDiskFull is what writes fail with while the disk has less than
// Config.MinFreeDiskBytes free; the error names the directory, the free
// bytes and the limit.
var ErrDiskFull = diskspace.ErrFull

// Open opens (or creates) the TSDB in cfg.Dir. Samples in the write-ahead
// log are replayed, so a restart keeps what was written before it.
func Open(cfg Config) (*Store, error) {
	if cfg.WriteURL != "" || cfg.QueryURL != "" {
		return openRemote(cfg)
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	// A minute's figures may be flushed a little late (spans arrive late,
	// joins wait for their partner); accept samples that far behind.
	opts.OutOfOrderTimeWindow = (10 * time.Minute).Milliseconds()
	db, err := tsdb.Open(cfg.Dir, slog.New(slog.DiscardHandler), cfg.Registerer, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the metric TSDB in %s: %w", cfg.Dir, err)
	}
	s := &Store{db: db, engine: newEngine(), dir: cfg.Dir, writeSeconds: newWriteSeconds(),
		disk: diskspace.NewGuard("metrics", cfg.Dir, cfg.MinFreeDiskBytes, cfg.Logger, cfg.Registerer),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.writeSeconds, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "skytrail_metricstore_head_series",
			Help: "Series in the metric TSDB's in-memory head block.",
		}, func() float64 { return float64(s.HeadSeries()) }))
	}
	return s, nil
}

// openRemote opens a store over a remote one: nothing on disk.
func openRemote(cfg Config) (*Store, error) {
	r, err := newRemote(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{remote: r, engine: newEngine(), writeSeconds: newWriteSeconds()}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.writeSeconds, r.failures)
	}
	return s, nil
}

func newEngine() *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		Logger:               slog.New(slog.DiscardHandler),
		MaxSamples:           50_000_000,
		Timeout:              2 * time.Minute,
		LookbackDelta:        LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		NoStepSubqueryIntervalFn: func(int64) int64 {
			return SubqueryStep.Milliseconds()
		},
	})
}

func newWriteSeconds() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                        "skytrail_metricstore_write_seconds",
		Help:                        "Time to write one flush of analysis figures into the metric store.",
		NativeHistogramBucketFactor: 1.1,
		Buckets:                     prometheus.ExponentialBuckets(0.0001, 4, 9),
	})
}

// Close writes the in-memory head out (so the next Open finds it without a
// long replay) and closes the TSDB.
func (s *Store) Close() error {
	if s.remote != nil {
		return nil
	}
	s.disk.Close()
	return s.db.Close()
}

// Writable is nil while the store takes samples, and an error wrapping
// ErrDiskFull while its disk is too full. Check it before Appender: on a
// full disk the TSDB's WAL write fails softly (Commit returns the error),
// but a head chunk it then cannot write makes it panic, in a goroutine of
// its own. A write that fails after the check passed (the disk filled by
// someone else) returns its error from Commit and may be tried again.
//
// A remote store is always writable as far as this check goes: its
// failures come from Commit, wrapping ErrUnavailable.
func (s *Store) Writable() error {
	if s.remote != nil {
		return nil
	}
	return s.disk.Err()
}

// ReadOnly reports whether the store refuses writes for lack of disk space.
func (s *Store) ReadOnly() bool { return s.remote == nil && s.disk.ReadOnly() }

// Dir is the directory the store lives in ("" for a remote store).
func (s *Store) Dir() string { return s.dir }

// Remote says whether the samples live in a remote store.
func (s *Store) Remote() bool { return s.remote != nil }

// Appender starts a write transaction; Commit makes its samples visible.
// With a remote store, Commit sends them in one remote-write request and
// fails with an error wrapping ErrUnavailable when the store could not take
// them (nothing of the transaction is then known to be stored: write it
// again).
func (s *Store) Appender(ctx context.Context) storage.Appender {
	if s.remote != nil {
		return s.remote.appender(ctx)
	}
	return s.db.Appender(ctx)
}

// ObserveWrite records how long one write of figures took, for /metrics.
func (s *Store) ObserveWrite(d time.Duration) { s.writeSeconds.Observe(d.Seconds()) }

// AddSource adds q to what queries read: samples its owner holds in memory
// before writing them. Where q and the TSDB both have a sample of a series
// at the same time, one of them is read (they must be the same).
func (s *Store) AddSource(q storage.Queryable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources = append(s.sources, q)
}

// ServeClassic has queries read, for each native histogram named, the
// classic series a Prometheus histogram has, derived from its samples:
// <name>_bucket (le: ClassicBounds), <name>_count and <name>_sum.
func (s *Store) ServeClassic(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	classic := maps.Clone(s.classic) // queries may be reading the old one
	if classic == nil {
		classic = map[string]bool{}
	}
	for _, n := range names {
		classic[n] = true
	}
	s.classic = classic
}

// Written is what was written to the embedded TSDB alone, without what
// the sources hold in memory or the classic view; nil with a remote store.
// The analysis' figure cache reads the minutes it keeps from it.
func (s *Store) Written() storage.Queryable {
	if s.remote != nil {
		return nil
	}
	return s.db
}

// Queryable is the store's data for the PromQL engine and for series and
// label look-ups: the TSDB, what the sources hold in memory, and the
// classic view of the histograms ServeClassic names.
func (s *Store) Queryable() storage.Queryable {
	return storage.QueryableFunc(func(mint, maxt int64) (storage.Querier, error) {
		var db storage.Querier = &remoteQuerier{r: s.remote, mint: mint, maxt: maxt}
		if s.remote == nil {
			var err error
			if db, err = s.db.Querier(mint, maxt); err != nil {
				return nil, err
			}
		}
		s.mu.RLock()
		sources, classic := s.sources, s.classic
		s.mu.RUnlock()
		var q storage.Querier = db
		if len(sources) > 0 {
			qs := []storage.Querier{db}
			for _, src := range sources {
				sq, err := src.Querier(mint, maxt)
				if err != nil {
					for _, q := range qs {
						_ = q.Close()
					}
					return nil, err
				}
				if s.remote != nil {
					// What this node holds in memory is this node's: it
					// merges with what it wrote, not with other nodes'.
					sq = &nodeQuerier{Querier: sq, node: s.remote.node}
				}
				qs = append(qs, sq)
			}
			q = storage.NewMergeQuerier(qs, nil, storage.ChainedSeriesMerge)
		}
		if len(classic) > 0 {
			q = &classicQuerier{Querier: q, names: classic}
		}
		return q, nil
	})
}

// Engine is the PromQL engine queries over this store run on.
func (s *Store) Engine() *promql.Engine { return s.engine }

// MaxTime is the newest sample's timestamp (Unix ms), math.MinInt64 when
// the store is empty.
//
// With a remote store it is the newest of this node's per-minute service
// figures in the last hour, math.MinInt64 also when the store does not
// answer (it is read once, at start).
func (s *Store) MaxTime() int64 {
	if s.remote != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.remote.timeout)
		defer cancel()
		t, _ := s.remote.maxTime(ctx, time.Now(), remoteMaxTimeSeries)
		return t
	}
	t := s.db.Head().MaxTime()
	for _, b := range s.db.Blocks() {
		t = max(t, b.Meta().MaxTime)
	}
	return t
}

// HeadSeries is the number of series in the in-memory head block.
// (0 with a remote store).
func (s *Store) HeadSeries() uint64 {
	if s.remote != nil {
		return 0
	}
	return s.db.Head().NumSeries()
}

// InstantQuery runs a PromQL expression at ts.
func (s *Store) InstantQuery(ctx context.Context, expr string, ts time.Time) (promql.Vector, error) {
	q, err := s.engine.NewInstantQuery(ctx, s.Queryable(), nil, expr, ts)
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", expr, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("running %q: %w", expr, res.Err)
	}
	v, err := res.Vector()
	if err != nil {
		return nil, fmt.Errorf("running %q: %w", expr, err)
	}
	return v, nil
}
