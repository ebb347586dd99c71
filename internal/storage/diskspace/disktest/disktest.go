// Package disktest gives tests a real small disk to fill: a tmpfs mounted
// for the test, and a filler file that takes its free space away.
package disktest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/skytrail/skytrail/internal/storage/diskspace"
)

// Tmpfs mounts a tmpfs of size bytes on a new temporary directory and
// unmounts it when the test ends. Mounting takes root (or CAP_SYS_ADMIN):
// without it the test is skipped, except under CI=true, where it fails, so
// CI cannot pass without running it.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	opts := "size=" + strconv.FormatInt(size, 10) + ",mode=0755"
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		msg := "mounting a tmpfs on " + dir + " (needs root or CAP_SYS_ADMIN): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("skipped: " + msg)
	}
	// Registered after t.TempDir's removal, so it runs before it; and
	// before anything the test opens on the disk registers its own
	// cleanup, so it runs after those have closed their files.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Files still open (a store the test failed to close): detach, so
			// the mount goes as soon as they are closed.
			if err2 := syscall.Unmount(dir, syscall.MNT_DETACH); err2 != nil {
				t.Errorf("unmounting the tmpfs on %s: %v, then %v", dir, err, err2)
			}
		}
	})
	return dir
}

// Fill allocates a file in dir that leaves about leave bytes free on its
// disk (nothing when less is free already; called again, it grows the same
// file) and returns a function that deletes it. The file is removed when the
// test ends in any case.
func Fill(t testing.TB, dir string, leave uint64) (unfill func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	unfill = func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removing the filler: %v", err)
		}
	}
	free, err := diskspace.Free(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free <= leave {
		return unfill
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("creating the filler: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	// fallocate takes the blocks at once (a sparse file would take none).
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, st.Size()+int64(free-leave)); err != nil {
		t.Fatalf("filling %s to leave %d bytes free: %v", dir, leave, err)
	}
	t.Cleanup(unfill)
	return unfill
}
