// Package benchcpu reports a benchmark's CPU time per operation. On a shared
// machine wall time also counts the time spent waiting for a CPU, which
// swamps differences of a few nanoseconds; the process's CPU time does not.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Start begins measuring; call the returned function right after the
// benchmark loop to add a "cpu-ns/op" metric (user plus system time of the
// whole process, so background work the operations cause is included).
func Start(b *testing.B) (stop func()) {
	b.Helper()
	begin := now(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(now(b)-begin)/float64(b.N), "cpu-ns/op")
		}
	}
}

func now(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("reading CPU time: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
