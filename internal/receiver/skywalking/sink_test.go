package skywalking

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/testutil/metrictest"
)

// sink is the far end of the pipeline for tests: a consumer of every kind
// that keeps copies of everything it is handed, or refuses everything while
// full is set. The receivers reach it through the real front door.
type sink struct {
	mu         sync.Mutex
	traces     []ptrace.Traces
	logs       []plog.Logs
	metrics    []pmetric.Metrics
	heartbeats []pipeline.Heartbeat
	full       bool
	// reg holds the front door's counters, once door has made it.
	reg *prometheus.Registry
}

// errFull is what a consumer answers when it has no room.
var errFull = fmt.Errorf("queue full: %w", pipeline.ErrOverloaded)

// door is the real front door over s, taking agents' data from any time:
// the tests' segments are stamped in 2023.
func (s *sink) door() *pipeline.Pipeline {
	s.reg = prometheus.NewRegistry()
	return newDoor(s.reg, pipeline.Consumers{
		Traces:     []pipeline.TracesConsumer{s},
		Logs:       []pipeline.LogsConsumer{s},
		Metrics:    []pipeline.MetricsConsumer{s},
		Heartbeats: []pipeline.HeartbeatConsumer{s},
	})
}

func newDoor(reg prometheus.Registerer, c pipeline.Consumers) *pipeline.Pipeline {
	return pipeline.New(pipeline.Config{Limits: pipeline.Limits{MaxAge: 100 * 365 * 24 * time.Hour}, Registerer: reg}, c)
}

// counter reads a front-door counter: name with the given label values.
func (s *sink) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metrictest.Value(t, s.reg, name, labels...)
}

func (s *sink) ConsumeTraces(_ context.Context, td pipeline.Traces) error {
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

func (s *sink) ConsumeLogs(_ context.Context, ld pipeline.Logs) error {
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

func (s *sink) ConsumeMetrics(_ context.Context, md pipeline.Metrics) error {
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

// startGRPC serves NewGRPCServer on 127.0.0.1:0 until the test ends.
func startGRPC(t *testing.T, p *pipeline.Pipeline, opts Options) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewGRPCServer(p, opts)
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
func startHTTP(t *testing.T, p *pipeline.Pipeline, opts Options) string {
	t.Helper()
	srv := httptest.NewServer(NewHTTPHandler(p, opts))
	t.Cleanup(srv.Close)
	return srv.URL
}
