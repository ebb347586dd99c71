package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/analysis"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/diskspace"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/wal"
)

// journal is the write-ahead log and what checkpoints it: the span store
// and the metric store made durable, and the analysis' running totals
// written as they stood at the checkpoint's moment.
type journal struct {
	log      *wal.Log
	disk     *diskspace.Guard
	spans    *spanstore.Store
	metrics  *metricstore.Store
	analyser *analysis.Analyser
	logger   *slog.Logger
	every    time.Duration
	// replayed is set once the records of the last run reached the
	// stores: before that, emptying the log would lose them.
	replayed bool

	stop, done chan struct{}
}

// openJournal opens the write-ahead log in the tenant's data directory.
func (c *core) openJournal(cfg Config, reg prometheus.Registerer) (*journal, error) {
	dir := filepath.Join(cfg.DataDir, "wal")
	disk := diskspace.NewGuard("wal", cfg.DataDir, cfg.MinFreeDisk, c.log, reg)
	l, err := wal.Open(wal.Config{Dir: dir, SyncInterval: cfg.WALSync, Disk: disk, Logger: c.log, Registerer: reg})
	if err != nil {
		disk.Close()
		return nil, err
	}
	return &journal{log: l, disk: disk, spans: c.Spans, metrics: c.Metrics, analyser: c.Analyser, logger: c.log,
		every: c.Analyser.CounterInterval()}, nil
}

// replay hands every record after the last checkpoint to the pipeline's
// consumers, then checkpoints, before any listener opens. A record that
// does not decode (written by a newer SkyTrail) is logged and skipped; a
// consumer's refusal (a full disk) stops the start, the records kept for
// the next one.
func (j *journal) replay(p *pipeline.Pipeline) error {
	start := time.Now()
	items := map[pipeline.Signal]int{}
	skipped := 0
	seq := 0
	n, err := j.log.Replay(func(rec []byte) error {
		seq++
		sig, k, err := p.Replay(context.Background(), rec)
		if sig == "" && err != nil {
			skipped++
			j.logger.Warn("write-ahead log: skipping a record that does not decode", "record", seq, "err", err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("record %d of the replay: %w", seq, err)
		}
		items[sig] += k
		return nil
	})
	if err != nil {
		return fmt.Errorf("replaying the write-ahead log (the records stay for the next start; free disk space if the stores refuse): %w", err)
	}
	j.replayed = true
	if n > 0 {
		j.logger.Info("write-ahead log replayed: data acknowledged before the last stop and not yet durable in the stores",
			"records", n, "spans", items[pipeline.SignalSpans], "log_records", items[pipeline.SignalLogs],
			"metric_points", items[pipeline.SignalMetrics], "heartbeats", items[pipeline.SignalHeartbeats],
			"skipped", skipped, "took", time.Since(start).Round(time.Millisecond).String())
		if err := j.checkpoint(); err != nil {
			j.logger.Warn("write-ahead log: checkpoint after the replay failed; the records are replayed again at the next start", "err", err)
		}
	}
	return nil
}

// checkpoint makes the stores durable through the log's last record and
// deletes the segments before it.
func (j *journal) checkpoint() error {
	var totals analysis.Totals
	return j.log.Checkpoint(func() {
		totals = j.analyser.SnapshotTotals()
	}, func() error {
		if err := j.spans.Sync(); err != nil {
			return err
		}
		if err := j.analyser.WriteTotals(context.Background(), totals); err != nil {
			return err
		}
		return j.metrics.Sync()
	})
}

// run checkpoints every interval until close.
func (j *journal) run() {
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(j.done)
		t := time.NewTicker(j.every)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-j.stop:
				return
			case <-t.C:
				err := j.checkpoint()
				switch {
				case err != nil && !failing:
					j.logger.Warn("write-ahead log checkpoint failed; the log keeps its records and tries again", "err", err)
				case err == nil && failing:
					j.logger.Info("write-ahead log checkpoints again")
				}
				failing = err != nil
			}
		}
	}()
}

// stopCheckpoints stops the background checkpoints, before the stores
// close under them.
func (j *journal) stopCheckpoints() {
	if j.stop != nil {
		close(j.stop)
		<-j.done
		j.stop = nil
	}
}

// close records, when the stores closed cleanly (so hold everything) after
// the replay succeeded, that the log holds nothing more to replay, and
// closes it.
func (j *journal) close(storesClosed bool) error {
	j.stopCheckpoints()
	var errs []error
	if storesClosed && j.replayed {
		if err := j.log.Checkpoint(nil, nil); err != nil && !errors.Is(err, wal.ErrClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, j.log.Close())
	j.disk.Close()
	return errors.Join(errs...)
}

// warnUnreplayed says, when the write-ahead log is off, that a log a run
// with it on left in dir is not replayed: what it holds beyond what the
// stores made durable is lost unless the server starts with --wal again.
func warnUnreplayed(log *slog.Logger, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() && e.Name() != "checkpoint" && info.Size() > 0 {
			log.Warn("the write-ahead log is off (--wal=false) but the data directory holds one from a run with it on; it is not replayed. Start once with --wal to replay it, or delete the directory", "dir", dir)
			return
		}
	}
}
