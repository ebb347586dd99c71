package analysis

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skytrail/skytrail/internal/analysis/red"
	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"
	"github.com/skytrail/skytrail/internal/storage/metricstore"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// TestFiguresWaitOutAFullDisk: figures due while the metric store's disk is
// full are not lost: the write fails softly (an error, counted), the minutes
// are kept, and the next tick after space is freed writes them: the same
// figures an undisturbed analysis writes.
func TestFiguresWaitOutAFullDisk(t *testing.T) {
	disk := disktest.Tmpfs(t, 32<<20)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := metricstore.Open(metricstore.Config{Dir: filepath.Join(disk, "metrics"), MinFreeDiskBytes: 8 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	reference, err := metricstore.Open(metricstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer reference.Close()

	ctx := context.Background()
	td, err := loadgen.Traces(2000, 4, 1, pastMinute())
	if err != nil {
		t.Fatal(err)
	}
	a, ref := New(Config{}, store), New(Config{}, reference)
	a.log = quiet
	for _, x := range []*Analyser{a, ref} {
		if err := x.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ref.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	unfill := disktest.Fill(t, disk, 4<<20)
	deadline := time.Now().Add(3 * time.Second)
	for !store.ReadOnly() {
		if time.Now().After(deadline) {
			t.Fatal("the metric store did not turn read-only")
		}
		time.Sleep(20 * time.Millisecond)
	}
	errorsBefore := testutil.ToFloat64(a.metrics.flushErrors)
	err = a.Flush(ctx)
	if !errors.Is(err, metricstore.ErrDiskFull) {
		t.Fatalf("flush on a full disk: %v, want ErrDiskFull", err)
	}
	// The minutes' write and the running totals' write.
	if got := testutil.ToFloat64(a.metrics.flushErrors) - errorsBefore; got != 2 {
		t.Errorf("skytrail_analysis_flush_errors_total grew by %g, want 2", got)
	}
	a.mu.Lock()
	kept := len(a.unwritten)
	a.mu.Unlock()
	if kept == 0 {
		t.Fatal("the refused minutes were not kept")
	}
	const query = `sum(sum_over_time(skytrail_service_calls:increase1m[10m]))`
	want, err := reference.InstantQuery(ctx, query, time.Now())
	if err != nil || len(want) != 1 || want[0].F == 0 {
		t.Fatalf("reference figures: %v, %v", want, err)
	}
	// The figures the disk refused are served from memory meanwhile.
	if got, err := store.InstantQuery(ctx, query, time.Now()); err != nil || len(got) != 1 || got[0].F != want[0].F {
		t.Fatalf("calls while read-only: %v, %v; want %g from memory", got, err, want[0].F)
	}

	unfill()
	for store.Writable() != nil {
		if time.Now().After(deadline.Add(3 * time.Second)) {
			t.Fatal("the metric store did not take writes again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.tick(ctx, false); err != nil {
		t.Fatalf("the tick after freeing space: %v", err)
	}
	a.mu.Lock()
	kept = len(a.unwritten) + len(a.writing)
	a.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d minutes still unwritten after the retry", kept)
	}
	got, err := store.InstantQuery(ctx, query, time.Now())
	if err != nil || len(got) != 1 || got[0].F != want[0].F {
		t.Fatalf("calls after the retry: %v, %v; want %g as written undisturbed", got, err, want[0].F)
	}
}

// TestUnwrittenMinutesAreBounded: a disk full for longer than an hour keeps
// the newest hour of minutes and counts the rest as dropped.
func TestUnwrittenMinutesAreBounded(t *testing.T) {
	a := New(Config{}, nil)
	a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	before := testutil.ToFloat64(a.metrics.minutesDropped)
	for batch := range 7 {
		var ws []*red.Window
		for i := range 10 {
			ws = append(ws, &red.Window{End: int64(batch*10+i) * 60_000})
		}
		a.keepUnwritten(ws)
	}
	if len(a.unwritten) != maxUnwritten || a.unwritten[0].End != 10*60_000 || a.unwritten[maxUnwritten-1].End != 69*60_000 {
		t.Fatalf("kept %d minutes from %d to %d, want the newest %d", len(a.unwritten), a.unwritten[0].End, a.unwritten[len(a.unwritten)-1].End, maxUnwritten)
	}
	if got := testutil.ToFloat64(a.metrics.minutesDropped) - before; got != 10 {
		t.Errorf("skytrail_analysis_minutes_dropped_total grew by %g, want 10", got)
	}
}
