package red

import "testing"

func TestMinutesPlacesLateAndFutureSpans(t *testing.T) {
	m := NewMinutes(nil)
	now := int64(100*minuteMs + 30_000)
	if w := m.For(now-1000, now); w.End != 101*minuteMs {
		t.Errorf("current span in window ending %d, want %d", w.End, 101*minuteMs)
	}
	if w := m.For(now+3600_000, now); w.End != 101*minuteMs {
		t.Errorf("span an hour ahead in window ending %d, want the current minute", w.End)
	}
	if w := m.For(0, now); w.End != 101*minuteMs-MaxLate || m.Late != 1 {
		t.Errorf("ancient span in window ending %d (late %d), want the oldest allowed", w.End, m.Late)
	}
	due := m.Due(now, 0, true)
	if len(due) != 2 || due[0].End > due[1].End {
		t.Fatalf("due: %d windows, want 2 oldest first", len(due))
	}
	if w := m.For(now-60_000, now); w.End != 101*minuteMs || m.Late != 2 {
		t.Errorf("span for a written minute in window ending %d, want the current one", w.End)
	}
}

// TestTotals: every call counted into a minute is counted into its series'
// running total, which outlives the minute; edges over the cap count under
// the overflow edge; a total no open window uses is forgotten once idle.
func TestTotals(t *testing.T) {
	totals := NewTotals(2)
	m := NewMinutes(totals)
	now := int64(100*minuteMs + 30_000)
	w := m.For(now, now)
	w.Service("a").Observe(0.1, false, 0.5)
	w.Service("a").Observe(3, true, 0.5)
	for _, server := range []string{"x", "y", "z"} {
		w.ClientEdge(Edge{Client: "a", Server: server, ClientType: NodeService, ServerType: NodeService}).Observe(0.01, false, 0)
	}
	if got := totals.Services["a"]; got == nil || got.Calls != 2 || got.Errors != 1 || got.Satisfied != 1 || got.Latency.Count != 2 {
		t.Fatalf("service a's total: %+v, want 2 calls, 1 error, 1 satisfied", got)
	}
	if got := totals.Services["a"].StartMs; got != now-1 {
		t.Errorf("the total starts at %d, want just before its first call, %d", got, now-1)
	}
	over := Edge{Client: Overflow, Server: Overflow, ClientType: NodeService, ServerType: NodeService}
	if len(totals.ClientEdges) != 3 || totals.ClientEdges[over] == nil || totals.ClientEdges[over].Calls != 1 {
		t.Errorf("client edge totals %v, want x and y and the overflow edge with z's call", totals.ClientEdges)
	}
	m.Due(now+2*minuteMs, 0, false)
	// A later minute counts on into the same total.
	later := now + 2*minuteMs
	m.For(later, later).Service("a").Observe(0.1, false, 0.5)
	if got := totals.Services["a"].Calls; got != 3 {
		t.Errorf("service a's total after another minute: %d calls, want 3", got)
	}
	// Idle since before later: the edges go; a, counted into by the open
	// window, stays.
	if n := m.Expire(later); n != 3 || totals.Services["a"] == nil {
		t.Errorf("expired %d totals (service a kept: %v), want the 3 edges", n, totals.Services["a"] != nil)
	}
}

// TestEarlyStamp: a minute written before it is due is stamped inside it,
// apart from any other flush's stamp.
func TestEarlyStamp(t *testing.T) {
	end := int64(100 * minuteMs)
	for _, c := range []struct{ now, want int64 }{
		{end - 20_000, end - 20_000}, // while it runs: when flushed
		{end - 1, end - 1},
		{end, end - 1},               // after it ended: as far before its end
		{end + 30_000, end - 30_001}, // as the flush was after it
		{end - 90_000, end - minuteMs + 1},
		{end + 90_000, end - minuteMs + 1},
	} {
		if got := earlyStamp(end, c.now); got != c.want {
			t.Errorf("earlyStamp(end, end%+d) = end%+d, want end%+d", c.now-end, got-end, c.want-end)
		}
	}
}

// TestEarlyWritesOfAMinuteNeverShareAStamp: flushes of the running minute
// in the same millisecond, and at its last millisecond and its end, stamp
// their windows apart, inside the minute: the store would refuse a second
// sample on a timestamp, and the calls counted in between would be lost.
func TestEarlyWritesOfAMinuteNeverShareAStamp(t *testing.T) {
	m := NewMinutes(nil)
	end := int64(101 * minuteMs)
	seen := map[int64]bool{}
	for _, now := range []int64{end - 30_000, end - 30_000, end - 30_000, end - 1, end} {
		m.For(end-minuteMs+5, now).Service("a").Observe(0.1, false, 0.5)
		due := m.Due(now, 30*1000, true)
		var w *Window
		for _, d := range due {
			if d.End == end {
				w = d
			}
		}
		if w == nil || !w.Early {
			t.Fatalf("flush at end%+d: the minute was not written early", now-end)
		}
		stamp := w.Stamp()
		if stamp <= end-minuteMs || stamp >= end {
			t.Errorf("flush at end%+d: stamp end%+d, outside the minute", now-end, stamp-end)
		}
		if seen[stamp] {
			t.Errorf("flush at end%+d: stamp end%+d used before", now-end, stamp-end)
		}
		seen[stamp] = true
	}
}
