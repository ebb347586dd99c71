// Package poll waits in tests for what happens asynchronously: spans that
// become searchable after the store's flush interval, agents that report
// in the background, findings judged a grace period later.
//
// Timeouts are generous on purpose: they only cost time when a test is
// failing anyway, while a tight one fails a correct test on a busy CI
// machine running packages and tests in parallel.
package poll

import (
	"testing"
	"time"
)

// Intervals between tries: quick first tries for what is nearly there,
// then no faster than every maxInterval, so tests polling in parallel leave
// the machine to the code they wait for.
const (
	firstInterval = 10 * time.Millisecond
	maxInterval   = 200 * time.Millisecond
)

// Until calls ok until it returns true, and fails t (FailNow) when timeout
// passes first, saying it was waiting for what. ok runs on the test's
// goroutine and may itself fail t.
func Until(t testing.TB, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	if !wait(timeout, ok) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// UntilNil calls check until it returns nil, and fails t (FailNow) with
// the last error it returned when timeout passes first: check's error says
// what is still missing and what it found instead.
func UntilNil(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	var last error
	if !wait(timeout, func() bool { last = check(); return last == nil }) {
		t.Fatalf("timed out after %s: %v", timeout, last)
	}
}

// wait calls ok until it returns true (then wait does too) or timeout
// passes (false).
func wait(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := firstInterval
	for !ok() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
		interval = min(2*interval, maxInterval)
	}
	return true
}
