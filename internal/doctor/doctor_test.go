package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/doctor"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

func startServer(t *testing.T, token string) *server.Server {
	t.Helper()
	return servertest.Start(t, func(c *server.Config) { c.SWToken, c.SWHTTPAddr = token, "" })
}

// configFor is the configuration of a service set up right for s.
func configFor(s *server.Server, token string) doctor.Config {
	return doctor.Config{
		OTLPEndpoint: "http://" + s.Addrs["OTLP gRPC"],
		OTLPProtocol: doctor.ProtocolGRPC,
		ServiceName:  "checkout",
		SWBackend:    s.Addrs["SkyWalking gRPC"],
		SWToken:      token,
		Server:       "http://" + s.Addrs["query API"],
		Wait:         10 * time.Second,
		DialTimeout:  2 * time.Second,
	}
}

func run(t *testing.T, cfg doctor.Config) *doctor.Report {
	t.Helper()
	r, err := doctor.Run(context.Background(), cfg, doctor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + text.String())
	return r
}

// pathWorks tells a report whose checks of the path all passed, whatever
// the findings about the service.
func pathWorks(r *doctor.Report) bool {
	for _, c := range r.Checks {
		if c.Status == doctor.StatusFail && c.Step != "findings" {
			return false
		}
	}
	return true
}

// check finds the check named name in step, failing the test without it.
func check(t *testing.T, r *doctor.Report, step, name string) doctor.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Step == step && c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check %q", step, name)
	return doctor.Check{}
}

// TestWorkingPath: with the right endpoints and token, both probes reach
// the server and are found through the query API, with timings.
func TestWorkingPath(t *testing.T) {
	t.Parallel()
	s := startServer(t, "s3cret")
	sendSpan(t, s, "checkout") // the service itself sends spans
	for _, proto := range []string{doctor.ProtocolGRPC, doctor.ProtocolHTTP} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			cfg := configFor(s, "s3cret")
			if proto == doctor.ProtocolHTTP {
				cfg.OTLPProtocol, cfg.OTLPEndpoint = proto, "http://"+s.Addrs["OTLP HTTP"]
			}
			r := run(t, cfg)
			if !r.OK {
				t.Fatalf("path reported broken: %+v", r.Checks)
			}
			for _, step := range []string{"OTLP", "SkyWalking"} {
				c := check(t, r, step, "probe searchable")
				if c.Status != doctor.StatusOK || c.TraceID == "" || c.Millis <= 0 {
					t.Errorf("%s probe: %+v", step, c)
				}
			}
			if c := check(t, r, "SkyWalking", "gRPC health"); c.Detail != "SERVING" {
				t.Errorf("SkyWalking health: %+v", c)
			}
		})
	}
}

// sendSpan sends one server span of service with the OpenTelemetry SDK and
// waits until the server lists the service.
func sendSpan(t *testing.T, s *server.Server, service string) {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	defer tp.Shutdown(context.Background())
	_, sp := tp.Tracer("shop").Start(context.Background(), "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
	sp.End()
	poll.Until(t, 30*time.Second, service+" among the services", func() bool { return slices.Contains(services(t, s), service) })
}

// services lists the server's services as /api/v1/services does.
func services(t *testing.T, s *server.Server) []string {
	var body struct{ Services []struct{ Name string } }
	servertest.GetJSON(t, "http://"+s.Addrs["query API"]+"/api/v1/services", &body)
	var out []string
	for _, x := range body.Services {
		out = append(out, x.Name)
	}
	return out
}

// TestSilenceIsAFinding: a service name that never sent a span (a typo of
// one that did) fails in doctor with the nearest name, though the probes
// arrive; a server that never received a span says so; doctor's probe is
// no service.
func TestSilenceIsAFinding(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	empty := startServer(t, "")

	cfg := configFor(empty, "")
	cfg.SWBackend, cfg.ServiceName = "", ""
	r := run(t, cfg)
	if c := check(t, r, "findings", integrity.KindNoSpans); c.Status != doctor.StatusFail || c.Detail != "SkyTrail has never received a span" || !strings.Contains(c.Remedy, "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Errorf("a server without spans: %+v", c)
	}
	if r.OK {
		t.Error("a server that never received a span reported OK")
	}

	sendSpan(t, s, "order")
	cfg = configFor(s, "")
	cfg.ServiceName = "ordr"
	r = run(t, cfg)
	if c := check(t, r, "OTLP", "probe searchable"); c.Status != doctor.StatusOK {
		t.Fatalf("the probe did not arrive: %+v", c)
	}
	c := check(t, r, "findings", integrity.KindUnknownService)
	if c.Status != doctor.StatusFail || c.Detail != "SkyTrail has never received a span from ordr; did you mean order?" || !strings.Contains(c.Remedy, "OTEL_SERVICE_NAME") {
		t.Errorf("the typo'd service: %+v", c)
	}
	if r.OK {
		t.Error("a service that never sent a span reported OK")
	}
	var text bytes.Buffer
	_ = r.WriteText(&text, false)
	if !strings.Contains(text.String(), "The path to SkyTrail works, but SkyTrail has never received a span from ordr; did you mean order?") {
		t.Errorf("the report's last line does not say it:\n%s", text.String())
	}
	for _, name := range services(t, s) {
		if name == doctor.ProbeService {
			t.Errorf("doctor's probe is listed as a service: %v", services(t, s))
		}
	}
	var topo struct{ Nodes []struct{ Name string } }
	servertest.GetJSON(t, "http://"+s.Addrs["query API"]+"/api/v1/topology", &topo)
	for _, n := range topo.Nodes {
		if n.Name == doctor.ProbeService {
			t.Errorf("doctor's probe is on the service map: %+v", topo)
		}
	}
	// The service itself passes.
	cfg.ServiceName = "order"
	if r := run(t, cfg); !r.OK {
		t.Errorf("order sends spans, yet: %+v", r.Checks)
	}
}

// TestWrongPort: nothing listens where the exporter points; doctor says
// "connection refused" and fails. Not parallel: the port it closes must
// stay free while it runs, and the package's parallel tests bind ports.
func TestWrongPort(t *testing.T) {
	s := startServer(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	cfg := configFor(s, "")
	cfg.OTLPEndpoint, cfg.SWBackend = "http://"+closed, ""
	r := run(t, cfg)
	if r.OK {
		t.Fatal("path with a closed port reported working")
	}
	c := check(t, r, "OTLP", "TCP")
	if c.Status != doctor.StatusFail || c.Detail != "connection refused" || !strings.Contains(c.Remedy, "4317") {
		t.Errorf("TCP check: %+v", c)
	}
}

// TestTLSToPlaintext: an https endpoint (or one without scheme, and
// without OTEL_EXPORTER_OTLP_INSECURE) on a plain SkyTrail.
func TestTLSToPlaintext(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	cfg := configFor(s, "")
	cfg.OTLPEndpoint, cfg.SWBackend = s.Addrs["OTLP gRPC"], ""
	r := run(t, cfg)
	if r.OK {
		t.Fatal("TLS to a plaintext port reported working")
	}
	c := check(t, r, "OTLP", "TLS")
	if c.Status != doctor.StatusFail || !strings.Contains(c.Detail, "plain text") || !strings.Contains(c.Remedy, "OTEL_EXPORTER_OTLP_INSECURE=true") {
		t.Errorf("TLS check: %+v", c)
	}
}

// TestProtocolMismatch: the gRPC exporter pointed at the OTLP HTTP port.
func TestProtocolMismatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	cfg := configFor(s, "")
	cfg.OTLPEndpoint, cfg.SWBackend = "http://"+s.Addrs["OTLP HTTP"], ""
	r := run(t, cfg)
	c := check(t, r, "OTLP", "gRPC health")
	if r.OK || c.Status != doctor.StatusFail || !strings.Contains(c.Remedy, "HTTP/1, not gRPC") {
		t.Errorf("gRPC health on the HTTP port: %+v", c)
	}
}

// TestWrongToken: the SkyWalking agent's token is not the server's.
func TestWrongToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, "right")
	cfg := configFor(s, "wrong")
	cfg.SkipOTLP = true
	r := run(t, cfg)
	if r.OK {
		t.Fatal("wrong token reported working")
	}
	c := check(t, r, "SkyWalking", "authentication")
	if c.Status != doctor.StatusFail || !strings.Contains(c.Detail, "token") || !strings.Contains(c.Remedy, "SW_AGENT_AUTHENTICATION") {
		t.Errorf("authentication check: %+v", c)
	}
}

// TestSamplerAtZero: a sampler that keeps nothing fails before any network.
func TestSamplerAtZero(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	for _, env := range []map[string]string{
		{"OTEL_TRACES_SAMPLER": "always_off"},
		{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
	} {
		cfg := doctor.FromEnv(func(k string) string { return env[k] })
		cfg.OTLPEndpoint, cfg.Server = "http://"+s.Addrs["OTLP gRPC"], "http://"+s.Addrs["query API"]
		cfg.Wait = 10 * time.Second
		r := run(t, cfg)
		if r.OK {
			t.Errorf("%v reported working", env)
		}
		if c := check(t, r, "configuration", "sampler"); c.Status != doctor.StatusFail || !strings.Contains(c.Remedy, "OTEL_TRACES_SAMPLER") {
			t.Errorf("%v: sampler check %+v", env, c)
		}
	}
}

// TestEnvironment: the variables SDKs read become the configuration.
func TestEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":            "http://collector:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL":            "http/protobuf",
		"OTEL_EXPORTER_OTLP_HEADERS":             "x-team=payments,authorization=Bearer%20abc",
		"OTEL_SERVICE_NAME":                      "payments",
		"SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE": "oap:11800",
		"SW_AGENT_AUTHENTICATION":                "tok",
	}
	cfg := doctor.FromEnv(func(k string) string { return env[k] })
	if cfg.OTLPEndpoint != "http://collector:4318" || cfg.TracesEndpoint || cfg.OTLPProtocol != doctor.ProtocolHTTP ||
		cfg.ServiceName != "payments" || cfg.SWBackend != "oap:11800" || cfg.SWToken != "tok" ||
		cfg.OTLPHeaders["authorization"] != "Bearer abc" || cfg.OTLPHeaders["x-team"] != "payments" {
		t.Errorf("config from environment: %+v", cfg)
	}
}

// TestFindingsAndJSON: doctor --service prints the server's findings with
// their remedies, and the JSON report parses.
func TestFindingsAndJSON(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("frontend"))))
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("shop")
	_, req := tracer.Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
	req.End()
	_, lost := tracer.Start(context.Background(), "send receipt") // context dropped
	lost.End()

	base := "http://" + s.Addrs["query API"]
	poll.Until(t, 30*time.Second, "a finding about frontend", func() bool {
		var rep integrity.Report
		servertest.GetJSON(t, base+"/api/v1/diagnostics?service=frontend", &rep)
		return len(rep.Findings) > 0
	})

	cfg := configFor(s, "")
	cfg.SWBackend, cfg.Service = "", "frontend"
	r := run(t, cfg)
	c := check(t, r, "findings", integrity.KindDetachedRoot)
	if c.Target != "frontend" || !strings.Contains(c.Remedy, "context.Background()") || c.TraceID == "" {
		t.Errorf("finding: %+v", c)
	}
	if !r.OK {
		t.Error("a finding about the service made the path count as broken")
	}
	var out bytes.Buffer
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Step, Name, Status string
		} `json:"checks"`
		Findings []integrity.Finding `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &parsed); err != nil {
		t.Fatalf("JSON report does not parse: %v\n%s", err, out.String())
	}
	if !parsed.OK || len(parsed.Checks) != len(r.Checks) || len(parsed.Findings) == 0 || parsed.Findings[0].Remedy == "" {
		t.Errorf("JSON report: %+v", parsed)
	}
}
