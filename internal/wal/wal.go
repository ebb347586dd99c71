// Package wal is SkyTrail's write-ahead log: every batch the front door
// accepts is written here before any consumer sees it, and fsynced (while
// the consumers take it) before the request is acknowledged, so an
// acknowledged request survives the process dying and a power loss. At
// start the records the stores had not made durable are replayed; a
// checkpoint, once the stores say everything before it is durable, deletes
// the segments before it.
//
// The framing is Prometheus' tsdb/wlog, the TSDB's own WAL: 32 KiB pages in
// numbered segment files, each record fragment with a CRC32-Castagnoli, a
// reader that reports the segment and offset of the first bad record, and a
// repair that cuts the log there. This package adds what a request path
// needs on top: group commit (every append waiting at a moment shares one
// write, and every group written while an fsync ran shares the next
// fsync, which runs beside the next write), checkpoints that start a new segment at a moment
// every appended record reached its consumers (so a checkpoint is a
// segment number, kept in a file), and the disk-space guard.
package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/skytrail/skytrail/internal/storage/diskspace"
)

// Config sets up a log.
type Config struct {
	// Dir holds the segments and the checkpoint file; created when missing.
	Dir string
	// SyncInterval is 0 for an fsync before every acknowledgement (group
	// commit: appends waiting together share one). Above 0, an append
	// returns once its record is written to the operating system, which
	// survives the process being killed, and the log is fsynced every
	// SyncInterval, so a power loss can lose that much.
	SyncInterval time.Duration
	// SegmentSize is the size at which a new segment file is started
	// (default 16 MiB). Checkpoints delete whole segments.
	SegmentSize int
	// Disk, when set, refuses appends while the data directory's disk is
	// under --min-free-disk, with its retryable error.
	Disk *diskspace.Guard
	// Logger receives the cut of a corrupt tail (default slog.Default()).
	Logger *slog.Logger
	// Registerer takes the log's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
}

// DefaultSegmentSize is the segment size when Config.SegmentSize is 0.
const DefaultSegmentSize = 16 << 20

// ErrClosed is what Append returns once the log is closed.
var ErrClosed = errors.New("the write-ahead log is closed")

// Log is an open write-ahead log.
type Log struct {
	cfg Config
	log *slog.Logger
	w   *wlog.WL

	// gate is held shared by each append from before it is queued until
	// its batch reached every consumer (Appended.Done), and exclusively by
	// a checkpoint while it starts a new segment: so at that moment every
	// record in the segments before has reached every consumer.
	gate sync.RWMutex

	mu      sync.Mutex // guards the two queues below and closing
	queue   []*Appended
	wake    chan struct{}
	closing bool
	// unsynced are the written groups waiting for the syncer's next fsync.
	unsynced []*fsync
	syncWake chan struct{}

	// wmu is held by the writer (the committer goroutine, and Close after
	// it ended) and by a checkpoint while it starts a segment.
	wmu sync.Mutex
	// written counts the groups written; smu's holder compares it with
	// syncedUpTo to skip an fsync that would sync nothing.
	written atomic.Uint64

	// smu guards the syncer's state: the segment the last fsync covered
	// and how far it went. The syncer goroutine, the interval's ticker,
	// Close and a checkpoint take it.
	smu        sync.Mutex
	segment    int
	syncedUpTo uint64

	// checkpoint is the first segment whose records the consumers may not
	// have made durable: Replay reads from it.
	checkpoint int
	opened     openReport

	done, syncDone chan struct{}
	m              *metrics
}

// Appended is a record the log took: once Append returns it is written to
// the operating system, which outlives the process (a kill -9 cannot lose
// it); Durable waits for the fsync that makes it survive a power loss too.
// The caller hands the batch to its consumers meanwhile, so the fsync and
// the consumers' work overlap, and calls Done once they have it.
type Appended struct {
	l    *Log
	rec  []byte
	err  error         // the write's
	sync *fsync        // the fsync covering it; nil with an interval
	wrot chan struct{} // closed once written (or failed)
	once sync.Once
}

// fsync is one fsync shared by every group written before it started.
type fsync struct {
	err  error
	done chan struct{}
}

// Durable waits until the record is fsynced and returns the fsync's error
// (a failure is retryable: the batch may then reach the stores twice, once
// now and once from the client's retry, but is never lost). With
// Config.SyncInterval it returns at once: the interval's fsync covers the
// record later.
func (a *Appended) Durable() error {
	if a.sync == nil {
		return nil
	}
	<-a.sync.done
	return a.sync.err
}

// Done says the record's batch reached every consumer (or failed to): a
// checkpoint waits for it. Calling it again does nothing.
func (a *Appended) Done() { a.once.Do(a.l.gate.RUnlock) }

// openReport is what Open found, for Replay and the log line.
type openReport struct {
	records    int
	cutBytes   int64
	cutSegment int
	cutOffset  int64
	cutErr     error
}

// Open opens (or creates) the log in cfg.Dir. It reads every record once to
// check them: a torn or corrupt tail (a record whose checksum does not
// match, one cut short by a crash) is cut off, with a warning saying how
// many bytes were dropped, and the log opens with what came before it.
// Call Replay before the first Append.
func Open(cfg Config) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open the write-ahead log: no directory given")
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	// wlog requires whole pages.
	const page = 32 << 10
	cfg.SegmentSize = (cfg.SegmentSize + page - 1) / page * page
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("open the write-ahead log: %w", err)
	}
	l := &Log{cfg: cfg, log: cfg.Logger.With("component", "wal"), wake: make(chan struct{}, 1), syncWake: make(chan struct{}, 1),
		done: make(chan struct{}), syncDone: make(chan struct{})}
	cp, err := readCheckpoint(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open the write-ahead log: %w", err)
	}
	sizes, err := segmentSizes(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open the write-ahead log in %s: %w", cfg.Dir, err)
	}
	// Nothing of wlog's own metrics: SkyTrail's are below.
	w, err := wlog.NewSize(nil, nil, cfg.Dir, cfg.SegmentSize, compression.None)
	if err != nil {
		return nil, fmt.Errorf("open the write-ahead log in %s: %w", cfg.Dir, err)
	}
	l.w = w
	_, l.segment, _ = wlog.Segments(cfg.Dir) // the one NewSize started
	// Records appended from now on are in it: whatever the file says (a
	// hand-edited one), they are replayed.
	l.checkpoint = min(cp, l.segment)
	// Segments before the checkpoint are durable in the stores; the last
	// checkpoint may have been cut short before it deleted them.
	if err := w.Truncate(l.checkpoint); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open the write-ahead log in %s: delete segments before the checkpoint: %w", cfg.Dir, err)
	}
	for i := range sizes {
		if i < l.checkpoint {
			delete(sizes, i)
		}
	}
	rep, err := l.check(sizes)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	l.opened = rep
	_, l.segment, _ = wlog.Segments(cfg.Dir)
	l.m = newMetrics(cfg.Registerer, l)
	if rep.cutErr != nil {
		l.m.cutBytes.Add(float64(rep.cutBytes))
		l.log.Warn("write-ahead log: cut a torn or corrupt tail; the records before it are replayed, the bytes after it are dropped (a crash in the middle of a write leaves one; see docs/troubleshooting.md)",
			"dir", cfg.Dir, "segment", rep.cutSegment, "offset", rep.cutOffset, "dropped_bytes", rep.cutBytes,
			"records_kept", rep.records, "cause", rep.cutErr.Error())
	}
	go l.commit()
	go l.syncer()
	if cfg.SyncInterval > 0 {
		go l.syncEvery(cfg.SyncInterval)
	}
	return l, nil
}

// check reads every record to replay, cutting the log at the first bad
// one.
func (l *Log) check(sizes map[int]int64) (openReport, error) {
	var rep openReport
	// Where the last good record ended: what is after it is cut.
	goodSeg, goodOff := -1, int64(0)
	err := l.read(func(_ []byte, seg int, off int64) error {
		goodSeg, goodOff = seg, off
		rep.records++
		return nil
	})
	var cerr *wlog.CorruptionErr
	if err == nil || !errors.As(err, &cerr) || cerr.Segment < 0 {
		if err != nil {
			return rep, fmt.Errorf("read the write-ahead log in %s: %w", l.cfg.Dir, err)
		}
		return rep, nil
	}
	rep.cutErr, rep.cutSegment, rep.cutOffset = cerr, cerr.Segment, cerr.Offset
	for i, size := range sizes {
		switch {
		case i == goodSeg:
			rep.cutBytes += max(size-goodOff, 0)
		case i > goodSeg:
			rep.cutBytes += size
		}
	}
	// Repair rewrites the segment up to the record before the offset and
	// deletes the later ones (the empty one wlog.NewSize started too).
	// Records it keeps were counted above only if they came before the
	// offset, which they did.
	if err := l.w.Repair(cerr); err != nil {
		return rep, fmt.Errorf("cut the corrupt tail of the write-ahead log in %s (segment %d, offset %d): %w", l.cfg.Dir, cerr.Segment, cerr.Offset, err)
	}
	return rep, nil
}

// read calls fn for every record from the checkpoint on, in order, until
// the first error (a *wlog.CorruptionErr for a bad record).
func (l *Log) read(fn func(rec []byte, segment int, offset int64) error) error {
	first, last, err := wlog.Segments(l.cfg.Dir)
	if err != nil || first < 0 {
		return err
	}
	first = max(first, l.checkpoint)
	if first > last {
		return nil
	}
	sr, err := wlog.NewSegmentsRangeReader(wlog.SegmentRange{Dir: l.cfg.Dir, First: first, Last: last})
	if err != nil {
		return err
	}
	defer sr.Close()
	r := wlog.NewReader(sr)
	for r.Next() {
		if err := fn(r.Record(), r.Segment(), r.Offset()); err != nil {
			return err
		}
	}
	return r.Err()
}

// Replay calls fn with every record after the last checkpoint, oldest
// first (data is valid only during the call), and returns how many. An
// error from fn stops the replay and is returned.
func (l *Log) Replay(fn func(data []byte) error) (int, error) {
	n := 0
	err := l.read(func(rec []byte, _ int, _ int64) error {
		n++
		return fn(rec)
	})
	return n, err
}

// Append writes data as one record and returns once the operating system
// has it, with the record to wait on for its fsync (Appended.Durable) and
// to call Done on once its batch reached every consumer. Appends queued
// while the last group was written share one write, and every group
// written while an fsync ran shares the next one. data must not change
// until Durable returns. It fails, writing nothing, while the disk guard
// says the disk is full (an error wrapping diskspace.ErrFull), once the log
// is closed, and when the write failed. ctx ending does not cancel a write
// already queued.
func (l *Log) Append(ctx context.Context, data []byte) (*Appended, error) {
	if err := l.cfg.Disk.Err(); err != nil {
		l.m.refused.Inc()
		return nil, fmt.Errorf("appending to the write-ahead log: %w", err)
	}
	a := &Appended{l: l, rec: data, wrot: make(chan struct{})}
	l.gate.RLock()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		l.gate.RUnlock()
		return nil, ErrClosed
	}
	l.queue = append(l.queue, a)
	l.mu.Unlock()
	signal(l.wake)
	<-a.wrot
	if a.err != nil {
		l.gate.RUnlock()
		return nil, a.err
	}
	return a, nil
}

// signal wakes the goroutine waiting on c, if it is not awake already.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// commit is the one goroutine that writes: it takes every append queued
// while it wrote the last group and writes them with one write. Without an
// interval it then hands the group to the syncer and goes on writing the
// next group while the fsync runs.
func (l *Log) commit() {
	defer close(l.done)
	for {
		<-l.wake
		l.mu.Lock()
		group := l.queue
		l.queue = nil
		closing := l.closing
		l.mu.Unlock()
		if len(group) > 0 {
			err := l.write(group)
			var f *fsync
			if err == nil && l.cfg.SyncInterval == 0 {
				f = &fsync{done: make(chan struct{})}
				l.mu.Lock()
				l.unsynced = append(l.unsynced, f)
				l.mu.Unlock()
				signal(l.syncWake)
			}
			for _, a := range group {
				a.err, a.sync = err, f
				close(a.wrot)
			}
		}
		if closing {
			return
		}
	}
}

// syncer is the goroutine that fsyncs without an interval: each fsync
// covers every group written before it started.
func (l *Log) syncer() {
	defer close(l.syncDone)
	for {
		_, open := <-l.syncWake
		l.mu.Lock()
		waiting := l.unsynced
		l.unsynced = nil
		l.mu.Unlock()
		if len(waiting) > 0 {
			err := l.timedSync()
			for _, f := range waiting {
				f.err = err
				close(f.done)
			}
		}
		if !open {
			return
		}
	}
}

func (l *Log) write(group []*Appended) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	start := time.Now()
	recs := make([][]byte, len(group))
	bytes := 0
	for i, a := range group {
		recs[i] = a.rec
		bytes += len(a.rec)
	}
	if err := l.w.Log(recs...); err != nil {
		l.m.failures.Inc()
		return fmt.Errorf("writing %d records to the write-ahead log: %w", len(group), err)
	}
	l.written.Add(1)
	l.m.groups.Inc()
	l.m.records.Add(float64(len(group)))
	l.m.bytes.Add(float64(bytes))
	l.m.commitSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// sync fsyncs every group written before it started. When a write started
// a new segment since the last fsync, the segments before it are fsynced
// too (wlog does it for them in the background) and the directory, so the
// new file's name is durable. It fsyncs the segment through a descriptor of
// its own, not wlog's, so that a write (which holds wlog's lock) and an
// fsync run at the same time. The caller holds smu.
func (l *Log) sync() error {
	upTo := l.written.Load()
	if upTo == l.syncedUpTo {
		return nil
	}
	_, seg, err := wlog.Segments(l.cfg.Dir)
	if err != nil {
		l.m.failures.Inc()
		return fmt.Errorf("syncing the write-ahead log: %w", err)
	}
	for i := l.segment; i <= seg; i++ {
		if err := syncFile(wlog.SegmentName(l.cfg.Dir, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.m.failures.Inc()
			return fmt.Errorf("syncing the write-ahead log: %w", err)
		}
	}
	if seg != l.segment {
		if err := syncFile(l.cfg.Dir); err != nil {
			l.m.failures.Inc()
			return fmt.Errorf("syncing the write-ahead log's directory: %w", err)
		}
		l.segment = seg
	}
	l.syncedUpTo = upTo
	return nil
}

// timedSync is sync under smu, counted and timed.
func (l *Log) timedSync() error {
	start := time.Now()
	l.smu.Lock()
	err := l.sync()
	l.smu.Unlock()
	l.m.syncs.Inc()
	l.m.syncSeconds.Observe(time.Since(start).Seconds())
	return err
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (l *Log) syncEvery(d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			if err := l.timedSync(); err != nil {
				l.log.Error("write-ahead log: periodic fsync failed", "err", err)
			}
		}
	}
}

// Checkpoint makes the log shorter: it waits for a moment when every
// appended record has reached every consumer, starts a new segment there
// and calls quiesced (appends wait meanwhile, so quiesced must be quick: a
// snapshot of memory, no I/O). Then it calls durable, which must make
// durable everything the consumers took up to that moment (flush the
// stores), and only if durable succeeds records the checkpoint (the new
// segment) and deletes the segments before it. Records after the
// checkpoint are replayed at the next start.
func (l *Log) Checkpoint(quiesced func(), durable func() error) error {
	start := time.Now()
	l.gate.Lock()
	l.wmu.Lock()
	l.smu.Lock()
	// Later records go to a new segment, so the ones before can go whole.
	next, err := l.w.NextSegmentSync()
	if err == nil {
		err = syncFile(l.cfg.Dir)
	}
	if err == nil {
		l.segment = next
	}
	l.smu.Unlock()
	l.wmu.Unlock()
	if err != nil {
		l.gate.Unlock()
		return fmt.Errorf("checkpointing the write-ahead log: starting a segment: %w", err)
	}
	if quiesced != nil {
		quiesced()
	}
	l.gate.Unlock()
	if durable != nil {
		if err := durable(); err != nil {
			return fmt.Errorf("checkpointing the write-ahead log: %w", err)
		}
	}
	if err := writeCheckpoint(l.cfg.Dir, next); err != nil {
		return fmt.Errorf("checkpointing the write-ahead log: %w", err)
	}
	l.checkpoint = next
	if err := l.w.Truncate(next); err != nil {
		return fmt.Errorf("deleting write-ahead log segments before %d: %w", next, err)
	}
	l.m.checkpoints.Inc()
	l.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// Close writes what is queued and closes the log. It does not checkpoint:
// the caller does, once the stores are closed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.done
	// Nothing is written any more: the syncer fsyncs what it was handed
	// and ends.
	close(l.syncWake)
	<-l.syncDone
	l.smu.Lock()
	err := l.sync()
	l.smu.Unlock()
	return errors.Join(err, l.w.Close())
}

// Size is the bytes the log's segments take.
func (l *Log) Size() int64 {
	sizes, _ := segmentSizes(l.cfg.Dir)
	var n int64
	for _, s := range sizes {
		n += s
	}
	return n
}

// Opened says what Open found: the records read and the bytes of a corrupt
// tail it cut (0 without one).
func (l *Log) Opened() (records int, cutBytes int64) { return l.opened.records, l.opened.cutBytes }

func segmentSizes(dir string) (map[int]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	sizes := map[int]int64{}
	for _, e := range entries {
		k, err := strconv.Atoi(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		sizes[k] = info.Size()
	}
	return sizes, nil
}

// The checkpoint file holds the first segment whose records the stores may
// not have made durable, as decimal text, replaced atomically.
const checkpointFile = "checkpoint"

func readCheckpoint(dir string) (int, error) {
	raw, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	seg, err := strconv.Atoi(string(raw))
	if err != nil || seg < 0 {
		// Written by rename, so never torn; unreadable means altered by
		// hand. Replaying everything is the safe side.
		return 0, nil
	}
	return seg, nil
}

func writeCheckpoint(dir string, seg int) error {
	tmp := filepath.Join(dir, checkpointFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, strconv.Itoa(seg)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointFile)); err != nil {
		return err
	}
	return syncFile(dir)
}
