package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky/reporter"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/testcerts"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

const (
	ingestToken = "ingest-0123456789abcdef"
	apiToken    = "grafana-0123456789abcdef"
)

// counter reads one of the server's own metrics: name with the given
// label values.
func counter(t *testing.T, s *server.Server, name string, labels ...string) float64 {
	t.Helper()
	families, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// spanCount is how many spans the query API (reached with client) has
// for the trace, 0 when it has none or answers otherwise.
func spanCount(client *http.Client, base, traceID string, header ...string) int {
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/traces/"+traceID, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0
	}
	var tr nativeTrace
	if err := jsonDecode(resp.Body, &tr); err != nil {
		return 0
	}
	return len(tr.Spans)
}

func TestTLSOnEveryListener(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "skytrail")
	cert := ca.Server(t, "server", "skytrail")
	s := servertest.Start(t, func(c *server.Config) {
		c.Security.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile}
		c.Security.PprofAddr = "127.0.0.1:0"
	})
	clientTLS, err := tlsconfig.ClientConfig(ca.File, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	base := "https://" + s.Addrs["query API"]

	// OTLP over gRPC and HTTP, with the real SDK's TLS options.
	ctx := context.Background()
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithTLSCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addrs["OTLP HTTP"]), otlptracehttp.WithTLSClientConfig(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	viaGRPC := checkoutTrace(t, provider(t, grpcExp, "frontend"), provider(t, grpcExp, "payment"), 1).String()
	viaHTTP := checkoutTrace(t, provider(t, httpExp, "frontend"), provider(t, httpExp, "payment"), 2).String()

	// SkyWalking over gRPC (go2sky with TLS credentials) and HTTP.
	tracer := servertest.Go2sky(t, s, "gateway", reporter.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	span, _, err := tracer.CreateLocalSpan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	span.SetOperationName("tls job")
	span.End()
	segment := `{"traceId":"tls.http.1","traceSegmentId":"tls.http.1.seg","service":"stock","serviceInstance":"stock-1",
		"spans":[{"spanId":0,"parentSpanId":-1,"startTime":` + msNow() + `,"endTime":` + msNow() + `,"operationName":"GET /tls","spanType":"Entry","spanLayer":"Http"}]}`
	resp, err := client.Post("https://"+s.Addrs["SkyWalking HTTP"]+"/v3/segment", "application/json", strings.NewReader(segment))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SkyWalking HTTP over TLS: %s", resp.Status)
	}

	for _, id := range []string{viaGRPC, viaHTTP} {
		poll.Until(t, waitTimeout, "the trace sent over TLS", func() bool { return spanCount(client, base, id) == 3 })
	}
	poll.Until(t, waitTimeout, "the SkyWalking HTTP segment", func() bool { return spanCount(client, base, "tls.http.1") == 1 })
	poll.Until(t, waitTimeout, "go2sky's span over TLS", func() bool {
		var out struct{ Traces []any }
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/traces?service=gateway&lookback=1h", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return jsonDecode(resp.Body, &out) == nil && len(out.Traces) == 1
	})

	// The query API speaks HTTP/2 over TLS, and so does pprof's listener.
	for _, u := range []string{base + "/healthz", "https://" + s.Addrs["pprof"] + "/debug/pprof/"} {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Errorf("GET %s: %s over %s, want 200 over HTTP/2", u, resp.Status, resp.Proto)
		}
	}

	// Plain text is refused on every port.
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, name := range []string{"query API", "OTLP HTTP", "SkyWalking HTTP"} {
		resp, err := plain.Get("http://" + s.Addrs[name] + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest { // Go's "client sent an HTTP request to an HTTPS server"
				t.Errorf("%s answered plain HTTP with %s", name, resp.Status)
			}
		}
	}
	for _, name := range []string{"OTLP gRPC", "SkyWalking gRPC"} {
		if err := healthCheck(s.Addrs[name], insecure.NewCredentials()); err == nil {
			t.Errorf("%s answered a plaintext gRPC health check", name)
		}
		if err := healthCheck(s.Addrs[name], credentials.NewTLS(clientTLS)); err != nil {
			t.Errorf("%s health over TLS: %v", name, err)
		}
	}
}

func msNow() string { return fmtInt(time.Now().UnixMilli()) }

func healthCheck(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLSRefusesClientsWithoutACertificate(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "skytrail")
	clients := testcerts.NewCA(t, "clients")
	cert := ca.Server(t, "server", "skytrail")
	s := servertest.Start(t, func(c *server.Config) {
		c.Security.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile, ClientCA: clients.File}
	})
	anonymous, err := tlsconfig.ClientConfig(ca.File, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	agent := clients.Client(t, "agent", "order-service")
	withCert, err := tlsconfig.ClientConfig(ca.File, agent.CertFile, agent.KeyFile, false)
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"query API", "OTLP HTTP", "SkyWalking HTTP"} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: anonymous}, Timeout: 5 * time.Second}
		if resp, err := c.Get("https://" + s.Addrs[name] + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s answered a client without a certificate: %s", name, resp.Status)
		}
	}
	for _, name := range []string{"OTLP gRPC", "SkyWalking gRPC"} {
		if err := healthCheck(s.Addrs[name], credentials.NewTLS(anonymous)); err == nil {
			t.Errorf("%s answered a client without a certificate", name)
		}
		if err := healthCheck(s.Addrs[name], credentials.NewTLS(withCert)); err != nil {
			t.Errorf("%s with a client certificate: %v", name, err)
		}
	}

	// The SDK with a client certificate gets its spans in; without, not.
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithTLSCredentials(credentials.NewTLS(withCert)))
	if err != nil {
		t.Fatal(err)
	}
	id := checkoutTrace(t, provider(t, exp, "frontend"), provider(t, exp, "payment"), 1).String()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: withCert}, Timeout: 5 * time.Second}
	poll.Until(t, waitTimeout, "the trace sent with a client certificate", func() bool {
		return spanCount(client, "https://"+s.Addrs["query API"], id) == 3
	})
	noCert, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addrs["OTLP HTTP"]), otlptracehttp.WithTLSClientConfig(anonymous),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	if err := exportOne(noCert); err == nil {
		t.Fatal("the SDK without a client certificate exported")
	}
}

// exportOne exports one span with exp, returning the exporter's error
// (a tracer provider would hand it to the global error handler instead).
func exportOne(exp *otlptrace.Exporter) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer exp.Shutdown(ctx)
	now := time.Now()
	stub := tracetest.SpanStub{
		Name: "one", StartTime: now, EndTime: now.Add(time.Millisecond),
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled}),
	}
	return exp.ExportSpans(ctx, []sdktrace.ReadOnlySpan{stub.Snapshot()})
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func fmtInt(n int64) string { return strconv.FormatInt(n, 10) }

func TestOTLPIngestTokensThroughTheSDK(t *testing.T) {
	t.Parallel()
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(ingestToken+" name=shop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := servertest.Start(t, func(c *server.Config) { c.Security.IngestTokensFile = tokens })
	api := "http://" + s.Addrs["query API"]
	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + ingestToken}

	for _, tc := range []struct {
		name     string
		receiver string
		exporter func(h map[string]string) (*otlptrace.Exporter, error)
	}{
		{"grpc", "otlp-grpc", func(h map[string]string) (*otlptrace.Exporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(h),
				otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
		}},
		{"http", "otlp-http", func(h map[string]string) (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addrs["OTLP HTTP"]), otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(h),
				otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
		}},
	} {
		for _, bad := range []map[string]string{nil, {"Authorization": "Bearer wrong-0123456789abcdef"}, {"Authorization": ingestToken}} {
			before := counter(t, s, "skytrail_receiver_spans_rejected_total", "receiver", tc.receiver, "reason", "unauthenticated")
			exp, err := tc.exporter(bad)
			if err != nil {
				t.Fatal(err)
			}
			err = exportOne(exp)
			if err == nil {
				t.Fatalf("%s: export with headers %v succeeded", tc.name, bad)
			}
			if tc.name == "grpc" && status.Code(errors.Unwrap(err)) != codes.Unauthenticated && !strings.Contains(err.Error(), "Unauthenticated") {
				t.Errorf("%s: %v, want Unauthenticated", tc.name, err)
			}
			if tc.name == "http" && !strings.Contains(err.Error(), "401") {
				t.Errorf("%s: %v, want 401", tc.name, err)
			}
			if !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") {
				t.Errorf("%s: %v does not say how to send the token", tc.name, err)
			}
			if after := counter(t, s, "skytrail_receiver_spans_rejected_total", "receiver", tc.receiver, "reason", "unauthenticated"); after <= before {
				t.Errorf("%s: the refusal was not counted (%v -> %v)", tc.name, before, after)
			}
		}
		exp, err := tc.exporter(headers)
		if err != nil {
			t.Fatal(err)
		}
		id := checkoutTrace(t, provider(t, exp, "frontend"), provider(t, exp, "payment"), 1).String()
		poll.Until(t, waitTimeout, tc.name+" spans sent with the token", func() bool { return spanCount(http.DefaultClient, api, id) == 3 })
	}
	// Metrics and logs need the token too, counted in their own units.
	for _, sig := range []struct{ path, counter string }{
		{"/v1/metrics", "skytrail_receiver_metric_points_rejected_total"},
		{"/v1/logs", "skytrail_receiver_log_records_rejected_total"},
	} {
		u := "http://" + s.Addrs["OTLP HTTP"] + sig.path
		if code, body := do(t, "POST", u, "{}", "Content-Type", "application/json"); code != http.StatusUnauthorized {
			t.Errorf("POST %s without a token: %d %s, want 401", sig.path, code, body)
		}
		if n := counter(t, s, sig.counter, "receiver", "otlp-http", "reason", "unauthenticated"); n < 1 {
			t.Errorf("POST %s without a token was not counted in %s", sig.path, sig.counter)
		}
		if code, body := do(t, "POST", u, "{}", "Content-Type", "application/json", "Authorization", "Bearer "+ingestToken); code != http.StatusOK {
			t.Errorf("POST %s with the token: %d %s", sig.path, code, body)
		}
	}
	// Probes need no token.
	if err := healthCheck(s.Addrs["OTLP gRPC"], insecure.NewCredentials()); err != nil {
		t.Errorf("gRPC health without a token: %v", err)
	}
}

// TestOTLPIngestTokenFromTheEnvironment sends the token the way most
// deployments do: OTEL_EXPORTER_OTLP_HEADERS, read by the SDK itself. It
// sets the process' environment, so it does not run in parallel.
func TestOTLPIngestTokenFromTheEnvironment(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.Security.IngestTokens = []string{ingestToken} })
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20"+ingestToken)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	id := checkoutTrace(t, provider(t, exp, "frontend"), provider(t, exp, "payment"), 1).String()
	poll.Until(t, waitTimeout, "spans sent with the token from the environment", func() bool {
		return spanCount(http.DefaultClient, "http://"+s.Addrs["query API"], id) == 3
	})
}

func writeUsers(t *testing.T) string {
	t.Helper()
	line, err := auth.HashPassword("alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// do sends a request to the server and returns its status and body.
func do(t *testing.T, method, u string, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestQueryAPIBehindBasicAuthAndReadOnlyTokens(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) {
		c.Security.Auth.UsersFile = writeUsers(t)
		c.Security.Auth.APITokens = []string{apiToken}
	})
	base := "http://" + s.Addrs["query API"]
	alice := []string{"Authorization", "Basic " + basic("alice", "correct horse")}
	grafana := []string{"Authorization", "Bearer " + apiToken}

	for _, path := range []string{"/", "/services", "/api/v1/services", "/jaeger/api/services", "/prometheus/api/v1/query?query=1", "/metrics"} {
		code, body := do(t, "GET", base+path, "")
		if code != http.StatusUnauthorized || !strings.Contains(body, "authentication required") {
			t.Errorf("GET %s without credentials: %d %s, want 401", path, code, body)
		}
		if code, _ := do(t, "GET", base+path, "", "Authorization", "Basic "+basic("alice", "wrong")); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401", path, code)
		}
		if code, _ := do(t, "GET", base+path, "", alice...); code != http.StatusOK {
			t.Errorf("GET %s as alice: %d, want 200", path, code)
		}
		if code, _ := do(t, "GET", base+path, "", grafana...); code != http.StatusOK {
			t.Errorf("GET %s with the read-only token: %d, want 200", path, code)
		}
	}
	if code, _ := do(t, "GET", base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("GET /healthz without credentials: %d, want 200 (probes)", code)
	}
	// Grafana's Prometheus data source queries by POST: a read.
	if code, body := do(t, "POST", base+"/prometheus/api/v1/query", "query=1", grafana...); code != http.StatusOK {
		t.Errorf("POST /prometheus/api/v1/query with the read-only token: %d %s", code, body)
	}
	// So does its VictoriaLogs data source, for LogsQL.
	if code, body := do(t, "POST", base+"/select/logsql/query", "query=*", grafana...); code != http.StatusOK {
		t.Errorf("POST /select/logsql/query with the read-only token: %d %s", code, body)
	}
	// Changes (a silence, expiring one, reloading the rules) are refused to
	// the token before any handler sees them; a user reaches the handlers.
	silence := `{"matchers":[{"name":"service","value":"checkout"}],"endsAt":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","comment":"deploy","createdBy":"alice"}`
	changes := []struct{ method, path, body string }{
		{"POST", "/api/v1/silences", silence},
		{"DELETE", "/api/v1/silences/00000000-0000-0000-0000-000000000000", ""},
		{"POST", "/-/reload", ""},
	}
	for _, c := range changes {
		code, body := do(t, c.method, base+c.path, c.body, append([]string{"Content-Type", "application/json"}, grafana...)...)
		if code != http.StatusForbidden || !strings.Contains(body, "read-only") {
			t.Errorf("%s %s with the read-only token: %d %s, want 403", c.method, c.path, code, body)
		}
		code, body = do(t, c.method, base+c.path, c.body, append([]string{"Content-Type", "application/json"}, alice...)...)
		t.Logf("%s %s as alice: %d %.80s", c.method, c.path, code, body)
		if code == http.StatusForbidden || code == http.StatusUnauthorized {
			t.Errorf("%s %s as alice: %d %s, want the API's own answer", c.method, c.path, code, body)
		}
		if code, _ := do(t, c.method, base+c.path, c.body, "Content-Type", "application/json"); code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d, want 401", c.method, c.path, code)
		}
	}
	if code, _ := do(t, "GET", base+"/api/v1/silences", "", grafana...); code != http.StatusOK {
		t.Errorf("GET /api/v1/silences with the read-only token: %d, want 200", code)
	}
	if n := counter(t, s, "skytrail_http_auth_refused_total", "reason", "forbidden"); n != float64(len(changes)) {
		t.Errorf("forbidden counted %v times, want %d", n, len(changes))
	}
	if n := counter(t, s, "skytrail_http_auth_refused_total", "reason", "unauthenticated"); n < 12 {
		t.Errorf("unauthenticated counted %v times, want at least 12", n)
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestProxyHeaderTrustedOnlyFromTheProxy(t *testing.T) {
	t.Parallel()
	// The test's own connections come from 127.0.0.1: one server trusts
	// that address as its proxy, the other trusts only a network the test
	// is not in.
	trusting := servertest.Start(t, func(c *server.Config) {
		c.Security.Auth.ProxyHeader = "X-Forwarded-User"
		c.Security.Auth.ProxyCIDRs = []string{"127.0.0.1/32"}
	})
	distrusting := servertest.Start(t, func(c *server.Config) {
		c.Security.Auth.ProxyHeader = "X-Forwarded-User"
		c.Security.Auth.ProxyCIDRs = []string{"10.0.0.0/8"}
	})
	for _, tc := range []struct {
		s      *server.Server
		header []string
		want   int
	}{
		{trusting, []string{"X-Forwarded-User", "carol"}, http.StatusOK},
		{trusting, nil, http.StatusUnauthorized},
		{trusting, []string{"X-Forwarded-User", ""}, http.StatusUnauthorized},
		{distrusting, []string{"X-Forwarded-User", "carol"}, http.StatusUnauthorized},
		{distrusting, []string{"X-Forwarded-User", "carol", "X-Forwarded-For", "10.0.0.1", "X-Real-IP", "10.0.0.1"}, http.StatusUnauthorized},
	} {
		if code, _ := do(t, "GET", "http://"+tc.s.Addrs["query API"]+"/api/v1/services", "", tc.header...); code != tc.want {
			t.Errorf("proxies %v, headers %v: %d, want %d", tc.s == trusting, tc.header, code, tc.want)
		}
	}
}

func TestPprofOnlyOnItsOwnListener(t *testing.T) {
	t.Parallel()
	open := servertest.Start(t)
	asked := servertest.Start(t, func(c *server.Config) {
		c.Security.PprofAddr = "127.0.0.1:0"
		c.Security.Auth.UsersFile = writeUsers(t)
		c.Security.Auth.APITokens = []string{apiToken}
	})
	if _, ok := open.Addrs["pprof"]; ok {
		t.Fatal("a pprof listener without --pprof")
	}
	for _, s := range []*server.Server{open, asked} {
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/debug/pprof/cmdline"} {
			_, body := do(t, "GET", "http://"+s.Addrs["query API"]+path, "", "Authorization", "Basic "+basic("alice", "correct horse"))
			if strings.Contains(body, "goroutine") || strings.Contains(body, "skytrail") && !strings.Contains(body, "<!doctype html>") {
				t.Errorf("GET %s on the query listener serves profiles: %.200s", path, body)
			}
		}
	}
	pp := "http://" + asked.Addrs["pprof"]
	if code, _ := do(t, "GET", pp+"/debug/pprof/", ""); code != http.StatusUnauthorized {
		t.Errorf("pprof without credentials: %d, want 401", code)
	}
	if code, _ := do(t, "GET", pp+"/debug/pprof/", "", "Authorization", "Bearer "+apiToken); code != http.StatusForbidden {
		t.Errorf("pprof with a read-only token: %d, want 403", code)
	}
	code, body := do(t, "GET", pp+"/debug/pprof/goroutine?debug=1", "", "Authorization", "Basic "+basic("alice", "correct horse"))
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("pprof as alice: %d %.100s", code, body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	base := "http://" + s.Addrs["query API"]
	for _, path := range []string{"/", "/traces/abc", "/js/app.js", "/api/v1/services", "/jaeger/api/services", "/api/v1/nope"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: X-Frame-Options %q, CSP %q, X-Content-Type-Options %q", path, h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"), h.Get("X-Content-Type-Options"))
		}
		if strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("GET %s: the CSP allows inline code: %s", path, h.Get("Content-Security-Policy"))
		}
	}
}

func TestServerRefusesBadSecuritySettings(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "x")
	cert := ca.Server(t, "server", "x")
	for _, tc := range []struct {
		name string
		set  func(*server.Security)
		want string
	}{
		{"key without cert", func(s *server.Security) { s.TLS.Key = cert.KeyFile }, "--tls-cert"},
		{"client CA without TLS", func(s *server.Security) { s.TLS.ClientCA = ca.File }, "--tls-client-ca needs"},
		{"short ingest token", func(s *server.Security) { s.IngestTokens = []string{"secret"} }, "at least 16"},
		{"proxy without proxies", func(s *server.Security) { s.Auth.ProxyHeader = "X-User" }, "--auth-proxy-cidrs"},
		{"missing users file", func(s *server.Security) { s.Auth.UsersFile = "/nonexistent/users" }, "/nonexistent/users"},
	} {
		cfg := servertest.Config(t.TempDir())
		tc.set(&cfg.Security)
		s, err := server.Start(cfg)
		if err == nil {
			_ = s.Shutdown(context.Background())
			t.Errorf("%s: the server started", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}
