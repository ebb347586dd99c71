// Package spanstore keeps spans in VictoriaLogs' logstorage engine, embedded
// in the process, and answers trace lookups and searches over them.
package spanstore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/diskspace"
)

// Tenants separate the kinds of rows in one logstorage instance.
var (
	tenantSpans      = logstorage.TenantID{AccountID: 0, ProjectID: 0}
	tenantTraceIndex = logstorage.TenantID{AccountID: 0, ProjectID: 1}
)

// indexStreamFields spread the trace-ID index over 16 log streams by the
// suffix's first hex digit: a lookup searches one stream, a 16th of the
// index. At 10M spans (bench/ingest) that took trace-by-ID p50 from 5.9 to
// 4.3 ms; 64 and 256 streams did a little better on lookups and worse on
// disk, where the index's smaller blocks compress less well.
var indexStreamFields = []string{fieldIndexBucket}

func indexBucket(suffix string) string { return suffix[:1] }

// Config sets up an embedded store.
type Config struct {
	// Dir holds the data; created when missing.
	Dir string
	// Retention is how long spans are kept; logstorage drops whole days, so
	// the effective retention is rounded up to a day (minimum one day).
	Retention time.Duration
	// FlushInterval is how often buffered rows become searchable on disk
	// (default 1s, the minimum logstorage allows).
	FlushInterval time.Duration
	// Registerer takes the store's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// MinFreeDiskBytes is the free space kept in Dir (0: none): below it
	// the store is read-only, writes fail with ErrDiskFull, queries go on.
	// diskspace.DefaultMinFree says what it must hold.
	MinFreeDiskBytes int64
	// Logger gets the read-only state's changes (default slog.Default()).
	Logger *slog.Logger
}

// futureRetention is how far ahead of now a span may start: SDKs may send
// spans from hosts with skewed clocks, so a day ahead is accepted.
const futureRetention = 24 * time.Hour

// ErrDiskFull is what ConsumeTraces and ConsumeLogs fail with, nothing
// written, while the disk has less than Config.MinFreeDiskBytes free; the
// error names the directory, the free bytes and the limit.
var ErrDiskFull = diskspace.ErrFull

// Store is the span store: embedded (Open), or over a VictoriaLogs server
// or cluster (OpenRemote), with the same rows and queries either way.
type Store struct {
	storage   *logstorage.Storage // nil when remote
	remote    *remote             // nil when embedded
	retention time.Duration
	index     traceIndexFilter
	logIndex  logIndexFilter
	// logIndexSince: when the log index began (openLogIndexSince).
	logIndexSince int64
	columns       *columnBudget
	disk          *diskspace.Guard

	encoders sync.Pool

	streams instanceStreams

	servicesMu sync.Mutex
	services   []string
	servicesAt time.Time

	writeSeconds prometheus.Histogram

	// queryStats, when set (by benchmarks), adds up what the embedded
	// engine's searches read: blocks, rows, bytes of bloom filters.
	queryStats *logstorage.QueryStats
}

// GlobalFlags are the settings of Go's global flag set that the
// VictoriaMetrics libraries under logstorage read, as SkyTrail wants them.
// Those libraries expect the global set parsed before the store opens; the
// program's main applies these and parses it (tests have it parsed by the
// testing package).
var GlobalFlags = map[string]string{
	// Its INFO lines (cache sizes and such) mean nothing to a SkyTrail user.
	"loggerLevel": "WARN",
	// Read part files with pread, not mmap: mapped pages of the files a
	// lookup touches count in the process' RSS (they took peak RSS from 440
	// to 620 MiB at 10M spans), while pread leaves them in the page cache,
	// which the kernel reclaims on its own terms.
	"fs.disableMmap": "true",
}

// Open opens (or creates) the store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("open span store: no data directory given")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	_, err := os.Stat(filepath.Join(cfg.Dir, formatFile))
	fresh := errors.Is(err, fs.ErrNotExist)
	if err := checkFormat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("open span store: %w", err)
	}
	logIndexSince, err := openLogIndexSince(cfg.Dir, fresh, time.Now())
	if err != nil {
		return nil, fmt.Errorf("open span store: %w", err)
	}
	if !flag.Parsed() {
		return nil, fmt.Errorf("open span store: Go's global flag set is not parsed; the VictoriaMetrics libraries under logstorage read it (apply spanstore.GlobalFlags and call flag.Parse first)")
	}
	columns, err := openColumnBudget(cfg.Dir, max(cfg.Retention, 24*time.Hour), time.Now())
	if err != nil {
		return nil, fmt.Errorf("open span store: %w", err)
	}
	s := &Store{
		storage: logstorage.MustOpenStorage(cfg.Dir, &logstorage.StorageConfig{
			Retention:       cfg.Retention,
			FlushInterval:   cfg.FlushInterval,
			FutureRetention: futureRetention,
			// logstorage only reports this in IsReadOnly and does not act on
			// it: MustAddRows stores rows whatever the free space, and a part
			// that then cannot be written panics. s.disk does the refusing,
			// with the same limit but a fresher figure (IsReadOnly's is up to
			// 2 s old); the engine's own view agrees with it.
			MinFreeDiskSpaceBytes: cfg.MinFreeDiskBytes,
		}),
		retention:     max(cfg.Retention, 24*time.Hour),
		columns:       columns,
		logIndexSince: logIndexSince,
		disk:          diskspace.NewGuard("spans", cfg.Dir, cfg.MinFreeDiskBytes, cfg.Logger, cfg.Registerer),
		writeSeconds:  newWriteSeconds(),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.writeSeconds)
	}
	s.index.init()
	return s, nil
}

func newWriteSeconds() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                        "skytrail_spanstore_write_seconds",
		Help:                        "Time to write one batch of spans into span storage.",
		NativeHistogramBucketFactor: 1.1,
		Buckets:                     prometheus.ExponentialBuckets(0.0001, 4, 9),
	})
}

// Close flushes buffered rows to disk and closes the store.
func (s *Store) Close() error {
	s.disk.Close()
	if s.remote != nil {
		s.remote.close()
	} else {
		s.storage.MustClose()
	}
	s.columns.close()
	return nil
}

// Retention is the effective retention (at least a day).
func (s *Store) Retention() time.Duration { return s.retention }

// Limits states what the store can keep, for the front door to refuse the
// rest: logstorage drops a row it cannot keep with only a log line, after
// the client was told its spans were stored.
func (s *Store) Limits() pipeline.StorageLimits {
	return pipeline.StorageLimits{MaxKeyBytes: MaxAttributeKeyLen, MaxAge: s.retention, MaxFuture: futureRetention, MaxRowBytes: maxRowBytes}
}

// maxRowBytes is the most one span may take stored. logstorage drops a row
// whose fields, names and values together, are over 2 MiB
// (maxUncompressedBlockSize, lib/logstorage/consts.go) with only a warning;
// 4 KiB is left for the fields the pipeline does not count (IDs, times,
// kind, types).
const maxRowBytes = 2<<20 - 4<<10

// ReadOnly reports whether the store refuses writes for lack of disk space.
func (s *Store) ReadOnly() bool { return s.disk.ReadOnly() }

// ConsumeTraces writes every span of td. Spans must have been validated
// against Limits (the pipeline does): nothing invalid may reach logstorage.
// While the disk is too full it writes nothing and fails with ErrDiskFull,
// which the client retries.
func (s *Store) ConsumeTraces(ctx context.Context, td pipeline.Traces) error {
	if err := s.disk.Err(); err != nil {
		// Before anything is encoded: the trace-ID index filter must not
		// remember windows whose rows were never written.
		return err
	}
	start := time.Now()
	e, _ := s.encoders.Get().(*rowEncoder)
	if e == nil {
		e = newRowEncoder(s.columns)
	}
	lr := logstorage.GetLogRows(nil, nil, nil, nil, "") // stream fields given per row
	now := time.Now()
	e.now = now
	idx := logstorage.GetLogRows(indexStreamFields, nil, nil, nil, "")
	windows := make(map[pcommon.TraceID]traceWindow)

	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		e.setResource(rs.Resource(), td.Resources[i].Service)
		streamFields := s.streams.streamFields(e.service, e.resource(), now)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			e.setScope(ss.Scope())
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				startNs := int64(span.StartTimestamp())
				lr.MustAdd(tenantSpans, startNs, e.encodeSpan(span), streamFields)
				w, ok := windows[span.TraceID()]
				endNs := int64(span.EndTimestamp())
				if !ok {
					w = traceWindow{start: startNs, end: endNs}
				} else {
					w.start = min(w.start, startNs)
					w.end = max(w.end, endNs)
				}
				windows[span.TraceID()] = w
			}
		}
	}
	// The column names the rows use must be on disk before the rows reach
	// logstorage (see columns.go), and before the trace-ID index marks their
	// windows as covered: on an error nothing of the batch is kept, and the
	// client's retry writes all of it.
	if err := e.admitted.sync(s.columns); err != nil {
		logstorage.PutLogRows(lr)
		logstorage.PutLogRows(idx)
		s.encoders.Put(e)
		return fmt.Errorf("store spans: %w", err)
	}
	s.addIndexRows(idx, windows, e)
	err := s.addRows(ctx, lr, idx)
	logstorage.PutLogRows(lr)
	logstorage.PutLogRows(idx)
	s.encoders.Put(e)
	if err != nil {
		return fmt.Errorf("store spans: %w", err)
	}
	if s.remote != nil {
		// Only now, with the index rows acknowledged, may the filter skip
		// them for later batches (see addIndexRows).
		for id, w := range windows {
			s.index.needsRow(id, w)
		}
	}
	s.writeSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// addRows hands rows to the engine: the embedded one takes them at once,
// the remote one once the server acknowledged them, or fails.
func (s *Store) addRows(ctx context.Context, rows ...*logstorage.LogRows) error {
	if s.remote != nil {
		return s.remote.addRows(ctx, rows...)
	}
	for _, lr := range rows {
		s.storage.MustAddRows(lr)
	}
	return nil
}

// addIndexRows adds a trace-ID index row for every trace whose time window
// the index does not cover yet. The embedded engine cannot fail a write, so
// the filter records the windows at once; a remote write can fail, and the
// filter records them after it succeeded (ConsumeTraces), lest a retried
// batch skip the index rows that were never stored.
func (s *Store) addIndexRows(idx *logstorage.LogRows, windows map[pcommon.TraceID]traceWindow, e *rowEncoder) {
	for id, w := range windows {
		if s.remote != nil {
			if known, ok := s.index.lookup(id); ok && known.covers(w) {
				continue
			}
		} else if !s.index.needsRow(id, w) {
			continue
		}
		e.buf = e.buf[:0]
		fields := e.fields[:0]
		// Rounded outwards, so the window still bounds every span start: the
		// start to the millisecond, the length up to a power of two of
		// milliseconds. Repeating timestamps and a handful of lengths (a
		// dictionary column, no bloom filter) take 3 bytes a trace off an
		// index row; a lookup's wider window costs nothing, since blocks
		// without the trace ID are skipped by their bloom filters.
		start := w.start - w.start%int64(time.Millisecond)
		ms := (w.end - start + int64(time.Millisecond) - 1) / int64(time.Millisecond)
		length := int64(1) << bits.Len64(uint64(max(ms-1, 0)))
		fields = append(fields, e.hexField(fieldTraceSuffix, traceIDSuffix(&id)), e.intField(fieldWindowMs, length))
		fields = append(fields, logstorage.Field{Name: fieldIndexBucket, Value: indexBucket(fields[0].Value)})
		idx.MustAdd(tenantTraceIndex, start, fields, -1)
		e.fields = fields
	}
}

// Flush makes everything written so far searchable (tests, shutdown paths).
func (s *Store) Flush() {
	if s.remote != nil {
		s.remote.forceFlush()
		return
	}
	s.storage.DebugFlush()
}
