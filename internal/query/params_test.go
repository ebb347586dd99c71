package query

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// One parser for every /api/v1 time: the forms users and tools send all
// mean the same instant, and absurd ones are refused with what is wrong.
func TestParseTime(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 25, 14, 37, 35, 500_000_000, time.UTC)
	for _, s := range []string{
		"2026-11-25T14:37:35.5Z",
		"1795617455.5",        // seconds, as date +%s.%N
		"1795617455500",       // milliseconds, as JavaScript's Date.now()
		"1795617455500000",    // microseconds, as Jaeger
		"1795617455500000000", // nanoseconds
	} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got.UTC(), err, want)
		}
	}
	for s, msg := range map[string]string{
		"0001-01-01T00:00:01Z": "out of range",
		"3000-01-01T00:00:00Z": "out of range",
		"-5":                   "out of range",
		"yesterday":            "want RFC 3339",
		"NaN":                  "want RFC 3339",
	} {
		if _, err := ParseTime(s); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseTime(%q) error = %v, want %q", s, err, msg)
		}
	}
}

func TestTimeRange(t *testing.T) {
	t.Parallel()
	start, end, err := timeRange(url.Values{"end": {"1795617455"}, "lookback": {"1h"}}, 15*time.Minute)
	if err != nil || end.Sub(start) != time.Hour || end.Unix() != 1795617455 {
		t.Errorf("lookback: %v..%v, %v", start, end, err)
	}
	start, end, err = timeRange(url.Values{}, 15*time.Minute)
	if err != nil || end.Sub(start) != 15*time.Minute || end.Before(time.Now()) || end.Second() != 0 {
		t.Errorf("default: %v..%v, %v; want the 15 minutes up to the end of this one", start, end, err)
	}
	for v, msg := range map[string]string{
		"start=1795617455&end=1764081000": "is before start",
		"lookback=-1h":                    "lookback",
		"start=0001-01-01T00:00:01Z":      "start",
	} {
		q, _ := url.ParseQuery(v)
		if _, _, err := timeRange(q, time.Hour); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want %q", v, err, msg)
		}
	}
}
