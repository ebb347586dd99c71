// Package victoriametrics runs a real VictoriaMetrics server for tests: the
// victoria-metrics binary of the release SkyTrail is tested against, built from the Go
// module proxy once and cached, started on a loopback port with a
// temporary data directory and stopped when the test ends.
//
// Tests skip when the binary cannot be built (no module proxy, no Go
// toolchain), except under CI=true, where they fail: CI must run them.
package victoriametrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the VictoriaMetrics release the tests run.
const Version = "v1.151.0"

const module = "github.com/VictoriaMetrics/VictoriaMetrics"

// Server is a running victoria-metrics.
type Server struct {
	// URL is its HTTP API, http://127.0.0.1:port.
	URL string
	// DataDir is its -storageDataPath.
	DataDir string

	bin    string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
	output *lockedWriter
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of the victoria-metrics binary, building it on the
// first call of the process (a minute or so on two cores; later runs find
// it in the user's cache directory). It skips t when the binary cannot be
// built, or fails it under CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("victoria-metrics %s is needed and could not be built: %v", Version, buildErr)
		}
		t.Skipf("victoria-metrics %s could not be built (set CI=true to make this fail): %v", Version, buildErr)
	}
	return binPath
}

// build makes the binary in the cache, under a lock so that test processes
// of several packages build it once between them.
func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "skytrail", "victoria-metrics-"+Version)
	bin := filepath.Join(dir, "victoria-metrics")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock the build directory: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	// A module of its own: SkyTrail's go.sum does not list the packages of
	// the server's main program, and need not.
	mod, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(mod)
	goMod := fmt.Sprintf("module victoriametricsbuild\n\ngo 1.26\n\nrequire %s %s\n", module, Version)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		return "", err
	}
	tmp := filepath.Join(mod, "victoria-metrics")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, module+"/app/victoria-metrics")
	cmd.Dir = mod
	// Pure Go (no cgo zstd): nothing but the module proxy is needed.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s/app/victoria-metrics@%s: %w\n%s", module, Version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// Start runs victoria-metrics on a free loopback port with a temporary data
// directory, waits until it answers, and stops it when the test ends.
// args are extra command-line flags.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return StartIn(t, t.TempDir(), args...)
}

// StartIn is Start on the data in dir (a restarted server keeps it).
func StartIn(t testing.TB, dir string, args ...string) *Server {
	t.Helper()
	bin := Binary(t)
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "http://" + addr, DataDir: dir, bin: bin, output: &lockedWriter{}}
	s.args = append([]string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + dir,
		"-retentionPeriod=30d",
		"-loggerLevel=WARN",
		// Answer with samples as soon as they are written: by default
		// VictoriaMetrics hides the last 30 s from queries and caches
		// answers, which suits scraped data, not a test's checks.
		"-search.latencyOffset=0s",
		"-search.disableCache",
	}, args...)
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatalf("victoria-metrics on %s: %v\n%s", addr, err, s.Output())
	}
	return s
}

// Restart starts a stopped server again, on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("restart victoria-metrics on %s: %v\n%s", s.URL, err, s.Output())
	}
}

func (s *Server) start() error {
	s.done = make(chan struct{})
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		close(s.done)
		return err
	}
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	return s.waitHealthy(30 * time.Second)
}

// Stop ends the server (SIGINT: it flushes and exits) and waits for it.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot exit
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Pause stops the server's process without ending it (SIGSTOP): requests
// then hang, as against an overloaded or partitioned server. Resume undoes it.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Output is what the server logged so far.
func (s *Server) Output() string {
	s.output.mu.Lock()
	defer s.output.mu.Unlock()
	return s.output.w.String()
}

func (s *Server) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.done:
			return errors.New("exited before answering")
		default:
		}
		resp, err := http.Get(s.URL + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on /health within %s: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr finds a loopback port nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
