package spanstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

// oneTrace is a batch of n spans of one trace of service "svc".
func oneTrace(id byte, n int) *pipeline.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	start := time.Now().Add(-time.Second)
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{id, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, byte(id)})
		sp.SetSpanID(pcommon.SpanID{id, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	}
	return &pipeline.Traces{Traces: td, Resources: []pipeline.Resource{{Service: "svc"}}}
}

var src = pipeline.Source{Receiver: "otlp-grpc", Client: "127.0.0.1:1"}

// spanIDs is the set of span IDs GetTrace returns, duplicates counted once:
// a batch retried after a failure may be stored twice, never lost.
func spanIDs(t *testing.T, s *spanstore.Store, id byte) map[pcommon.SpanID]bool {
	t.Helper()
	td, err := s.GetTrace(t.Context(), pcommon.TraceID{id, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, id})
	if err != nil {
		return nil
	}
	out := map[pcommon.SpanID]bool{}
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		out[spans.At(i).SpanID()] = true
	}
	return out
}

// A VictoriaLogs that is down fails writes retryably (the pipeline's
// storage reason: 503 / Unavailable with Retry-After) and queries with an
// error naming the server; once it is back, the client's retry stores the
// whole batch.
func TestRemoteDownIsRetryable(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	s := openRemote(t, spanstore.RemoteConfig{InsertURL: vl.URL, Timeout: 2 * time.Second})
	p := pipeline.New(pipeline.Config{Storage: s.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{s}})

	vl.Stop()
	_, err := p.Ingest(t.Context(), src, oneTrace(1, 5))
	var perr *pipeline.Error
	if !errors.As(err, &perr) || perr.Reason != pipeline.Unavailable || !perr.Reason.Retryable() {
		t.Fatalf("ingest with VictoriaLogs down: %v; want a retryable %q error", err, pipeline.Unavailable)
	}
	if !strings.Contains(err.Error(), vl.URL) {
		t.Errorf("ingest error %q does not name the server %s", err, vl.URL)
	}
	_, err = s.GetTrace(t.Context(), pcommon.TraceID{1})
	if err == nil || errors.Is(err, spanstore.ErrNotFound) || !strings.Contains(err.Error(), vl.URL) {
		t.Errorf("GetTrace with VictoriaLogs down: %v; want an error naming %s, not 'not found'", err, vl.URL)
	}
	if _, err := s.FindTraces(t.Context(), spanstore.TraceQuery{}); err == nil || !strings.Contains(err.Error(), vl.URL) {
		t.Errorf("FindTraces with VictoriaLogs down: %v; want an error naming %s", err, vl.URL)
	}
	if _, err := s.Services(t.Context()); err == nil {
		t.Error("Services with VictoriaLogs down succeeded")
	}

	vl.Restart(t)
	if _, err := p.Ingest(t.Context(), src, oneTrace(1, 5)); err != nil {
		t.Fatalf("retry once VictoriaLogs is back: %v", err)
	}
	s.Flush()
	poll.Until(t, 10*time.Second, "the retried batch, whole", func() bool { return len(spanIDs(t, s, 1)) == 5 })
}

// A VictoriaLogs that does not answer in time (stopped with SIGSTOP) fails
// the batch retryably within the store's timeout, not the client's; the
// retry after it resumes leaves every span stored.
func TestRemoteSlowIsRetryable(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	s := openRemote(t, spanstore.RemoteConfig{InsertURL: vl.URL, Timeout: 500 * time.Millisecond})
	p := pipeline.New(pipeline.Config{Storage: s.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{s}})

	if err := vl.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := p.Ingest(ctx, src, oneTrace(2, 7))
	if pipeline.ReasonOf(err) != pipeline.Unavailable {
		t.Fatalf("ingest with VictoriaLogs paused: %v; want a retryable %q error", err, pipeline.Unavailable)
	}
	if _, err := s.FindTraceIDs(ctx, spanstore.TraceQuery{}); err == nil || !strings.Contains(err.Error(), vl.URL) {
		t.Errorf("search with VictoriaLogs paused: %v; want an error naming %s", err, vl.URL)
	}
	if err := vl.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Ingest(ctx, src, oneTrace(2, 7)); err != nil {
		t.Fatalf("retry once VictoriaLogs resumed: %v", err)
	}
	s.Flush()
	poll.Until(t, 10*time.Second, "the retried batch, whole", func() bool { return len(spanIDs(t, s, 2)) == 7 })
}

// OpenRemote refuses a server that does not answer, at start.
func TestOpenRemoteUnreachable(t *testing.T) {
	t.Parallel()
	_, err := spanstore.OpenRemote(spanstore.RemoteConfig{InsertURL: "http://127.0.0.1:1", Dir: t.TempDir(), Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("OpenRemote on a closed port: %v; want an error naming it", err)
	}
	if _, err := spanstore.OpenRemote(spanstore.RemoteConfig{InsertURL: "vl:9428", Dir: t.TempDir()}); err == nil {
		t.Error("OpenRemote took a URL without a scheme")
	}
}

// Agent logs take the same way: stored in VictoriaLogs' logs tenant and
// read back by service and trace ID.
func TestRemoteLogs(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	s := openRemote(t, spanstore.RemoteConfig{InsertURL: vl.URL})
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "svc")
	rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.SetTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Second)))
	rec.Body().SetStr("payment failed")
	rec.SetSeverityText("ERROR")
	trace := pcommon.TraceID{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}
	rec.SetTraceID(trace)
	rec.Attributes().PutStr("order", "1001")
	if err := s.ConsumeLogs(t.Context(), pipeline.Logs{Logs: ld, Resources: []pipeline.Resource{{Service: "svc"}}}); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	var got []spanstore.LogEntry
	poll.UntilNil(t, 10*time.Second, func() error {
		var err error
		got, err = s.Logs(t.Context(), spanstore.LogQuery{Service: "svc", TraceIDs: []pcommon.TraceID{trace}, Text: "payment", Fields: []spanstore.FieldFilter{{Name: "order", Value: "1001"}}})
		if err == nil && len(got) != 1 {
			err = fmt.Errorf("%d log records found, want 1", len(got))
		}
		return err
	})
	if e := got[0]; e.Body != "payment failed" || e.Severity != "ERROR" || e.Service != "svc" || e.Attributes["order"] != "1001" {
		t.Errorf("log record read back = %+v", e)
	}
}
