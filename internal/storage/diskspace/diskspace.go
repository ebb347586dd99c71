// Package diskspace keeps SkyTrail's stores from filling their disk. Neither
// engine survives a full disk: logstorage panics when it cannot write a part
// ("no space left on device"), and the Prometheus TSDB panics when it cannot
// write a head chunk. So a Guard watches the free space under a store's
// directory and turns the store read-only while it is under a limit (writes
// are refused with ErrFull, which receivers answer with a retryable error;
// queries go on), and writable again, by itself, once space returns.
package diskspace

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMinFree is the free space a store keeps (--min-free-disk). It has
// to hold what is already accepted when the guard trips and what the
// engines write on their own afterwards, all of it written without a check:
//   - span rows buffered in memory: logstorage keeps rows up to a second in
//     its row buffers, then a flush interval (1 s) as in-memory parts, and
//     the guard sees free space at most PollInterval late. At the 138k
//     spans/s a 2-core machine ingests (issue 18) and 50 bytes a span on
//     disk (docs/benchmarks.md; parts one second old measured 40-50), 2.2 s
//     of rows is about 15 MiB;
//   - background merges of span parts, whose output exists beside their
//     input until the merge ends; logstorage starts one only when the free
//     space holds its input;
//   - the TSDB's head compaction every two hours (a block of two hours of
//     samples, estimated at about 30 MB for 100k series of one sample a
//     minute), WAL checkpoints and head chunks of samples written before
//     the trip.
//
// 256 MiB is many times the sum on this machine and leaves room for one
// several times faster; it is little on any disk meant to keep a week of
// spans. Raise it with ingest rates far above 1M spans/s or millions of
// metric series.
const DefaultMinFree = 256 << 20

// PollInterval is how often a Guard reads the free space. A statfs call
// costs about a microsecond; polling keeps it (and the state change) off the
// write path, where a batch only loads an atomic flag.
const PollInterval = 200 * time.Millisecond

// ErrFull is what writes fail with while a store is read-only for lack of
// disk space; the error says where, how much is free, and the limit.
var ErrFull = errors.New("not enough free disk space")

// Guard tracks whether a store's disk has room for more data.
type Guard struct {
	store, dir string
	min        uint64
	// resume is the free space at which a read-only store takes data
	// again: a little above min, so that a disk hovering at the limit does
	// not switch (and log) at every merge.
	resume uint64
	log    *slog.Logger

	readOnly atomic.Bool
	free     atomic.Uint64
	statErr  bool // only the polling goroutine touches it

	stop, done chan struct{}
}

// NewGuard watches dir for the store named store ("spans", "metrics"),
// read-only while less than minFree bytes are free there; minFree <= 0 turns
// the guard off. It reads the free space once before returning, so a store
// opened on a full disk is read-only from its first write. reg, when not
// nil, takes skytrail_storage_read_only{store}.
func NewGuard(store, dir string, minFree int64, log *slog.Logger, reg prometheus.Registerer) *Guard {
	if log == nil {
		log = slog.Default()
	}
	g := &Guard{store: store, dir: dir, log: log}
	if reg != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "skytrail_storage_read_only",
			Help:        "1 while a store refuses writes because its disk has less free space than --min-free-disk.",
			ConstLabels: prometheus.Labels{"store": store},
		}, func() float64 {
			if g.ReadOnly() {
				return 1
			}
			return 0
		}))
	}
	if minFree <= 0 {
		return g
	}
	g.min = uint64(minFree)
	g.resume = g.min + g.min/16
	g.check()
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	go g.run()
	return g
}

// Err is nil while the store may take data, and an error wrapping ErrFull
// while it is read-only.
func (g *Guard) Err() error {
	if g == nil || !g.readOnly.Load() {
		return nil
	}
	return fmt.Errorf("%w: %s storage is read-only with %s free in %s, under the %s it keeps free (--min-free-disk); it takes data again once space is freed",
		ErrFull, g.store, Bytes(g.free.Load()), g.dir, Bytes(g.min))
}

// ReadOnly reports whether the store refuses writes for lack of space.
func (g *Guard) ReadOnly() bool { return g != nil && g.readOnly.Load() }

// Close stops watching.
func (g *Guard) Close() {
	if g == nil || g.stop == nil {
		return
	}
	close(g.stop)
	<-g.done
	g.stop = nil
}

func (g *Guard) run() {
	defer close(g.done)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.check()
		}
	}
}

func (g *Guard) check() {
	free, err := Free(g.dir)
	if err != nil {
		// Keep the last state: a passing statfs failure must not stop
		// ingest, and the engines fail loudly on a directory truly gone.
		if !g.statErr {
			g.log.Warn("cannot read the free disk space; keeping the last state", "store", g.store, "dir", g.dir, "err", err)
			g.statErr = true
		}
		return
	}
	g.statErr = false
	g.free.Store(free)
	switch ro := g.readOnly.Load(); {
	case !ro && free < g.min:
		g.readOnly.Store(true)
		g.log.Error("disk almost full: storage is read-only, new data is refused with a retryable error until space is freed; queries go on",
			"store", g.store, "dir", g.dir, "free_bytes", free, "min_free_bytes", g.min)
	case ro && free >= g.resume:
		g.readOnly.Store(false)
		g.log.Info("disk space freed: storage takes data again",
			"store", g.store, "dir", g.dir, "free_bytes", free, "min_free_bytes", g.min)
	}
}

// Free is the space under dir available to the process, in bytes.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("reading the free space of %s: %w", dir, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// Bytes formats n for people: 12.3 MiB.
func Bytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
