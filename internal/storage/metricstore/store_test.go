package metricstore

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// TestRestartKeepsSamples: what was written before Close is there after Open.
func TestRestartKeepsSamples(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().Truncate(time.Minute)
	app := s.Appender(context.Background())
	for i := range 3 {
		if _, err := app.Append(0, labels.FromStrings("__name__", "skytrail_service_calls", "service", "a"), end.Add(-time.Duration(i)*time.Minute).UnixMilli(), 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Config{Dir: dir, Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.InstantQuery(context.Background(), `sum_over_time(skytrail_service_calls[10m])`, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 1 || v[0].F != 15 {
		t.Fatalf("after reopening: %v, want one series summing to 15", v)
	}
	if s.HeadSeries() != 1 {
		t.Errorf("head series = %d, want 1", s.HeadSeries())
	}
}
