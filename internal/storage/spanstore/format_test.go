package spanstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory written by a build with another row layout is refused with
// what to do, not misread; a new one is marked, and opens again.
func TestFormatIsChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Config{Dir: filepath.Join(dir, "new")})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = Open(Config{Dir: filepath.Join(dir, "new")})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	_ = s.Close()

	old := filepath.Join(dir, "old")
	if err := os.MkdirAll(filepath.Join(old, "partitions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: old}); err == nil || !strings.Contains(err.Error(), "older SkyTrail") || !strings.Contains(err.Error(), "move the directory away") {
		t.Errorf("unversioned store with data: %v", err)
	}

	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, formatFile), []byte("skytrail-spanstore 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: other}); err == nil || !strings.Contains(err.Error(), "skytrail-spanstore 3") {
		t.Errorf("store of another format: %v", err)
	}
}
