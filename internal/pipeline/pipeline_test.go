package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/testutil/metrictest"
)

// frontDoor is the real pipeline over a real span store, with its counters
// in reg and every refusal it publishes collected.
type frontDoor struct {
	p     *pipeline.Pipeline
	store *spanstore.Store
	reg   *prometheus.Registry

	mu      sync.Mutex
	refused []pipeline.Rejection
}

func newFrontDoor(t *testing.T, cfg pipeline.Config, retention time.Duration, extra ...pipeline.TracesConsumer) *frontDoor {
	t.Helper()
	store, err := spanstore.Open(spanstore.Config{Dir: t.TempDir(), Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	d := &frontDoor{store: store, reg: prometheus.NewRegistry()}
	cfg.Registerer, cfg.Storage = d.reg, store.Limits()
	d.p = pipeline.New(cfg, pipeline.Consumers{
		Traces: append([]pipeline.TracesConsumer{store}, extra...),
		Logs:   []pipeline.LogsConsumer{store},
	})
	d.p.Subscribe(func(r pipeline.Rejection) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.refused = append(d.refused, r)
	})
	return d
}

func (d *frontDoor) rejections() []pipeline.Rejection {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]pipeline.Rejection(nil), d.refused...)
}

// count reads a counter or gauge of the front door, as /metrics would.
func (d *frontDoor) count(t *testing.T, metric string, labels ...string) float64 {
	t.Helper()
	return metrictest.Value(t, d.reg, metric, labels...)
}

var src = pipeline.Source{Receiver: "otlp-grpc", Client: "10.0.0.7:51234"}

// spans builds n spans of service (none: no service.name at all) starting
// at start.
func spans(service string, n int, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	if service != "" {
		rs.Resource().Attributes().PutStr("service.name", service)
	}
	rs.Resource().Attributes().PutStr("host.name", "node-1")
	rs.Resource().Attributes().PutInt("process.pid", 42)
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := ss.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, byte(i + 1)})
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	}
	return td
}

// A batch with some invalid spans: the rest is stored and acknowledged as a
// partial success, the refused ones are counted and published with the
// client that sent them.
func TestIngestStoresTheValidAndPublishesTheRefused(t *testing.T) {
	t.Parallel()
	d := newFrontDoor(t, pipeline.Config{}, 24*time.Hour)
	td := spans("orders", 3, time.Now())
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetSpanID(pcommon.SpanID{})

	out, err := d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: td})
	if err != nil {
		t.Fatal(err)
	}
	if out.Accepted != 2 || out.Rejected != 1 || !strings.Contains(out.Message, "1 of 3 spans rejected; first: span \"op\" of service \"orders\": span ID is missing") {
		t.Fatalf("outcome %+v", out)
	}
	got := d.rejections()
	if len(got) != 1 || got[0].Reason != pipeline.Invalid || got[0].Items != 1 || got[0].Client != src.Client ||
		got[0].Receiver != src.Receiver || got[0].Signal != pipeline.SignalSpans {
		t.Fatalf("published %+v", got)
	}
	for metric, want := range map[string]float64{
		"skytrail_receiver_spans_received_total": 3,
		"skytrail_receiver_spans_accepted_total": 2,
	} {
		if v := d.count(t, metric, "receiver", src.Receiver); v != want {
			t.Errorf("%s = %v, want %v", metric, v, want)
		}
	}
	if v := d.count(t, "skytrail_receiver_spans_rejected_total", "receiver", src.Receiver, "reason", "invalid"); v != 1 {
		t.Errorf("rejected{invalid} = %v, want 1", v)
	}
	d.store.Flush()
	if got, err := d.store.GetTrace(context.Background(), pcommon.TraceID{1, 3}); err != nil || got.SpanCount() != 1 {
		t.Errorf("the valid span was not stored: %v", err)
	}
}

// The span store states its limits and the front door keeps to them: with a
// day's retention, a span from two days ago is refused (Invalid, never
// retried) though the configured limits alone would take a week.
func TestIngestKeepsToWhatStorageStates(t *testing.T) {
	t.Parallel()
	d := newFrontDoor(t, pipeline.Config{Limits: pipeline.Limits{MaxAge: 7 * 24 * time.Hour}}, 24*time.Hour)
	_, err := d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: spans("orders", 1, time.Now().Add(-48*time.Hour))})
	if pipeline.ReasonOf(err) != pipeline.Invalid || !strings.Contains(err.Error(), "older than the retention allows") {
		t.Fatalf("err = %v, want Invalid: older than the retention", err)
	}
	if pipeline.ReasonOf(err).Retryable() {
		t.Error("an invalid batch is retryable")
	}
	limits := d.p.Limits()
	if limits.MaxKeyBytes != spanstore.MaxAttributeKeyLen || limits.MaxAge != 24*time.Hour {
		t.Errorf("effective limits %+v, want the store's key length and retention", limits)
	}
}

// A resource without service.name is unknown_service everywhere: in what
// the consumers are told, and in what storage keeps.
func TestIngestNamesTheUnknownServiceOnce(t *testing.T) {
	t.Parallel()
	var seen []pipeline.Resource
	d := newFrontDoor(t, pipeline.Config{}, 24*time.Hour, consumerFunc(func(td pipeline.Traces) error {
		seen = append(seen, td.Resources...)
		return nil
	}))
	if _, err := d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: spans("", 1, time.Now())}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != (pipeline.Resource{Service: pipeline.UnknownService, Instance: "node-1:42"}) {
		t.Fatalf("consumers were told %+v", seen)
	}
	d.store.Flush()
	services, err := d.store.Services(context.Background())
	if err != nil || len(services) != 1 || services[0] != pipeline.UnknownService {
		t.Fatalf("stored services %v (%v), want [unknown_service]", services, err)
	}
}

type consumerFunc func(pipeline.Traces) error

func (f consumerFunc) ConsumeTraces(_ context.Context, td pipeline.Traces) error { return f(td) }

// Over the in-flight budget a request is refused at once, retryably, and
// counted with all it carried; when a consumer fails, the client is told to
// retry (Unavailable), and nothing is counted as accepted.
func TestOverloadAndConsumerFailureAreRetryable(t *testing.T) {
	t.Parallel()
	failing := errors.New("disk on fire")
	fail := false
	d := newFrontDoor(t, pipeline.Config{MaxInFlightBytes: 1 << 20}, 24*time.Hour, consumerFunc(func(pipeline.Traces) error {
		if fail {
			return failing
		}
		return nil
	}))
	held, err := d.p.Admit(pipeline.Source{Receiver: "otlp-http"}, pipeline.SignalSpans, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: spans("orders", 5, time.Now())})
	if pipeline.ReasonOf(err) != pipeline.Overloaded || !pipeline.ReasonOf(err).Retryable() {
		t.Fatalf("over budget: err = %v, want Overloaded", err)
	}
	if v := d.count(t, "skytrail_receiver_spans_rejected_total", "reason", "overloaded"); v != 5 {
		t.Errorf("rejected{overloaded} = %v, want the 5 spans", v)
	}
	if v := d.count(t, "skytrail_pipeline_inflight_bytes"); v != 1<<20 {
		t.Errorf("in flight %v bytes, want %d", v, 1<<20)
	}
	held.Release()
	held.Release() // twice is harmless

	fail = true
	_, err = d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: spans("orders", 2, time.Now())})
	if pipeline.ReasonOf(err) != pipeline.Unavailable || !errors.Is(err, failing) {
		t.Fatalf("consumer failure: err = %v, want Unavailable wrapping it", err)
	}
	if v := d.count(t, "skytrail_receiver_spans_accepted_total"); v != 0 {
		t.Errorf("accepted = %v after only refusals", v)
	}
	reasons := map[pipeline.Reason]int{}
	for _, r := range d.rejections() {
		reasons[r.Reason] += r.Items
	}
	if reasons[pipeline.Overloaded] != 5 || reasons[pipeline.Unavailable] != 2 {
		t.Errorf("published refusals %v", reasons)
	}
}

// Logs go through the same door: validated, counted in log records, and
// stored.
func TestLogsThroughTheFrontDoor(t *testing.T) {
	t.Parallel()
	d := newFrontDoor(t, pipeline.Config{}, 24*time.Hour)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "orders")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	ok := recs.AppendEmpty()
	ok.Body().SetStr("order 1001 failed")
	ok.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	bad := recs.AppendEmpty()
	bad.Body().SetStr("x")
	bad.Attributes().PutStr(strings.Repeat("k", 200), "v")

	out, err := d.p.Ingest(context.Background(), src, &pipeline.Logs{Logs: ld})
	if err != nil || out.Accepted != 1 || out.Rejected != 1 || !strings.Contains(out.Message, "attribute key") {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if v := d.count(t, "skytrail_receiver_log_records_accepted_total", "receiver", src.Receiver); v != 1 {
		t.Errorf("log records accepted = %v, want 1", v)
	}
	d.store.Flush()
	logs, err := d.store.Logs(context.Background(), spanstore.LogQuery{Service: "orders"})
	if err != nil || len(logs) != 1 || logs[0].Body != "order 1001 failed" {
		t.Fatalf("stored logs %+v (%v)", logs, err)
	}
}

// A request refused before it became a batch (no token, a body that does
// not decode) is counted once and published.
func TestRefusalsBeforeDecoding(t *testing.T) {
	t.Parallel()
	d := newFrontDoor(t, pipeline.Config{}, 24*time.Hour)
	err := d.p.Refuse(src, pipeline.SignalHeartbeats, pipeline.Unauthenticated, errors.New("wrong token"))
	if err.Reason != pipeline.Unauthenticated || err.Error() != "wrong token" {
		t.Fatalf("refusal %+v", err)
	}
	req, aerr := d.p.Admit(src, pipeline.SignalSpans, 100)
	if aerr != nil {
		t.Fatal(aerr)
	}
	req.Refuse(pipeline.Malformed, errors.New("not protobuf"))
	req.Release()
	if v := d.count(t, "skytrail_receiver_heartbeats_rejected_total", "reason", "unauthenticated"); v != 1 {
		t.Errorf("heartbeats rejected{unauthenticated} = %v", v)
	}
	if v := d.count(t, "skytrail_receiver_spans_rejected_total", "reason", "malformed"); v != 1 {
		t.Errorf("spans rejected{malformed} = %v", v)
	}
	if got := d.rejections(); len(got) != 2 || got[1].Message != "not protobuf" {
		t.Errorf("published %+v", got)
	}
}

// Whatever the client sends, what the front door acknowledges storage
// keeps: a span over what one stored row may hold is refused (it was once
// acknowledged and then dropped by the engine with a warning), and one just
// under it is stored and read back whole.
func TestRowsStorageCannotHoldAreRefused(t *testing.T) {
	t.Parallel()
	d := newFrontDoor(t, pipeline.Config{Limits: pipeline.Limits{MaxValueBytes: 1 << 20, MaxSpanBytes: 8 << 20}}, 24*time.Hour)
	withAttrs := func(id byte, value string, n int) ptrace.Traces {
		td := spans("orders", 1, time.Now())
		sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		sp.SetTraceID(pcommon.TraceID{9, id})
		for i := range n {
			sp.Attributes().PutStr(fmt.Sprintf("blob.%d", i), value)
		}
		return td
	}
	// 1.5 MB of text: one row of about 1.5 MB.
	fits := withAttrs(1, strings.Repeat("a", 500<<10), 3)
	if _, err := d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: fits}); err != nil {
		t.Fatalf("a 1.5 MB span: %v", err)
	}
	// The same with an event of 700 KiB, which the store keeps as base64
	// of its protobuf: about 2.4 MB, over the 2 MiB a row may take.
	tooBig := withAttrs(2, strings.Repeat("a", 500<<10), 3)
	tooBig.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Events().AppendEmpty().Attributes().PutStr("stack", strings.Repeat("b", 700<<10))
	_, err := d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: tooBig})
	if pipeline.ReasonOf(err) != pipeline.Invalid || !strings.Contains(err.Error(), "storage keeps of one span") {
		t.Fatalf("a span storage cannot hold: %v, want Invalid", err)
	}
	// Control characters take four bytes each where the store quotes text
	// (attributes over a service's column budget): 3 x 500 KiB of them may
	// take 6 MB, and are refused too.
	_, err = d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: withAttrs(3, strings.Repeat("\x01", 500<<10), 3)})
	if pipeline.ReasonOf(err) != pipeline.Invalid {
		t.Fatalf("a span of control characters: %v, want Invalid", err)
	}
	d.store.Flush()
	got, err := d.store.GetTrace(context.Background(), pcommon.TraceID{9, 1})
	if err != nil || got.SpanCount() != 1 {
		t.Fatalf("the 1.5 MB span was not stored: %v", err)
	}
	if v, _ := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("blob.2"); len(v.Str()) != 500<<10 {
		t.Errorf("blob.2 read back %d bytes", len(v.Str()))
	}
}

type logsConsumerFunc func(pipeline.Logs) error

func (f logsConsumerFunc) ConsumeLogs(_ context.Context, ld pipeline.Logs) error { return f(ld) }

func oneLogLine(service string) *pipeline.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", service)
	rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	rec.Body().SetStr("order 1001 failed")
	rec.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	return &pipeline.Logs{Logs: ld}
}

// await receives from ch, or fails the test after 10 s saying what it waited for.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("waited 10 s for %s", what)
	}
}

// While spans are being stored, batches of log lines are stored at most
// half the cores at a time, so a flood of them leaves the other half to
// spans; without spans they take every core.
func TestLogFloodLeavesRoomForSpans(t *testing.T) {
	t.Parallel()
	slots := max(1, runtime.GOMAXPROCS(0)/2)
	entered, releaseLogs := make(chan struct{}, slots+1), make(chan struct{})
	logs := logsConsumerFunc(func(pipeline.Logs) error {
		entered <- struct{}{}
		<-releaseLogs
		return nil
	})
	spansEntered, releaseSpans := make(chan struct{}, 1), make(chan struct{})
	p := pipeline.New(pipeline.Config{}, pipeline.Consumers{
		Logs: []pipeline.LogsConsumer{logs},
		Traces: []pipeline.TracesConsumer{consumerFunc(func(pipeline.Traces) error {
			spansEntered <- struct{}{}
			<-releaseSpans
			return nil
		})},
	})
	var wg sync.WaitGroup
	ingestLogs := func(n int) {
		for range n {
			wg.Go(func() {
				if _, err := p.Ingest(context.Background(), src, oneLogLine("orders")); err != nil {
					t.Error(err)
				}
			})
		}
	}

	// Logs alone: every batch at once.
	ingestLogs(slots + 1)
	for range slots + 1 {
		await(t, entered, "log batches stored at once with no spans")
	}
	releaseLogs <- struct{}{} // one at a time, so the rest stay blocked
	for range slots {
		releaseLogs <- struct{}{}
	}
	wg.Wait()

	// With spans being stored: at most slots log batches at once.
	wg.Go(func() {
		if _, err := p.Ingest(context.Background(), src, &pipeline.Traces{Traces: spans("orders", 3, time.Now())}); err != nil {
			t.Error(err)
		}
	})
	await(t, spansEntered, "the span batch")
	ingestLogs(slots + 1)
	for range slots {
		await(t, entered, "log batches beside spans")
	}
	select {
	case <-entered:
		t.Fatalf("%d log batches stored at once beside spans, want at most %d", slots+1, slots)
	case <-time.After(100 * time.Millisecond):
	}
	close(releaseSpans)
	close(releaseLogs)
	await(t, entered, "the log batch that waited for a slot")
	wg.Wait()
}
