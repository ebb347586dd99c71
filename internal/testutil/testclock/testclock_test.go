package testclock

import (
	"testing"
	"time"
)

func TestAdvance(t *testing.T) {
	t.Parallel()
	c := New()
	if d := c.Now().Sub(time.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("a new clock is %s off the wall clock", d)
	}
	c.Advance(time.Hour)
	c.Advance(time.Minute)
	if d := c.Now().Sub(time.Now()); d < time.Hour+time.Minute-time.Second || d > time.Hour+time.Minute+time.Second {
		t.Fatalf("advanced by 1h1m, the clock is %s ahead", d)
	}
	// It keeps running.
	before := c.Now()
	time.Sleep(10 * time.Millisecond)
	if !c.Now().After(before) {
		t.Fatal("the clock stood still")
	}
}
