// Package servertest runs a real SkyTrail server for other packages' tests:
// every listener on 127.0.0.1 with a port of its own, a temporary data
// directory, quiet logs, stopped when the test ends; and real agents
// reporting to it. Servers started here share nothing with each other, so
// tests using them may run in parallel.
package servertest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"github.com/SkyAPM/go2sky/reporter"

	"github.com/skytrail/skytrail/internal/server"
)

// Config is the configuration Start runs with, keeping its data in dir:
// every listener on a loopback port of its own, quiet logs, traces judged
// for integrity a second after their last span instead of 30 s, and no
// memory limit: debug.SetMemoryLimit sets the whole process' limit, which
// tests running in parallel share (and one that allows a single server
// 384 MiB would make the collector work hard for a dozen).
func Config(dir string) server.Config {
	cfg := server.Defaults()
	cfg.DataDir = dir
	cfg.HTTPAddr, cfg.OTLPGRPCAddr, cfg.OTLPHTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SWGRPCAddr, cfg.SWHTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.MemoryLimit = 0
	cfg.Integrity.Grace = time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// Start runs a server (Config) on a new temporary directory; configure,
// when given, changes the configuration before the server starts. The
// server is shut down when the test ends.
func Start(t testing.TB, configure ...func(*server.Config)) *server.Server {
	t.Helper()
	return StartIn(t, t.TempDir(), configure...)
}

// StartIn is Start on the data in dir: started again on the directory of
// a server that was shut down, it serves what that one stored.
func StartIn(t testing.TB, dir string, configure ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := Config(dir)
	for _, c := range configure {
		c(&cfg)
	}
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatalf("starting a server on %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// Go2sky is a real go2sky tracer for service (instance service-1)
// reporting to s (Go2skyReporter).
func Go2sky(t testing.TB, s *server.Server, service string, opts ...reporter.GRPCReporterOption) *go2sky.Tracer {
	t.Helper()
	tracer, err := go2sky.NewTracer(service, go2sky.WithReporter(Go2skyReporter(t, s, opts...)), go2sky.WithInstance(service+"-1"))
	if err != nil {
		t.Fatal(err)
	}
	return tracer
}

// Go2skyReporter is go2sky's gRPC reporter sending to s's SkyWalking gRPC
// port, checking in every 200 ms, closed when the test ends; opts add to
// or change its settings (reporter.WithAuthentication for a token). For a
// tracer Go2sky does not make (another sampler, say).
func Go2skyReporter(t testing.TB, s *server.Server, opts ...reporter.GRPCReporterOption) go2sky.Reporter {
	t.Helper()
	opts = append([]reporter.GRPCReporterOption{reporter.WithCheckInterval(200 * time.Millisecond)}, opts...)
	r, err := reporter.NewGRPCReporter(s.Addrs["SkyWalking gRPC"], opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// GetJSON GETs url and, when it answers 200, decodes its JSON body into
// out (a pointer; nil skips decoding), failing t when either fails. It
// returns the status code.
//
// out is set to its zero value before decoding: callers poll into the same
// variable, and encoding/json decodes a slice's elements into the old ones
// in place, keeping fields the new JSON omits and merging maps. A poll that
// once saw a partial trace left its root span with another span's parent,
// status message and attributes (a CI failure).
func GetJSON(t testing.TB, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}
