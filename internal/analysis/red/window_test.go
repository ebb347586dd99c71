package red

import "testing"

func TestMinutesPlacesLateAndFutureSpans(t *testing.T) {
	m := NewMinutes()
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
