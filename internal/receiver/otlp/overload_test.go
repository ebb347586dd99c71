package otlp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// When the in-flight budget is spent, the receivers turn requests away with
// retryable answers, and the OpenTelemetry SDK's retry delivers the spans
// once there is room again: nothing is lost and memory does not grow.
func TestOverloadAnswersRetryableAndSDKRetries(t *testing.T) {
	store, err := spanstore.Open(spanstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const budget = 1 << 20
	p := pipeline.New(pipeline.Config{MaxInFlightBytes: budget, Storage: store.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{store}})
	r := New(p, Config{})

	// Someone else's huge request in flight.
	hold, err := p.Admit(pipeline.Source{Receiver: "test"}, pipeline.SignalSpans, budget)
	if err != nil {
		t.Fatal(err)
	}

	// HTTP: 429 with Retry-After.
	hs := httptest.NewServer(r.HTTPHandler())
	defer hs.Close()
	body, _ := ptraceotlp.NewExportRequestFromTraces(seedRequest()).MarshalProto()
	resp, err := http.Post(hs.URL+"/v1/traces", contentProtobuf, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("overloaded HTTP answer: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// gRPC: the real exporter gets ResourceExhausted with RetryInfo and retries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := r.NewGRPCServer()
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(ln.Addr().String()), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 100 * time.Millisecond, MaxInterval: 200 * time.Millisecond, MaxElapsedTime: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	go func() {
		time.Sleep(700 * time.Millisecond)
		hold.Release()
	}()
	started := time.Now()
	_, span := tp.Tracer("t").Start(context.Background(), "retried")
	span.End() // the syncer exports now, retrying until the budget frees
	if waited := time.Since(started); waited < 500*time.Millisecond {
		t.Fatalf("export finished after %s: it was not held back by the overload", waited)
	}
	store.Flush()
	td, err := store.GetTrace(context.Background(), [16]byte(span.SpanContext().TraceID()))
	if err != nil || td.SpanCount() != 1 {
		t.Fatalf("retried span not stored: %d spans, %v", td.SpanCount(), err)
	}
}
