package metricstore

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/prometheus/tsdb/wlog"
)

// Sync makes every sample committed so far durable against power loss. A
// commit writes its samples to the TSDB's own write-ahead log (and
// out-of-order ones to its write-behind log), which survives the process
// being killed but is fsynced only when a segment is full; Sync fsyncs the
// segments being written (fsync covers a file's data whoever wrote it), for
// SkyTrail's write-ahead log to checkpoint on.
//
// A remote store has nothing to sync: a commit returned once the store
// acknowledged it, and what it does with it then is its own durability.
func (s *Store) Sync() error {
	if s.remote != nil {
		return nil
	}
	for _, dir := range []string{filepath.Join(s.dir, "wal"), filepath.Join(s.dir, wlog.WblDirName)} {
		_, last, err := wlog.Segments(dir)
		if os.IsNotExist(err) || (err == nil && last < 0) {
			continue
		}
		if err == nil {
			err = syncFile(wlog.SegmentName(dir, last))
		}
		if err != nil {
			return fmt.Errorf("sync the metric TSDB's log in %s: %w", dir, err)
		}
	}
	return nil
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
