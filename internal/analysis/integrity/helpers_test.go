package integrity_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// grace is the judging delay the tests run with, instead of 30 s.
const grace = time.Second

// waitTimeout bounds every wait for a finding or a judging pass: generous,
// for a busy CI machine running tests in parallel.
const waitTimeout = 30 * time.Second

// startServer runs a SkyTrail on loopback ports with a short grace period.
func startServer(t *testing.T, token string) *server.Server {
	t.Helper()
	return startServerWith(t, token, func(*server.Config) {})
}

// startServerWith is startServer, then configure changes the configuration
// (Integrity.Now to a testclock's Now, say).
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

// diagnostics reads /api/v1/diagnostics.
func diagnostics(t *testing.T, s *server.Server, service string) integrity.Report {
	t.Helper()
	var r integrity.Report
	if code := servertest.GetJSON(t, "http://"+s.Addrs["query API"]+"/api/v1/diagnostics?service="+service, &r); code != http.StatusOK {
		t.Fatalf("diagnostics: HTTP %d", code)
	}
	return r
}

// waitFinding waits until a finding of kind about service shows up.
func waitFinding(t *testing.T, s *server.Server, kind, service string) integrity.Finding {
	t.Helper()
	return waitFindingThat(t, s, kind, service, "", nil)
}

// waitFindingThat waits until a finding of kind about service shows up
// that ok (described by what) accepts; nil accepts any.
func waitFindingThat(t *testing.T, s *server.Server, kind, service, what string, ok func(integrity.Finding) bool) integrity.Finding {
	t.Helper()
	var found integrity.Finding
	poll.UntilNil(t, waitTimeout, func() error {
		last := diagnostics(t, s, "")
		var other []integrity.Finding
		for _, f := range last.Findings {
			if f.Kind != kind || f.Service != service {
				continue
			}
			if ok == nil || ok(f) {
				found = f
				return nil
			}
			other = append(other, f)
		}
		if len(other) > 0 {
			return fmt.Errorf("no %s finding for %q %s yet: %+v", kind, service, what, other)
		}
		return fmt.Errorf("no %s finding for %q; findings: %s", kind, service, describe(last.Findings))
	})
	return found
}

// settle waits until at least n traces were judged and none waits.
func settle(t *testing.T, s *server.Server, n uint64) integrity.Report {
	t.Helper()
	var r integrity.Report
	poll.UntilNil(t, waitTimeout, func() error {
		r = diagnostics(t, s, "")
		if r.JudgedTraces >= n && r.PendingTraces == 0 {
			return nil
		}
		return fmt.Errorf("%d traces judged (%d pending), want %d", r.JudgedTraces, r.PendingTraces, n)
	})
	return r
}

// instanceKnown waits until the registry knows service's instance: what
// an agent reports in the background has arrived.
func instanceKnown(t *testing.T, s *server.Server, service, instance string) {
	t.Helper()
	poll.Until(t, waitTimeout, "instance "+instance+" of "+service+" in the registry", func() bool {
		for _, inst := range s.Analyser.Registry().List(service, time.Now()) {
			if inst.Name == instance {
				return true
			}
		}
		return false
	})
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
	perInstance := map[string]bool{integrity.KindSilentInstance: true, integrity.KindStoppedInstance: true, integrity.KindDuplicateInstance: true, integrity.KindRejectedData: true, integrity.KindSilentService: true}
	if len(f.Examples) == 0 && !perInstance[f.Kind] {
		t.Errorf("%s finding has no example trace", f.Kind)
	}
}
