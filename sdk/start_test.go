package sdk_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/skytrail/skytrail/sdk"
)

// onEnd is a span processor calling f for each ended span.
type onEnd func(sdktrace.ReadOnlySpan)

func (f onEnd) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (f onEnd) OnEnd(s sdktrace.ReadOnlySpan)                   { f(s) }
func (f onEnd) Shutdown(context.Context) error                  { return nil }
func (f onEnd) ForceFlush(context.Context) error                { return nil }

// syncBuffer collects log output written from the test and the SDK.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func textLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// start runs sdk.Start and registers its shutdown; the returned function
// flushes early (idempotent).
func start(t *testing.T, opts ...sdk.Option) func() {
	t.Helper()
	shutdown, err := sdk.Start(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	flush := func() {
		once.Do(func() {
			if err := shutdown(context.Background()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(flush)
	return flush
}

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestStartExportsOverGRPC(t *testing.T) {
	col, addr := startGRPCCollector(t)
	logger, logs := textLogger()
	flush := start(t, sdk.WithServiceName("checkout"), sdk.WithEndpoint("http://"+addr),
		sdk.WithBatchTimeout(10*time.Millisecond), sdk.WithLogger(logger),
		sdk.WithHeaders(map[string]string{"authentication": "token-1"}))

	_, span := otel.Tracer("test").Start(context.Background(), "work")
	span.End()
	flush()

	if want := "exporting traces to http://" + addr + " (OTLP/gRPC)"; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not say %q", logs, want)
	}
	got := col.span(t, "work")
	if hex.EncodeToString(got.span.TraceId) != span.SpanContext().TraceID().String() {
		t.Error("exported trace ID differs from the span's")
	}
	res := got.resource
	if res["service.name"] != "checkout" || !uuidV5.MatchString(res["service.instance.id"]) ||
		res["host.name"] == "" || res["telemetry.sdk.name"] != "opentelemetry" ||
		res["telemetry.distro.name"] != "skytrail-sdk" || res["process.executable.name"] == "" {
		t.Errorf("resource %v", res)
	}
	if _, ok := res["process.command_args"]; ok {
		t.Error("resource carries the command line, which may hold secrets")
	}
	if h := col.headers[0]["authentication"]; len(h) != 1 || h[0] != "token-1" {
		t.Errorf("metadata authentication=%v", h)
	}
	if ts := got.span.TraceState; ts != "ot=th:0" {
		t.Errorf("root span tracestate %q, want ot=th:0 (kept with probability 1)", ts)
	}
}

// TestStartFromEnvironment configures the HTTP exporter with the standard
// variables only, then checks that options win over them.
func TestStartFromEnvironment(t *testing.T) {
	col, addr := startHTTPCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc")
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=slot-7,deployment.environment.name=test")
	logger, _ := textLogger()
	flush := start(t, sdk.WithBatchTimeout(10*time.Millisecond), sdk.WithLogger(logger))
	_, span := otel.Tracer("test").Start(context.Background(), "env")
	span.End()
	flush()

	got := col.span(t, "env")
	if got.resource["service.name"] != "from-env" || got.resource["service.instance.id"] != "slot-7" ||
		got.resource["deployment.environment.name"] != "test" {
		t.Errorf("resource %v", got.resource)
	}
	if col.paths[0] != "/v1/traces" {
		t.Errorf("posted to %q, want /v1/traces", col.paths[0])
	}
	if h := col.headers[0]["Authorization"]; len(h) != 1 || h[0] != "Bearer abc" {
		t.Errorf("Authorization=%v", h)
	}

	// Options win over the environment.
	col2, addr2 := startHTTPCollector(t)
	flush2 := start(t, sdk.WithBatchTimeout(10*time.Millisecond), sdk.WithLogger(logger),
		sdk.WithEndpoint("http://"+addr2+"/v1/traces"), sdk.WithServiceName("from-option"),
		sdk.WithServiceInstanceID("slot-9"))
	_, span = otel.Tracer("test").Start(context.Background(), "option")
	span.End()
	flush2()
	got = col2.span(t, "option")
	if got.resource["service.name"] != "from-option" || got.resource["service.instance.id"] != "slot-9" {
		t.Errorf("resource %v", got.resource)
	}
}

func TestStartHTTPSWithTLSConfig(t *testing.T) {
	col, addr, tlsConfig := startHTTPSCollector(t)
	logger, logs := textLogger()
	flush := start(t, sdk.WithServiceName("tls"), sdk.WithProtocol(sdk.ProtocolHTTP), sdk.WithEndpoint(addr),
		sdk.WithTLSConfig(tlsConfig), sdk.WithLogger(logger), sdk.WithTimeout(5*time.Second))
	_, span := otel.Tracer("test").Start(context.Background(), "over tls")
	span.End()
	flush()
	col.span(t, "over tls")
	if want := "exporting traces to https://" + addr + "/v1/traces (OTLP/HTTP)"; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not say %q", logs, want)
	}
}

// TestStartupCheckNamesTLSProblem points at a TLS endpoint whose certificate
// the service does not trust.
func TestStartupCheckNamesTLSProblem(t *testing.T) {
	_, addr, _ := startHTTPSCollector(t)
	logger, logs := textLogger()
	start(t, sdk.WithServiceName("tls"), sdk.WithProtocol(sdk.ProtocolHTTP), sdk.WithEndpoint("https://"+addr), sdk.WithLogger(logger))
	want := "cannot reach https://" + addr + "/v1/traces (OTLP/HTTP): tls: failed to verify certificate: x509: certificate signed by unknown authority"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not say %q", logs, want)
	}
}

func TestStartupCheckNamesClosedPort(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close() // nothing listens there now

	logger, logs := textLogger()
	began := time.Now()
	start(t, sdk.WithServiceName("svc"), sdk.WithEndpoint(addr), sdk.WithInsecure(), sdk.WithLogger(logger))
	if d := time.Since(began); d > 2*sdk.DefaultStartupCheck {
		t.Errorf("Start took %v with nothing listening", d)
	}
	want := "cannot reach http://" + addr + " (OTLP/gRPC): connection refused; spans will be dropped until it is reachable"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not say %q", logs, want)
	}
	if strings.Count(logs.String(), "\n") != 1 {
		t.Errorf("want exactly one log line, got %q", logs)
	}
}

func TestStartRejectsBadConfiguration(t *testing.T) {
	for name, opts := range map[string][]sdk.Option{
		"protocol": {sdk.WithProtocol("thrift")},
		"scheme":   {sdk.WithEndpoint("ftp://x:1")},
		"rate":     {sdk.WithTracesPerSecond(-1)},
	} {
		if _, err := sdk.Start(context.Background(), append(opts, sdk.WithStartupCheck(0))...); err == nil {
			t.Errorf("%s: Start accepted a bad configuration", name)
		}
	}
}

func TestGoKeepsParentSpan(t *testing.T) {
	col, addr := startGRPCCollector(t)
	logger, _ := textLogger()
	ended := make(chan struct{})
	flush := start(t, sdk.WithServiceName("svc"), sdk.WithEndpoint("http://"+addr), sdk.WithLogger(logger),
		sdk.WithSpanProcessor(onEnd(func(s sdktrace.ReadOnlySpan) {
			if s.Name() == "send receipt" {
				close(ended)
			}
		})))

	parentCtx, cancel := context.WithCancel(context.Background())
	parentCtx, parent := otel.Tracer("test").Start(parentCtx, "request")
	done := make(chan error, 1)
	sdk.Go(parentCtx, "send receipt", func(ctx context.Context) {
		<-time.After(20 * time.Millisecond)
		done <- ctx.Err()
	})
	cancel() // the request ends before the background work does
	parent.End()
	if err := <-done; err != nil {
		t.Errorf("background context was cancelled with its parent: %v", err)
	}
	<-ended
	flush()

	child := col.span(t, "send receipt")
	if hex.EncodeToString(child.span.ParentSpanId) != parent.SpanContext().SpanID().String() ||
		hex.EncodeToString(child.span.TraceId) != parent.SpanContext().TraceID().String() {
		t.Errorf("goroutine span is not a child of the request span")
	}
}
