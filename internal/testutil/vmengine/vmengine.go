// Package vmengine runs a real server of the VictoriaMetrics family
// (victoria-logs, victoria-metrics) for tests: the binary of a given
// release, built from the Go module proxy once and cached in the user's
// cache directory, started on a loopback port with a data directory and
// stopped when the test ends. The victorialogs and victoriametrics
// packages name the engines and their test settings.
//
// Tests skip when the binary cannot be built (no module proxy, no Go
// toolchain), except under CI=true, where they fail: CI must run them.
package vmengine

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

// Engine is one server program at one release.
type Engine struct {
	// Module is the Go module holding it, Version its release, and App
	// its program's name under the module's app/ folder (also the name
	// of the binary).
	Module, Version, App string
	// Args are flags every server of this engine starts with, after the
	// address, data directory, retention and log level.
	Args []string

	buildOnce sync.Once
	binPath   string
	buildErr  error
}

// Server is a running server of an Engine.
type Server struct {
	// URL is its HTTP API, http://127.0.0.1:port.
	URL string
	// DataDir is its -storageDataPath.
	DataDir string

	app    string
	bin    string
	args   []string
	cmd    *exec.Cmd
	done   chan struct{}
	output *lockedWriter
}

// Binary returns the path of the engine's binary, building it on the first
// call of the process (minutes on two cores; later runs find it in the
// user's cache directory). It skips t when the binary cannot be built, or
// fails it under CI=true.
func (e *Engine) Binary(t testing.TB) string {
	t.Helper()
	if _, err := e.Build(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s %s is needed and could not be built: %v", e.App, e.Version, e.buildErr)
		}
		t.Skipf("%s %s could not be built (set CI=true to make this fail): %v", e.App, e.Version, e.buildErr)
	}
	return e.binPath
}

// Build returns the path of the engine's binary as Binary does, for
// programs that are not tests (the benchmarks under bench/).
func (e *Engine) Build() (string, error) {
	e.buildOnce.Do(func() { e.binPath, e.buildErr = e.build() })
	return e.binPath, e.buildErr
}

// build makes the binary in the cache, under a lock so that test processes
// of several packages build it once between them.
func (e *Engine) build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "skytrail", e.App+"-"+e.Version)
	bin := filepath.Join(dir, e.App)
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
	goMod := fmt.Sprintf("module enginebuild\n\ngo 1.26\n\nrequire %s %s\n", e.Module, e.Version)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		return "", err
	}
	tmp := filepath.Join(mod, e.App)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	pkg := e.Module + "/app/" + e.App
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, pkg)
	cmd.Dir = mod
	// Pure Go (no cgo zstd): nothing but the module proxy is needed.
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s@%s: %w\n%s", pkg, e.Version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// StartIn runs a server on a free loopback port with its data in dir (a
// restarted server keeps it), waits until it answers, and stops it when
// the test ends. args are extra command-line flags.
func (e *Engine) StartIn(t testing.TB, dir string, args ...string) *Server {
	t.Helper()
	bin := e.Binary(t)
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "http://" + addr, DataDir: dir, app: e.App, bin: bin, output: &lockedWriter{}}
	s.args = append([]string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + dir,
		"-retentionPeriod=30d",
		"-loggerLevel=WARN",
	}, e.Args...)
	s.args = append(s.args, args...)
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatalf("%s on %s: %v\n%s", e.App, addr, err, s.Output())
	}
	return s
}

// Restart starts a stopped server again, on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		t.Fatalf("restart %s on %s: %v\n%s", s.app, s.URL, err, s.Output())
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
