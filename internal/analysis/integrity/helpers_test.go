package integrity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"github.com/SkyAPM/go2sky/reporter"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
)

// grace is the judging delay the tests run with, instead of 30 s.
const grace = time.Second

// startServer runs a SkyTrail on loopback ports with a short grace period.
func startServer(t *testing.T, token string) *server.Server {
	t.Helper()
	return startServerWith(t, token, func(*server.Config) {})
}

func startServerWith(t *testing.T, token string, configure func(*server.Config)) *server.Server {
	t.Helper()
	return servertest.Start(t, func(c *server.Config) {
		c.SWToken, c.SWHTTPAddr = token, ""
		c.Integrity.Grace = grace
		c.Analysis.Instances.AliveTimeout = time.Minute
	}, configure)
}

// otelService is a service instrumented with the OpenTelemetry SDK,
// exporting over OTLP gRPC as a real service does.
func otelService(t *testing.T, s *server.Server, name string) *sdktrace.TracerProvider {
	t.Helper()
	return otelServiceWith(t, s, name, semconv.ServiceInstanceID(name+"-1"))
}

func otelServiceWith(t *testing.T, s *server.Server, name string, attrs ...attribute.KeyValue) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, append(attrs, semconv.ServiceName(name))...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// w3c is the propagator a correctly set up OpenTelemetry service uses.
var w3c = propagation.TraceContext{}

// serve runs h behind otelhttp's server middleware with prop as the
// propagator it extracts with.
func serve(t *testing.T, tp *sdktrace.TracerProvider, prop propagation.TextMapPropagator, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(otelhttp.NewHandler(h, "server", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path })))
	t.Cleanup(srv.Close)
	return srv
}

// client is an HTTP client whose calls are client spans of tp, injecting
// the context with prop.
func client(tp *sdktrace.TracerProvider, prop propagation.TextMapPropagator) *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))}
}

// get calls url within ctx and fails the test on anything but 200.
func get(t *testing.T, ctx context.Context, c *http.Client, url string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
}

// go2skyService is a service instrumented with go2sky, reporting over gRPC.
func go2skyService(t *testing.T, s *server.Server, name string, opts ...go2sky.TracerOption) *go2sky.Tracer {
	t.Helper()
	return go2skyWithToken(t, s, name, "", opts...)
}

func go2skyWithToken(t *testing.T, s *server.Server, name, token string, opts ...go2sky.TracerOption) *go2sky.Tracer {
	t.Helper()
	ropts := []reporter.GRPCReporterOption{reporter.WithCheckInterval(200 * time.Millisecond)}
	if token != "" {
		ropts = append(ropts, reporter.WithAuthentication(token))
	}
	r, err := reporter.NewGRPCReporter(s.Addrs["SkyWalking gRPC"], ropts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	tracer, err := go2sky.NewTracer(name, append([]go2sky.TracerOption{go2sky.WithReporter(r), go2sky.WithInstance(name + "-1")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return tracer
}

// diagnostics reads /api/v1/diagnostics.
func diagnostics(t *testing.T, s *server.Server, service string) integrity.Report {
	t.Helper()
	resp, err := http.Get("http://" + s.Addrs["query API"] + "/api/v1/diagnostics?service=" + service)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("diagnostics: %s", resp.Status)
	}
	var r integrity.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitFinding waits until a finding of kind about service shows up.
func waitFinding(t *testing.T, s *server.Server, kind, service string) integrity.Finding {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last integrity.Report
	for time.Now().Before(deadline) {
		last = diagnostics(t, s, "")
		for _, f := range last.Findings {
			if f.Kind == kind && f.Service == service {
				return f
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no %s finding for %q within 15s; findings: %s", kind, service, describe(last.Findings))
	return integrity.Finding{}
}

// settle waits until at least n traces were judged and none waits.
func settle(t *testing.T, s *server.Server, n uint64) integrity.Report {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := diagnostics(t, s, "")
		if r.JudgedTraces >= n && r.PendingTraces == 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d traces judged (%d pending) within 15s, want %d", r.JudgedTraces, r.PendingTraces, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(fs []integrity.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %s %s -> %s (%s) x%d: %s", f.Kind, f.Service, f.Peer, f.Instance, f.Count, f.Summary)
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func wantRemedy(t *testing.T, f integrity.Finding, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(f.Remedy+f.Summary, p) {
			t.Errorf("%s finding does not say %q:\nsummary: %s\nremedy: %s", f.Kind, p, f.Summary, f.Remedy)
		}
	}
	perInstance := map[string]bool{integrity.KindSilentInstance: true, integrity.KindStoppedInstance: true, integrity.KindDuplicateInstance: true, integrity.KindRejectedData: true}
	if len(f.Examples) == 0 && !perInstance[f.Kind] {
		t.Errorf("%s finding has no example trace", f.Kind)
	}
}
