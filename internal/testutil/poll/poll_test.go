package poll

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder records Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestUntilReturnsOnceTrue(t *testing.T) {
	t.Parallel()
	calls := 0
	Until(t, 10*time.Second, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Errorf("ok called %d times, want 3", calls)
	}
}

func TestUntilFailsAfterTimeout(t *testing.T) {
	t.Parallel()
	rec := &fatalRecorder{TB: t}
	start := time.Now()
	Until(rec, 100*time.Millisecond, "never", func() bool { return false })
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("gave up after %s, before the timeout", took)
	}
	if want := "timed out after 100ms waiting for never"; rec.msg != want {
		t.Errorf("failure %q, want %q", rec.msg, want)
	}
}

func TestUntilNilReportsTheLastError(t *testing.T) {
	t.Parallel()
	rec := &fatalRecorder{TB: t}
	calls := 0
	UntilNil(rec, 100*time.Millisecond, func() error { calls++; return fmt.Errorf("try %d", calls) })
	if want := fmt.Sprintf("try %d", calls); !strings.HasSuffix(rec.msg, want) {
		t.Errorf("failure %q, want it to end with the last error, %q", rec.msg, want)
	}
	rec.msg = ""
	UntilNil(rec, time.Second, func() error { return nil })
	if rec.msg != "" {
		t.Errorf("a check that holds failed: %s", rec.msg)
	}
}
