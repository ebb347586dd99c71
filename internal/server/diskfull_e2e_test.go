package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
)

// spansPerTrace is the size of one export in the disk-full test: one trace.
const spansPerTrace = 200

// randomHex is n random bytes in hex: spans alike compress to almost
// nothing (0.3 bytes a span) and would never fill the disk.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// traceSpans builds one trace of spansPerTrace spans as the SDK hands them
// to its exporter, with n and random bytes in every span.
func traceSpans(n int) (trace.TraceID, []sdktrace.ReadOnlySpan) {
	var tid trace.TraceID
	copy(tid[:], fmt.Sprintf("disk-full-%06d", n))
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("disk-filler"))
	now := time.Now()
	spans := make([]sdktrace.ReadOnlySpan, spansPerTrace)
	for i := range spans {
		sid := trace.SpanID{byte(i >> 8), byte(i), 1, 2, 3, 4, 5, 6}
		stub := tracetest.SpanStub{
			Name:                 fmt.Sprintf("GET /items/%d", i%20),
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
			SpanKind:             trace.SpanKindServer,
			StartTime:            now.Add(time.Duration(i) * time.Microsecond),
			EndTime:              now.Add(time.Duration(i)*time.Microsecond + 3*time.Millisecond),
			Attributes:           []attribute.KeyValue{attribute.Int("batch", n), attribute.String("http.route", "/items/{id}"), attribute.String("payload", randomHex(32))},
			Resource:             res,
			InstrumentationScope: instrumentation.Scope{Name: "disk-full-test"},
		}
		spans[i] = stub.Snapshot()
	}
	return tid, spans
}

// metricValue reads one sample line from /metrics.
func metricValue(t *testing.T, api, series string) string {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

// TestFullDiskRefusesRetryablyAndRecovers runs a real server on a real
// 64 MiB disk and fills it while an OpenTelemetry SDK exporter sends spans
// as fast as it can (issue 18): before the disk is full the server refuses
// new spans with a retryable error on every receiver, keeps answering
// queries and says so on /metrics; once space is freed it takes spans again
// within seconds, and every span an export was acknowledged for is found,
// no refused one. Before the guard the server acknowledged spans until
// logstorage panicked ("no space left on device"), losing them and
// restarting into the same crash.
func TestFullDiskRefusesRetryablyAndRecovers(t *testing.T) {
	disk := disktest.Tmpfs(t, 64<<20)
	const minFree = 16 << 20
	s := servertest.StartIn(t, filepath.Join(disk, "data"), func(c *server.Config) { c.MinFreeDisk = minFree })
	api := "http://" + s.Addrs["query API"]
	ctx := context.Background()
	// No retries in the exporter: the test sees each export's own answer.
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(ctx) }()

	var (
		mu      sync.Mutex
		acked   []trace.TraceID
		refused []trace.TraceID
		next    int
	)
	export := func(exp *otlptrace.Exporter) error {
		mu.Lock()
		next++
		n := next
		mu.Unlock()
		id, spans := traceSpans(n)
		err := exp.ExportSpans(ctx, spans)
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			acked = append(acked, id)
		} else {
			refused = append(refused, id)
		}
		return err
	}
	if err := export(exp); err != nil {
		t.Fatal(err)
	}

	// Two exporters at full speed while the disk fills to 2 MiB above the
	// limit and then past it.
	unfill := disktest.Fill(t, disk, minFree+2<<20)
	firstErr := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				if err := export(exp); err != nil {
					firstErr <- err
					return
				}
			}
			firstErr <- fmt.Errorf("15 s of exports and none refused")
		}()
	}
	wg.Wait()
	err = <-firstErr
	st, ok := status.FromError(err)
	if !ok || (st.Code() != codes.Unavailable && st.Code() != codes.ResourceExhausted) || !strings.Contains(st.Message(), "free disk space") {
		t.Fatalf("export on a full disk: %v; want Unavailable or ResourceExhausted (both retried by OTLP exporters) saying why", err)
	}
	t.Logf("%d traces acknowledged, then refused with %s: %s", len(acked), st.Code(), st.Message())
	// Deeper under the limit: merges finishing could otherwise free enough
	// to make the store writable again during the checks below.
	disktest.Fill(t, disk, minFree/2)

	// Every receiver answers retryably.
	_, spans := traceSpans(-1)
	req := ptraceotlp.NewExportRequestFromTraces(toPdata(spans))
	body, _ := req.MarshalProto()
	resp, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("OTLP HTTP on a full disk: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	ms := time.Now().UnixMilli()
	segment := fmt.Sprintf(`[{"traceId":"disk-full-sw","traceSegmentId":"disk-full-sw-1","service":"sw-svc","serviceInstance":"sw-1",
		"spans":[{"operationName":"/x","startTime":%d,"endTime":%d,"spanType":"Entry","spanId":0,"parentSpanId":-1,"spanLayer":"Http","componentId":6000}]}]`, ms, ms+5)
	resp, err = http.Post("http://"+s.Addrs["SkyWalking HTTP"]+"/v3/segments", "application/json", strings.NewReader(segment))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("SkyWalking HTTP on a full disk: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}

	// Queries go on, and /metrics says why writes do not. The write-ahead
	// log fills the disk faster than the stores alone: what was acknowledged
	// a moment ago is made searchable (the engine's 1 s) before it is read.
	s.Spans.Flush()
	var services struct{ Services []struct{ Name string } }
	if code := servertest.GetJSON(t, api+"/api/v1/services", &services); code != http.StatusOK || len(services.Services) == 0 {
		t.Errorf("services while read-only: HTTP %d, %+v", code, services)
	}
	var tr nativeTrace
	if code := servertest.GetJSON(t, api+"/api/v1/traces/"+acked[0].String(), &tr); code != http.StatusOK || len(tr.Spans) != spansPerTrace {
		t.Errorf("first trace while read-only: HTTP %d, %d spans", code, len(tr.Spans))
	}
	for _, store := range []string{"spans", "metrics", "wal"} {
		// Each guard reads the same disk on its own clock.
		series := `skytrail_storage_read_only{store="` + store + `"}`
		for deadline := time.Now().Add(time.Second); metricValue(t, api, series) != "1"; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("%s = %q while the disk is full, want 1", series, metricValue(t, api, series))
				break
			}
		}
	}

	// Free the disk: exports succeed again within seconds.
	unfill()
	freed := time.Now()
	for export(exp) != nil {
		if time.Since(freed) > 5*time.Second {
			t.Fatal("exports still refused 5 s after space was freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("exports taken again %v after space was freed", time.Since(freed).Round(time.Millisecond))
	if v := metricValue(t, api, `skytrail_storage_read_only{store="spans"}`); v != "0" {
		t.Errorf(`skytrail_storage_read_only{store="spans"} = %q after space was freed, want 0`, v)
	}

	// Every acknowledged span is there; no refused one is.
	s.Spans.Flush()
	for _, id := range acked {
		if code := servertest.GetJSON(t, api+"/api/v1/traces/"+id.String(), &tr); code != http.StatusOK || len(tr.Spans) != spansPerTrace {
			t.Fatalf("acknowledged trace %s: HTTP %d, %d spans, want %d (of %d acknowledged traces)", id, code, len(tr.Spans), spansPerTrace, len(acked))
		}
	}
	for _, id := range refused {
		if code := servertest.GetJSON(t, api+"/api/v1/traces/"+id.String(), nil); code != http.StatusNotFound {
			t.Errorf("refused trace %s: HTTP %d, want 404", id, code)
		}
	}
}

// toPdata turns SDK spans into the collector's model for a raw OTLP request.
func toPdata(spans []sdktrace.ReadOnlySpan) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "disk-filler")
	out := rs.ScopeSpans().AppendEmpty().Spans()
	for _, sp := range spans {
		p := out.AppendEmpty()
		p.SetTraceID(pcommon.TraceID(sp.SpanContext().TraceID()))
		p.SetSpanID(pcommon.SpanID(sp.SpanContext().SpanID()))
		p.SetName(sp.Name())
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(sp.StartTime()))
		p.SetEndTimestamp(pcommon.NewTimestampFromTime(sp.EndTime()))
	}
	return td
}
