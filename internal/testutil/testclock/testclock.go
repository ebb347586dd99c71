// Package testclock is a clock for tests that let time pass without
// waiting for it: give Clock.Now to a component's Now setting, then
// Advance it past a timeout instead of sleeping through one.
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock runs with the wall clock, ahead of it by what Advance added. It
// does not stand still: agents and exporters stamp their data with the
// real time, and a server judging that data by a frozen clock would see it
// arrive from the future.
type Clock struct {
	ahead atomic.Int64 // nanoseconds
}

// New returns a clock that reads the wall clock until advanced.
func New() *Clock { return &Clock{} }

// Now is the wall clock plus everything advanced so far. It is safe for
// concurrent use.
func (c *Clock) Now() time.Time {
	return time.Now().Add(time.Duration(c.ahead.Load()))
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.ahead.Add(int64(d))
}
