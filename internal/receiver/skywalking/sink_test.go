package skywalking

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// sink is the far end of the pipeline interfaces for tests: it keeps copies of
// everything it is handed, or refuses everything while full is set.
type sink struct {
	mu         sync.Mutex
	traces     []ptrace.Traces
	logs       []plog.Logs
	metrics    []pmetric.Metrics
	heartbeats []pipeline.Heartbeat
	full       bool
}

// errFull is what the pipeline answers when its in-flight budget is spent.
var errFull = fmt.Errorf("queue full: %w", pipeline.ErrOverloaded)

func (s *sink) consumers() Consumers {
	return Consumers{Traces: s, Logs: s, Metrics: s, Heartbeats: s}
}

func (s *sink) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return errFull
	}
	cp := ptrace.NewTraces()
	td.CopyTo(cp)
	s.traces = append(s.traces, cp)
	return nil
}

func (s *sink) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return errFull
	}
	cp := plog.NewLogs()
	ld.CopyTo(cp)
	s.logs = append(s.logs, cp)
	return nil
}

func (s *sink) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return errFull
	}
	cp := pmetric.NewMetrics()
	md.CopyTo(cp)
	s.metrics = append(s.metrics, cp)
	return nil
}

func (s *sink) ConsumeHeartbeat(_ context.Context, hb pipeline.Heartbeat) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return errFull
	}
	s.heartbeats = append(s.heartbeats, hb)
	return nil
}

func (s *sink) setFull(full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.full = full
}

// spans returns every span received so far, flattened.
func (s *sink) spans() []ptrace.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ptrace.Span
	for _, td := range s.traces {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, span := range ss.Spans().All() {
					out = append(out, span)
				}
			}
		}
	}
	return out
}

func (s *sink) heartbeatList() []pipeline.Heartbeat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pipeline.Heartbeat(nil), s.heartbeats...)
}

// waitFor polls cond until it holds or 15 s pass (the agents report
// asynchronously).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startGRPC serves NewGRPCServer on 127.0.0.1:0 until the test ends.
func startGRPC(t *testing.T, c Consumers, opts Options) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewGRPCServer(c, opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// startHTTP serves NewHTTPHandler on 127.0.0.1:0 until the test ends.
func startHTTP(t *testing.T, c Consumers, opts Options) string {
	t.Helper()
	srv := httptest.NewServer(NewHTTPHandler(c, opts))
	t.Cleanup(srv.Close)
	return srv.URL
}
