package spanstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// storeFormat names the layout of the rows in schema.go. It changes when
// rows written before could no longer be read back whole, so that a build
// refuses a directory it would misread instead of serving wrong traces.
//
//	1  span_id and parent_span_id columns, trace-ID index rows keyed by the
//	   whole trace ID (no format file was written then)
//	2  one span column, index rows keyed by the ID's suffix, integers typed
//	   by their text (2026-11-25)
const storeFormat = 2

const formatFile = "format"

// checkFormat makes sure dir holds rows this build reads: it writes the
// format file into a new or empty directory and refuses one written in
// another format.
func checkFormat(dir string) error {
	path := filepath.Join(dir, formatFile)
	want := fmt.Sprintf("skytrail-spanstore %d\n", storeFormat)
	got, err := os.ReadFile(path)
	switch {
	case err == nil && string(got) == want:
		return nil
	case err == nil:
		return fmt.Errorf("the span store in %s has format %q, this build reads %q: move the directory away (or delete it) to start afresh, or run the SkyTrail that wrote it",
			dir, strings.TrimSpace(string(got)), strings.TrimSpace(want))
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read the span store's format file: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read the span store directory: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("the span store in %s was written by an older SkyTrail (format 1), this build reads format %d: move the directory away (or delete it) to start afresh", dir, storeFormat)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the span store directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		return fmt.Errorf("write the span store's format file: %w", err)
	}
	return nil
}
