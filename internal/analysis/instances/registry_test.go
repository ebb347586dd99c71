package instances

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/pipeline"
)

func TestSaveLoadAndCaps(t *testing.T) {
	r := New(Config{MaxPerService: 2})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, name := range []string{"a-1", "a-2", "a-3"} {
		if err := r.ConsumeHeartbeat(context.Background(), pipeline.Heartbeat{Service: "a", Instance: name, Protocol: "skywalking",
			Properties: map[string]string{"hostname": "h", "Process No.": "1"}, At: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if r.Len() != 2 || r.Overflow() != 1 {
		t.Fatalf("kept %d, overflow %d; want 2 and 1", r.Len(), r.Overflow())
	}
	if err := r.ConsumeHeartbeat(context.Background(), pipeline.Heartbeat{Service: "a"}); err == nil {
		t.Error("a heartbeat without an instance was accepted")
	}

	path := filepath.Join(t.TempDir(), "instances.json")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded := New(Config{})
	if err := loaded.Load(path); err != nil {
		t.Fatal(err)
	}
	list := loaded.List("a", t0.Add(10*time.Second))
	if len(list) != 2 || list[0].Name != "a-1" || !list[0].FirstSeen.Equal(t0) || list[0].Host != "h" || !list[0].Alive {
		t.Fatalf("loaded: %+v", list)
	}
	// Same host and pid, lifetimes overlapping: one process, two names.
	if len(list[1].SameProcessAs) != 1 || list[1].SameProcessAs[0] != "a-1" || list[1].DuplicateOf != "a-1" {
		t.Errorf("a-2: sameProcessAs %v duplicateOf %q", list[1].SameProcessAs, list[1].DuplicateOf)
	}
	loaded.Prune(t0.Add(8 * 24 * time.Hour))
	if loaded.Len() != 0 {
		t.Errorf("%d instances left after a week of silence", loaded.Len())
	}
	if err := loaded.Load(filepath.Join(t.TempDir(), "missing.json")); err != nil {
		t.Errorf("a missing file: %v", err)
	}
}
