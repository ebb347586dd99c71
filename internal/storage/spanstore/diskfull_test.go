package spanstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/storage/diskspace"
	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// countRows counts the rows of tenant over all time.
func countRows(t *testing.T, s *Store, tenant logstorage.TenantID) int {
	t.Helper()
	q, err := parse("* | stats count() n")
	if err != nil {
		t.Fatal(err)
	}
	q.AddTimeFilter(0, time.Now().Add(48*time.Hour).UnixNano())
	n := 0
	err = s.run(context.Background(), tenant, q, func(db *logstorage.DataBlock) {
		if c := db.GetColumnByName("n"); c != nil {
			for _, v := range c.Values {
				k, _ := strconv.Atoi(v)
				n += k
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFullDiskRefusesAndRecovers writes spans as fast as it can into a
// store on a real 64 MiB disk while the disk fills: writes are refused with
// ErrDiskFull before the disk is full, lookups go on, writes are taken
// again once space is freed, and every span acknowledged (ConsumeTraces
// returned nil) is there after a restart, nothing more. Without the guard
// logstorage panics on the full disk (TestFullDiskWithoutGuardPanics).
func TestFullDiskRefusesAndRecovers(t *testing.T) {
	disk := disktest.Tmpfs(t, 64<<20)
	dir := filepath.Join(disk, "spans")
	const minFree = 16 << 20
	s, err := Open(Config{Dir: dir, MinFreeDiskBytes: minFree, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	if err := s.ConsumeTraces(ctx, pipeline.TracesOf(sampleTrace(1, start, false))); err != nil {
		t.Fatal(err)
	}
	first := sampleTrace(1, start, false).ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
	acked := 2

	// 3 MiB above the limit: a couple of seconds of writing takes it.
	unfill := disktest.Fill(t, disk, minFree+3<<20)
	var refused error
	for seed := uint64(1); refused == nil; seed++ {
		if seed > 2000 {
			t.Fatal("2,000 batches written and never refused")
		}
		td, err := loadgen.Traces(1000, 4, seed, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if refused = s.ConsumeTraces(ctx, pipeline.TracesOf(td)); refused == nil {
			acked += td.SpanCount()
		}
	}
	if !errors.Is(refused, ErrDiskFull) {
		t.Fatalf("refused with %v, want ErrDiskFull", refused)
	}
	if !strings.Contains(refused.Error(), dir) || !strings.Contains(refused.Error(), "16.0 MiB") {
		t.Errorf("the error does not name the directory and the limit: %v", refused)
	}
	// Deeper under the limit: merges finishing could otherwise free enough
	// to make the store writable again during the checks below.
	disktest.Fill(t, disk, minFree/2)
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("a log line")
	if err := s.ConsumeLogs(ctx, pipeline.LogsOf(ld)); !errors.Is(err, ErrDiskFull) {
		t.Errorf("ConsumeLogs on a full disk: %v, want ErrDiskFull", err)
	}
	// The engine's own view agrees, once its cached free space (up to 2 s
	// old) catches up.
	waitUntil(t, "read-only in logstorage's view", 3*time.Second, s.storage.IsReadOnly)
	if free, _ := diskspace.Free(disk); free == 0 {
		t.Fatal("the disk filled up completely: the guard's margin did not hold what was buffered")
	}
	if td, err := s.GetTrace(ctx, first); err != nil || td.SpanCount() != 2 {
		t.Fatalf("lookup while read-only: %d spans, %v; want 2", td.SpanCount(), err)
	}
	if services, err := s.Services(ctx); err != nil || len(services) == 0 {
		t.Fatalf("services while read-only: %v, %v", services, err)
	}

	unfill()
	waitUntil(t, "writable again", 3*time.Second, func() bool { return !s.ReadOnly() })
	td, err := loadgen.Traces(1000, 4, 99999, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	acked += td.SpanCount()
	if err := s.ConsumeLogs(ctx, pipeline.LogsOf(ld)); err != nil {
		t.Fatalf("logs after freeing space: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, s, tenantSpans); got != acked {
		t.Errorf("after a restart %d spans stored, want the %d acknowledged", got, acked)
	}
	if got := countRows(t, s, tenantLogs); got != 1 {
		t.Errorf("after a restart %d log records stored, want the 1 acknowledged", got)
	}
	if td, err := s.GetTrace(ctx, first); err != nil || td.SpanCount() != 2 {
		t.Errorf("first trace after a restart: %d spans, %v", td.SpanCount(), err)
	}
}

// TestFullDiskWithoutGuardPanics is what the guard is for, and what
// SkyTrail did before it (issue 18): with no free-space limit the store
// takes every batch until logstorage cannot write a part, and then the
// process dies ("no space left on device"), taking the batches it had
// acknowledged and not yet written with it. It runs in a child process.
func TestFullDiskWithoutGuardPanics(t *testing.T) {
	if disk := os.Getenv("SPANSTORE_FULL_DISK"); disk != "" {
		s, err := Open(Config{Dir: filepath.Join(disk, "spans")})
		if err != nil {
			t.Fatal(err)
		}
		disktest.Fill(t, disk, 1<<20)
		for seed := uint64(1); seed < 3000; seed++ {
			td, err := loadgen.Traces(1000, 4, seed, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
				t.Fatalf("refused: %v", err)
			}
		}
		t.Log("no panic")
		return
	}
	disk := disktest.Tmpfs(t, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFullDiskWithoutGuardPanics$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SPANSTORE_FULL_DISK="+disk)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no space left on device") {
		t.Fatalf("want the store without a guard to die of a full disk; err %v, output:\n%s", err, tail(out))
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
