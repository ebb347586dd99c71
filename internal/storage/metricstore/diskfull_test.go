package metricstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"

	"github.com/skytrail/skytrail/internal/pipeline"
)

func gaugeMetrics(v float64, at time.Time) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("heap")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetDoubleValue(v)
	return md
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 3 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFullDiskRefusesAndRecovers: on a real disk filled under the limit,
// agent metrics and Writable fail with ErrDiskFull and write nothing,
// queries go on, and writes resume by themselves once space is freed.
func TestFullDiskRefusesAndRecovers(t *testing.T) {
	disk := disktest.Tmpfs(t, 32<<20)
	dir := filepath.Join(disk, "metrics")
	s, err := Open(Config{Dir: dir, MinFreeDiskBytes: 8 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	if err := s.ConsumeMetrics(ctx, pipeline.MetricsOf(gaugeMetrics(1, now.Add(-2*time.Second)))); err != nil {
		t.Fatal(err)
	}

	unfill := disktest.Fill(t, disk, 4<<20)
	waitUntil(t, "read-only", s.ReadOnly)
	err = s.ConsumeMetrics(ctx, pipeline.MetricsOf(gaugeMetrics(2, now.Add(-time.Second))))
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("agent metrics on a full disk: %v, want ErrDiskFull naming %s", err, dir)
	}
	if err := s.Writable(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Writable on a full disk: %v", err)
	}
	v, err := s.InstantQuery(ctx, `count_over_time(agent_heap[1m])`, now)
	if err != nil || len(v) != 1 || v[0].F != 1 {
		t.Fatalf("query while read-only: %v, %v; want the one sample written before", v, err)
	}

	unfill()
	waitUntil(t, "writable again", func() bool { return s.Writable() == nil })
	if err := s.ConsumeMetrics(ctx, pipeline.MetricsOf(gaugeMetrics(3, now))); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	v, err = s.InstantQuery(ctx, `count_over_time(agent_heap[1m])`, now)
	if err != nil || len(v) != 1 || v[0].F != 2 {
		t.Fatalf("after freeing space: %v, %v; want 2 samples (the refused one not among them)", v, err)
	}
}

// TestFullDiskWithoutGuardFailsSoftly: with no limit, a commit the WAL
// cannot take returns an error (which ConsumeMetrics passes on, retryable)
// rather than losing the samples silently. The TSDB panics later, in the
// background, when it cannot write a head chunk (seen: "preallocate: no
// space left on device" from mmapHeadChunks a minute after the disk
// filled) -- which is why SkyTrail runs it with the guard.
func TestFullDiskWithoutGuardFailsSoftly(t *testing.T) {
	disk := disktest.Tmpfs(t, 16<<20)
	s, err := Open(Config{Dir: filepath.Join(disk, "metrics")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	disktest.Fill(t, disk, 0)
	ctx := context.Background()
	// Enough samples to need more than what is left of the WAL's page.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for i := range 5000 {
		m := ms.AppendEmpty()
		m.SetName("m" + string(rune('a'+i%26)) + strings.Repeat("x", i%50))
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.Attributes().PutInt("i", int64(i))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetDoubleValue(float64(i))
	}
	err = s.ConsumeMetrics(ctx, pipeline.MetricsOf(md))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("commit on a full disk: %v, want the WAL's no space left on device", err)
	}
}
