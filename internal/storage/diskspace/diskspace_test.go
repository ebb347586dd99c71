package diskspace_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"time"

	"github.com/skytrail/skytrail/internal/storage/diskspace"
	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"
	"github.com/skytrail/skytrail/internal/testutil/metrictest"
)

// syncBuffer is a log destination the guard's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGuardFollowsTheDisk fills a real (tmpfs) disk under the limit and
// frees it again: the guard turns read-only, says why in its error, logs
// and shows it on /metrics once, and turns writable again by itself.
func TestGuardFollowsTheDisk(t *testing.T) {
	dir := disktest.Tmpfs(t, 32<<20)
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	g := diskspace.NewGuard("test", dir, 8<<20, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	defer g.Close()
	gauge := func() float64 { return readOnly(t, reg, "test") }
	if g.Err() != nil || g.ReadOnly() || gauge() != 0 {
		t.Fatalf("an empty disk: err %v, read-only %v, gauge %g", g.Err(), g.ReadOnly(), gauge())
	}

	unfill := disktest.Fill(t, dir, 4<<20)
	waitFor(t, "read-only", g.ReadOnly)
	err := g.Err()
	if !errors.Is(err, diskspace.ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
	for _, want := range []string{dir, "8.0 MiB", "MiB free", "--min-free-disk"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if gauge() != 1 {
		t.Errorf("skytrail_storage_read_only = %g while read-only", gauge())
	}
	time.Sleep(3 * diskspace.PollInterval) // more polls, still under the limit
	if n := strings.Count(logs.String(), "read-only"); n != 1 {
		t.Errorf("%d log lines on going read-only, want 1:\n%s", n, logs.String())
	}

	unfill()
	waitFor(t, "writable", func() bool { return !g.ReadOnly() })
	if g.Err() != nil || gauge() != 0 {
		t.Errorf("after freeing space: err %v, gauge %g", g.Err(), gauge())
	}
	if !strings.Contains(logs.String(), "takes data again") {
		t.Errorf("no log line on leaving read-only:\n%s", logs.String())
	}
}

// TestGuardOff: a limit of 0 never refuses, even on a full disk.
func TestGuardOff(t *testing.T) {
	dir := disktest.Tmpfs(t, 8<<20)
	disktest.Fill(t, dir, 0)
	g := diskspace.NewGuard("off", dir, 0, nil, nil)
	defer g.Close()
	if g.Err() != nil || g.ReadOnly() {
		t.Fatalf("guard off: err %v", g.Err())
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 256 << 20: "256.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := diskspace.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// readOnly reads skytrail_storage_read_only{store=store} from reg, as a
// scrape of /metrics would.
func readOnly(t *testing.T, reg *prometheus.Registry, store string) float64 {
	t.Helper()
	return metrictest.Value(t, reg, "skytrail_storage_read_only", "store", store)
}
