// Package proc is what the benchmark programs under bench/ read of the
// processes they measure and the machine: a free loopback address to give
// a server, a process' CPU time and peak memory from /proc, and a data
// directory's size. Linux only, as the benchmarks are.
package proc

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// FreeAddr is a loopback address nothing listens on at the moment.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// CPUSeconds is the user+system CPU time pid has used, from /proc (0 when
// it cannot be read).
func CPUSeconds(pid int) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(raw)
	// The command name, in parentheses, may hold spaces: fields count from
	// after it.
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 12 {
			var utime, stime float64
			fmt.Sscan(f[11], &utime)
			fmt.Sscan(f[12], &stime)
			return (utime + stime) / 100 // USER_HZ
		}
	}
	return 0
}

// PeakRSSKiB is pid's peak resident memory (VmHWM) in KiB, from /proc.
func PeakRSSKiB(pid int) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb
		}
	}
	return 0
}

// DirSize is the bytes of the files under dir.
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
