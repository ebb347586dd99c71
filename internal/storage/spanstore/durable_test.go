package spanstore

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/pipeline"
)

var syncedTrace = pcommon.TraceID{5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// TestSyncSurvivesKill writes spans, calls Sync and kills its own process
// (a child of the test) with SIGKILL at once, well inside logstorage's own
// flush interval: the spans are on disk when the store opens again.
func TestSyncSurvivesKill(t *testing.T) {
	if dir := os.Getenv("SPANSTORE_SYNC_KILL"); dir != "" {
		s, err := Open(Config{Dir: dir, FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(sampleTrace(5, time.Now().Add(-time.Minute), false))); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SPANSTORE_SYNC_KILL="+dir)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child did not die of SIGKILL: %v\n%s", err, tail(out))
	}
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	td, err := s.GetTrace(context.Background(), syncedTrace)
	if err != nil || td.SpanCount() != 2 {
		t.Fatalf("after Sync and a kill: %d spans, %v; want 2", td.SpanCount(), err)
	}
}

// TestReplayWritesOnlyWhatIsMissing: a replayed batch holding spans the
// store has already (flushed before the crash) and spans it lacks stores
// the lacking ones, once.
func TestReplayWritesOnlyWhatIsMissing(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	start := time.Now().Add(-time.Minute)
	if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(sampleTrace(6, start, false))); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	// The same two spans and a third, new one.
	td := sampleTrace(6, start, false)
	extra := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().AppendEmpty()
	td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0).CopyTo(extra)
	extra.SetSpanID(pcommon.SpanID{6, 0, 0, 0, 0, 0, 0, 3})
	if err := s.ReplayTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	got, err := s.GetTrace(context.Background(), pcommon.TraceID{6, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if err != nil || got.SpanCount() != 3 {
		t.Fatalf("after the replay the trace has %d spans (%v), want 3: the two stored once and the new one", got.SpanCount(), err)
	}
}
