// Package servertest runs a real SkyTrail server for other packages' tests:
// every listener on 127.0.0.1 with a port of its own, a temporary data
// directory, quiet logs, stopped when the test ends; and real agents
// reporting to it.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"github.com/SkyAPM/go2sky/reporter"

	"github.com/skytrail/skytrail/internal/server"
)

// Start runs a server with every listener on a loopback port and a one
// second integrity grace period; configure, when given, changes the
// configuration before the server starts.
func Start(t testing.TB, configure ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.OTLPGRPCAddr, cfg.OTLPHTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.SWGRPCAddr, cfg.SWHTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	// Traces are judged a second after their last span, not 30 s.
	cfg.Integrity.Grace = time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range configure {
		c(&cfg)
	}
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// Go2sky is a real go2sky tracer for service (instance service-1)
// reporting to s over SkyWalking gRPC, checking in every 200 ms.
func Go2sky(t testing.TB, s *server.Server, service string, opts ...reporter.GRPCReporterOption) *go2sky.Tracer {
	t.Helper()
	opts = append([]reporter.GRPCReporterOption{reporter.WithCheckInterval(200 * time.Millisecond)}, opts...)
	r, err := reporter.NewGRPCReporter(s.Addrs["SkyWalking gRPC"], opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	tracer, err := go2sky.NewTracer(service, go2sky.WithReporter(r), go2sky.WithInstance(service+"-1"))
	if err != nil {
		t.Fatal(err)
	}
	return tracer
}
