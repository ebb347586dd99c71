package wal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb/wlog"

	"github.com/skytrail/skytrail/internal/storage/diskspace"
	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"
	"github.com/skytrail/skytrail/internal/testutil/metrictest"
	"github.com/skytrail/skytrail/internal/wal"
)

func open(t *testing.T, cfg wal.Config) *wal.Log {
	t.Helper()
	l, err := wal.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func appendAll(t *testing.T, l *wal.Log, recs ...string) {
	t.Helper()
	for _, r := range recs {
		a, err := l.Append(context.Background(), []byte(r))
		if err == nil {
			err = a.Durable()
		}
		if err != nil {
			t.Fatalf("append %q: %v", r, err)
		}
		a.Done()
	}
}

func replay(t *testing.T, l *wal.Log) []string {
	t.Helper()
	var got []string
	if _, err := l.Replay(func(data []byte) error {
		got = append(got, string(data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReplayReturnsEveryAppendedRecordInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := open(t, wal.Config{Dir: dir})
	appendAll(t, l, "a", "bb", strings.Repeat("c", 100<<10)) // one record over several pages
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, wal.Config{Dir: dir})
	got := replay(t, l)
	if len(got) != 3 || got[0] != "a" || got[1] != "bb" || len(got[2]) != 100<<10 {
		t.Fatalf("replayed %d records, want a, bb and 100 KiB of c: %.20q", len(got), got)
	}
	// Appends after a restart continue the sequence.
	appendAll(t, l, "d")
	_ = l.Close()
	l = open(t, wal.Config{Dir: dir})
	if got := replay(t, l); len(got) != 4 || got[3] != "d" {
		t.Fatalf("after a second restart replayed %.20q, want the four records", got)
	}
}

// TestConcurrentAppendsShareCommits is group commit: appends waiting at the
// same time go in one write and one fsync.
func TestConcurrentAppendsShareCommits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	l := open(t, wal.Config{Dir: dir, Registerer: reg})
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				a, err := l.Append(context.Background(), fmt.Appendf(nil, "%d-%d", w, i))
				if err == nil {
					err = a.Durable()
				}
				if err != nil {
					t.Error(err)
					return
				}
				a.Done()
			}
		})
	}
	wg.Wait()
	records := metrictest.Value(t, reg, "skytrail_wal_records_total")
	commits := metrictest.Value(t, reg, "skytrail_wal_commits_total")
	fsyncs := metrictest.Value(t, reg, "skytrail_wal_fsyncs_total")
	if records != writers*each {
		t.Fatalf("records = %v, want %d", records, writers*each)
	}
	if commits >= records {
		t.Errorf("%v commits for %v records: concurrent appends did not share a commit", commits, records)
	}
	if fsyncs < 1 || fsyncs >= records {
		t.Errorf("%v fsyncs for %v records: want at least one, shared by concurrent appends", fsyncs, records)
	}
	_ = l.Close()
	l = open(t, wal.Config{Dir: dir})
	if got := replay(t, l); len(got) != writers*each {
		t.Fatalf("replayed %d records, want %d", len(got), writers*each)
	}
}

// TestAppendedIsWrittenBeforeItsFsync: once Append returns, the record is
// in the segment files for any reader (the operating system has it, which a
// kill -9 cannot take away), while its fsync may still be running; Durable
// then reports the fsync, counted.
func TestAppendedIsWrittenBeforeItsFsync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	l := open(t, wal.Config{Dir: dir, Registerer: reg})
	a, err := l.Append(context.Background(), []byte("taken"))
	if err != nil {
		t.Fatal(err)
	}
	segs, err := wlog.NewSegmentsReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer segs.Close()
	r := wlog.NewReader(segs)
	if !r.Next() || string(r.Record()) != "taken" {
		t.Fatalf("the record is not in the segments once Append returned (reader: %v)", r.Err())
	}
	if err := a.Durable(); err != nil {
		t.Fatalf("Durable = %v", err)
	}
	a.Done()
	if n := metrictest.Value(t, reg, "skytrail_wal_fsyncs_total"); n < 1 {
		t.Fatalf("fsyncs = %v after Durable returned, want at least 1", n)
	}
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	_, last, err := wlog.Segments(dir)
	if err != nil || last < 0 {
		t.Fatalf("no segment in %s: %v", dir, err)
	}
	// The newest segment may be the empty one a restart started.
	for i := last; i >= 0; i-- {
		name := wlog.SegmentName(dir, i)
		if info, err := os.Stat(name); err == nil && info.Size() > 0 {
			return name
		}
	}
	t.Fatal("every segment is empty")
	return ""
}

func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: buf}, nil))
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestTornTailIsCutAndLogged is a crash in the middle of a write: the last
// record is only partly on disk. The log opens, replays what came before,
// and says how much it dropped.
func TestTornTailIsCutAndLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := open(t, wal.Config{Dir: dir})
	appendAll(t, l, "one", "two", strings.Repeat("x", 3000))
	_ = l.Close()
	seg := lastSegment(t, dir)
	info, _ := os.Stat(seg)
	// wlog pads a segment to its page when it is closed; a crash leaves the
	// last write short. Cut into the third record.
	raw, _ := os.ReadFile(seg)
	end := bytes.LastIndex(raw, []byte("xxxx")) + 4
	if err := os.WriteFile(seg, raw[:end-1000], 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	reg := prometheus.NewRegistry()
	l = open(t, wal.Config{Dir: dir, Logger: logTo(&out), Registerer: reg})
	got := replay(t, l)
	if len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("replayed %.20q, want one, two", got)
	}
	log := out.String()
	if !strings.Contains(log, "cut a torn or corrupt tail") || !strings.Contains(log, "dropped_bytes=") || !strings.Contains(log, "records_kept=2") {
		t.Fatalf("log does not say what was cut:\n%s", log)
	}
	if cut := metrictest.Value(t, reg, "skytrail_wal_cut_bytes_total"); cut <= 0 || cut > float64(info.Size()) {
		t.Errorf("skytrail_wal_cut_bytes_total = %v, want the bytes after the second record", cut)
	}
	// The cut log takes appends and replays them after what it kept.
	appendAll(t, l, "three")
	_ = l.Close()
	l = open(t, wal.Config{Dir: dir})
	if got := replay(t, l); len(got) != 3 || got[2] != "three" {
		t.Fatalf("after the cut and an append replayed %.20q, want one, two, three", got)
	}
}

// TestCorruptRecordIsCut flips a byte inside a record: its checksum fails,
// and the log is cut there, keeping the records before it.
func TestCorruptRecordIsCut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := open(t, wal.Config{Dir: dir})
	appendAll(t, l, "first", "second-record", "third")
	_ = l.Close()
	seg := lastSegment(t, dir)
	raw, _ := os.ReadFile(seg)
	i := bytes.Index(raw, []byte("second-record"))
	if i < 0 {
		t.Fatal("record not found in its segment")
	}
	raw[i+3] ^= 0xff
	if err := os.WriteFile(seg, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	l = open(t, wal.Config{Dir: dir, Logger: logTo(&out)})
	if got := replay(t, l); len(got) != 1 || got[0] != "first" {
		t.Fatalf("replayed %q, want only the record before the corrupt one", got)
	}
	if !strings.Contains(out.String(), "cut a torn or corrupt tail") || !strings.Contains(out.String(), "checksum") {
		t.Fatalf("log does not name the corruption:\n%s", out.String())
	}
	if _, cut := l.Opened(); cut <= 0 {
		t.Errorf("Opened reports %d bytes cut, want more than 0", cut)
	}
}

// TestGarbageSegmentOpens: a segment of random bytes (a disk gone bad) is
// cut, never a refusal to start.
func TestGarbageSegmentOpens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 10000)
	if err := os.WriteFile(wlog.SegmentName(dir, 0), garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	l := open(t, wal.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if got := replay(t, l); len(got) != 0 {
		t.Fatalf("replayed %d records from garbage", len(got))
	}
	appendAll(t, l, "after")
	_ = l.Close()
	l = open(t, wal.Config{Dir: dir})
	if got := replay(t, l); len(got) != 1 || got[0] != "after" {
		t.Fatalf("replayed %q, want the record appended after the cut", got)
	}
}

// TestCheckpointDeletesWhatIsDurable: after a checkpoint, only later records
// are replayed and the segments before it are gone.
func TestCheckpointDeletesWhatIsDurable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := open(t, wal.Config{Dir: dir, SegmentSize: 64 << 10})
	big := strings.Repeat("y", 20<<10)
	for range 20 { // several segments
		appendAll(t, l, big)
	}
	before := l.Size()
	quiesced, durable := false, false
	if err := l.Checkpoint(func() { quiesced = true }, func() error { durable = quiesced; return nil }); err != nil {
		t.Fatal(err)
	}
	if !durable {
		t.Fatal("the checkpoint did not call quiesced, then durable")
	}
	if after := l.Size(); after >= before/4 {
		t.Errorf("log holds %d bytes after the checkpoint, %d before: old segments not deleted", after, before)
	}
	appendAll(t, l, "later")
	_ = l.Close()
	l = open(t, wal.Config{Dir: dir})
	if got := replay(t, l); len(got) != 1 || got[0] != "later" {
		t.Fatalf("replayed %.20q, want only the record after the checkpoint", got)
	}
}

// TestFailedCheckpointKeepsEverything: stores that could not flush (a full
// disk) leave every record for the replay.
func TestFailedCheckpointKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := open(t, wal.Config{Dir: dir})
	appendAll(t, l, "a", "b")
	err := l.Checkpoint(nil, func() error { return errors.New("flush failed") })
	if err == nil || !strings.Contains(err.Error(), "flush failed") {
		t.Fatalf("Checkpoint = %v, want the flush's error", err)
	}
	_ = l.Close()
	l = open(t, wal.Config{Dir: dir})
	if got := replay(t, l); len(got) != 2 {
		t.Fatalf("replayed %q, want both records", got)
	}
}

// TestCheckpointWaitsForConsumers: a checkpoint's moment comes after every
// appended batch reached its consumers (their done was called).
func TestCheckpointWaitsForConsumers(t *testing.T) {
	t.Parallel()
	l := open(t, wal.Config{Dir: t.TempDir()})
	a, err := l.Append(context.Background(), []byte("in flight"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	consumed := false
	result := make(chan bool)
	finished := make(chan struct{})
	// The checkpoint goes on writing after it reports: the test waits for
	// it, so its files are not written into a directory being removed.
	defer func() { <-finished }()
	go func() {
		defer close(finished)
		_ = l.Checkpoint(func() {
			mu.Lock()
			defer mu.Unlock()
			result <- consumed
		}, nil)
	}()
	time.Sleep(50 * time.Millisecond) // give the checkpoint a chance to run early, which it must not
	mu.Lock()
	consumed = true
	mu.Unlock()
	a.Done()
	if !<-result {
		t.Fatal("the checkpoint ran while a batch was between the log and its consumers")
	}
}

// TestSyncIntervalAppendsSurviveReopen: with an interval, an append returns
// before its fsync, and is still in the log after a reopen.
func TestSyncIntervalAppendsSurviveReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := open(t, wal.Config{Dir: dir, SyncInterval: time.Hour})
	appendAll(t, l, "a", "b", "c")
	// No Close: what a killed process leaves (the writes are in the page
	// cache, which outlives the process).
	l2 := open(t, wal.Config{Dir: dir})
	if got := replay(t, l2); len(got) != 3 {
		t.Fatalf("replayed %q, want the three records", got)
	}
}

// TestFullDiskRefusesAppends: under --min-free-disk the log refuses, with
// the guard's retryable error, and takes appends again once space returns.
func TestFullDiskRefusesAppends(t *testing.T) {
	dir := disktest.Tmpfs(t, 8<<20)
	guard := diskspace.NewGuard("wal", dir, 4<<20, slog.New(slog.DiscardHandler), nil)
	t.Cleanup(guard.Close)
	l := open(t, wal.Config{Dir: filepath.Join(dir, "wal"), Disk: guard})
	appendAll(t, l, "before")
	unfill := disktest.Fill(t, dir, 1<<20)
	waitFor(t, func() bool { return guard.ReadOnly() })
	_, err := l.Append(context.Background(), []byte("refused"))
	if !errors.Is(err, diskspace.ErrFull) {
		t.Fatalf("Append on a full disk = %v, want an error wrapping diskspace.ErrFull", err)
	}
	unfill()
	waitFor(t, func() bool { return !guard.ReadOnly() })
	appendAll(t, l, "after")
	_ = l.Close()
	l = open(t, wal.Config{Dir: filepath.Join(dir, "wal")})
	if got := replay(t, l); len(got) != 2 || got[1] != "after" {
		t.Fatalf("replayed %q, want before, after", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FuzzOpen writes arbitrary bytes as a segment after a valid one: Open
// never fails and never panics, and the valid records before survive.
func FuzzOpen(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 3, 0, 0, 0, 0, 'a', 'b', 'c'})
	f.Add(bytes.Repeat([]byte{0}, 40000))
	f.Add([]byte{2, 0, 5, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o', 4, 0, 1})
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		// No fsync per append: the fuzzer is after the reader, not the disk.
		l, err := wal.Open(wal.Config{Dir: dir, SyncInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Append(context.Background(), []byte("kept"))
		if err != nil {
			t.Fatal(err)
		}
		a.Done()
		_ = l.Close()
		_, last, _ := wlog.Segments(dir)
		if err := os.WriteFile(wlog.SegmentName(dir, last+1), tail, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err = wal.Open(wal.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("Open refused a log with a bad tail: %v", err)
		}
		defer l.Close()
		var got []string
		if _, err := l.Replay(func(data []byte) error { got = append(got, string(data)); return nil }); err != nil {
			t.Fatalf("Replay after the cut: %v", err)
		}
		if len(got) == 0 || got[0] != "kept" {
			t.Fatalf("the record before the bad segment was lost: %q", got)
		}
	})
}
