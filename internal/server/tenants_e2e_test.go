package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky/reporter"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// Tokens of the tenants test: an ingest token and a read-only API token
// for each of tenants a and b, a gateway ingest token that may name any
// tenant in X-Scope-OrgID, and a read token of the default tenant.
const (
	ingestA   = "ingest-a-0123456789abcdef"
	ingestB   = "ingest-b-0123456789abcdef"
	gateway   = "gateway-0123456789abcdef"
	readA     = "read-a-0123456789abcdef"
	readB     = "read-b-0123456789abcdef"
	readOther = "read-default-0123456789abcdef"
)

// tenantsConfig is a server keeping tenants a and b apart, tokens in files
// in dir, the error-rate rule quick so each tenant's failures fire an alert.
func tenantsConfig(t *testing.T, dir string) func(*server.Config) {
	ingest := filepath.Join(dir, "ingest-tokens")
	api := filepath.Join(dir, "api-tokens")
	write := func(file, text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(ingest, ingestA+" name=team-a tenant=a\n"+ingestB+" name=team-b tenant=b\n"+gateway+" name=gateway tenant=*\n")
	write(api, readA+" name=grafana-a tenant=a\n"+readB+" name=grafana-b tenant=b\n"+readOther+" name=grafana\n")
	return func(c *server.Config) {
		quickErrorRateRule(c)
		c.Tenants = []string{"a", "b"}
		c.Security.IngestTokensFile = ingest
		c.Security.Auth.APITokensFile = api
	}
}

// teamData is what one tenant's services send, and the strings that must
// appear in its own answers and never in another tenant's.
type teamData struct {
	tenant, frontend, payment, logBody, metricService string
	traceID                                           string
	gatewayTraceID                                    string // sent by the gateway token naming the tenant
}

func (d teamData) markers() []string {
	return []string{d.frontend, d.payment, d.logBody, d.metricService, d.traceID, d.gatewayTraceID}
}

// sendTeam sends d's traces (OTLP gRPC for a, OTLP HTTP for b), a log
// record in one of its traces, and a counter, all with token, and one more
// trace through the gateway token naming the tenant.
func sendTeam(t *testing.T, s *server.Server, token string, d *teamData) {
	t.Helper()
	ctx := context.Background()
	headers := map[string]string{"Authorization": "Bearer " + token}
	var exp *otlptrace.Exporter
	var err error
	if d.tenant == "a" {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(headers))
	} else {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addrs["OTLP HTTP"]), otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(headers))
	}
	if err != nil {
		t.Fatal(err)
	}
	front, pay := provider(t, exp, d.frontend), provider(t, exp, d.payment)
	var first trace.TraceID
	for i := range 4 { // failures enough for the error-rate rule
		id := checkoutTrace(t, front, pay, i)
		if i == 0 {
			first = id
		}
	}
	d.traceID = first.String()

	gw, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addrs["OTLP HTTP"]), otlptracehttp.WithInsecure(),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + gateway, "X-Scope-OrgID": d.tenant}))
	if err != nil {
		t.Fatal(err)
	}
	d.gatewayTraceID = checkoutTrace(t, provider(t, gw, d.frontend), provider(t, gw, d.payment), 9).String()

	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(d.frontend), semconv.ServiceInstanceID(d.frontend+"-1"))
	lexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlploggrpc.WithInsecure(), otlploggrpc.WithHeaders(headers))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	defer func() { _ = lp.Shutdown(ctx) }()
	var rec log.Record
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(log.SeverityError)
	rec.SetBody(attribute.StringValue(d.logBody))
	rec.AddAttributes(attribute.String("team", d.tenant))
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: first, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled})
	lp.Logger("shop").Emit(trace.ContextWithSpanContext(ctx, sc), rec)

	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlpmetricgrpc.WithInsecure(), otlpmetricgrpc.WithHeaders(headers))
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(d.metricService))), sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(ctx) }()
	orders, _ := mp.Meter("shop").Int64Counter("orders.placed")
	orders.Add(ctx, 3, metric.WithAttributes(attribute.String("team", d.tenant)))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := mexp.Export(ctx, &rm); err != nil {
		t.Fatalf("tenant %s: exporting metrics: %v", d.tenant, err)
	}
}

// askClient bounds every read: an API that hangs fails the test, naming it.
var askClient = &http.Client{Timeout: 20 * time.Second}

// ask GETs path from the query API with an API token (none: "") and extra
// header pairs, returning the status and body.
func ask(t *testing.T, base, token, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := askClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// everyAPI are the reads a tenant's data shows through, for team d: the
// native API (services, search, trace by ID, logs, a trace's logs, the
// service map, instances, diagnostics, status, alerts), the Jaeger API
// (services, search, trace, dependencies), PromQL (query, series, label
// values), LogsQL and the server's /metrics.
func everyAPI(d teamData) []string {
	q := url.QueryEscape
	return []string{
		"/api/v1/services",
		"/api/v1/traces?lookback=1h&limit=100",
		"/api/v1/traces?service=" + d.frontend + "&lookback=1h",
		"/api/v1/traces/" + d.traceID,
		"/api/v1/logs?lookback=1h",
		"/api/v1/logs?service=" + d.frontend + "&lookback=1h",
		"/api/v1/traces/" + d.traceID + "/logs",
		"/api/v1/topology?lookback=1h",
		"/api/v1/instances",
		"/api/v1/diagnostics",
		"/api/v1/status",
		"/api/v1/alerts",
		"/jaeger/api/services",
		"/jaeger/api/traces?service=" + d.frontend + "&lookback=1h",
		"/jaeger/api/traces/" + d.traceID,
		"/jaeger/api/dependencies?endTs=" + fmt.Sprint(time.Now().Add(time.Minute).UnixMilli()) + "&lookback=3600000",
		"/prometheus/api/v1/query?query=" + q(`{__name__=~".+"}`),
		"/prometheus/api/v1/query?query=" + q(`agent_orders_placed_total`),
		"/prometheus/api/v1/series?match[]=" + q(`{__name__=~"agent_.+|skytrail_.+"}`),
		"/prometheus/api/v1/label/service/values",
		"/prometheus/api/v1/alerts",
		"/select/logsql/query?query=" + q(`*`),
		"/metrics",
	}
}

// Two tenants send traces, logs and a metric with their own tokens (and
// through a gateway token naming the tenant); with one tenant's read token
// every API shows its data and nothing of the other's, a trace ID of the
// other tenant is 404, and the default tenant's reader sees neither. A
// tenant nobody configured is refused on ingest and on query, and no
// request creates one. After a restart each tenant still has its data.
func TestTenantsIsolatedThroughEveryAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	configure := tenantsConfig(t, dir)
	s := servertest.StartIn(t, data, configure)
	base := "http://" + s.Addrs["query API"]

	a := teamData{tenant: "a", frontend: "shop-alpha", payment: "pay-alpha", logBody: "alpha order failed", metricService: "stock-alpha"}
	b := teamData{tenant: "b", frontend: "shop-bravo", payment: "pay-bravo", logBody: "bravo order failed", metricService: "stock-bravo"}
	sendTeam(t, s, ingestA, &a)
	sendTeam(t, s, ingestB, &b)

	teams := []struct {
		d            teamData
		read         string
		other        teamData
		otherReadTok string
	}{{a, readA, b, readB}, {b, readB, a, readA}}

	// Each tenant's data becomes searchable, and its alert fires.
	for _, tm := range teams {
		d := tm.d
		for _, id := range []string{d.traceID, d.gatewayTraceID} {
			var last string
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("last answer for tenant %s's trace %s: %.500s", d.tenant, id, last)
				}
			})
			poll.Until(t, waitTimeout, "tenant "+d.tenant+"'s trace "+id, func() bool {
				code, body := ask(t, base, tm.read, "/api/v1/traces/"+id)
				last = fmt.Sprint(code, " ", body)
				return code == http.StatusOK && spansIn(body) == 3
			})
		}
		poll.Until(t, waitTimeout, "tenant "+d.tenant+"'s log record", func() bool {
			_, body := ask(t, base, tm.read, "/api/v1/traces/"+d.traceID+"/logs")
			return strings.Contains(body, d.logBody)
		})
		poll.Until(t, waitTimeout, "tenant "+d.tenant+"'s error-rate alert", func() bool {
			_, body := ask(t, base, tm.read, "/api/v1/alerts")
			return strings.Contains(body, d.payment)
		})
	}

	// What each tenant's own answers must hold: its services, trace, log,
	// metric and alert, wherever the API shows that kind of data.
	own := map[string]func(d teamData) []string{
		"/api/v1/services":                        func(d teamData) []string { return []string{d.frontend, d.payment} },
		"/api/v1/traces/" + a.traceID:             func(d teamData) []string { return []string{d.frontend} },
		"/api/v1/traces/" + b.traceID:             func(d teamData) []string { return []string{d.frontend} },
		"/api/v1/logs?lookback=1h":                func(d teamData) []string { return []string{d.logBody} },
		"/jaeger/api/services":                    func(d teamData) []string { return []string{d.frontend, d.payment} },
		"/prometheus/api/v1/label/service/values": func(d teamData) []string { return []string{d.frontend, d.metricService} },
		"/api/v1/alerts":                          func(d teamData) []string { return []string{d.payment} },
		"/api/v1/topology?lookback=1h":            func(d teamData) []string { return []string{d.frontend, d.payment} },
	}
	check := func(phase string) {
		for _, tm := range teams {
			d, other := tm.d, tm.other
			for _, path := range everyAPI(d) {
				code, body := ask(t, base, tm.read, path)
				if code != http.StatusOK {
					t.Errorf("%s: tenant %s: GET %s: %d %s", phase, d.tenant, path, code, body)
					continue
				}
				for _, m := range other.markers() {
					if strings.Contains(body, m) {
						t.Errorf("%s: tenant %s sees tenant %s's %q in GET %s", phase, d.tenant, other.tenant, m, path)
					}
				}
				if want, ok := own[path]; ok {
					for _, m := range want(d) {
						if !strings.Contains(body, m) {
							t.Errorf("%s: tenant %s: GET %s lacks its own %q: %.300s", phase, d.tenant, path, m, body)
						}
					}
				}
			}
			// The other tenant's trace, by ID, is not found at all.
			for _, path := range []string{"/api/v1/traces/" + other.traceID, "/jaeger/api/traces/" + other.traceID, "/api/v1/traces/" + other.gatewayTraceID} {
				if code, body := ask(t, base, tm.read, path); code != http.StatusNotFound {
					t.Errorf("%s: tenant %s: GET %s (tenant %s's trace): %d, want 404: %.200s", phase, d.tenant, path, other.tenant, code, body)
				}
			}
			// Its own metric, by PromQL, and the other's not at all.
			_, body := ask(t, base, tm.read, "/prometheus/api/v1/query?query="+url.QueryEscape(`sum by (service) (agent_orders_placed_total)`))
			if !strings.Contains(body, d.metricService) {
				t.Errorf("%s: tenant %s: its counter is missing: %s", phase, d.tenant, body)
			}
			// The token may not read the other tenant by naming it.
			if code, body := ask(t, base, tm.read, "/api/v1/services", "X-Scope-OrgID", other.tenant); code != http.StatusForbidden {
				t.Errorf("%s: tenant %s's token naming tenant %s: %d %s, want 403", phase, d.tenant, other.tenant, code, body)
			}
		}
		// The default tenant's reader sees neither tenant: a trace by ID
		// is 404 (its answer may quote the ID asked for).
		for _, path := range everyAPI(a) {
			code, body := ask(t, base, readOther, path)
			if code != http.StatusOK && code != http.StatusNotFound {
				t.Errorf("%s: default tenant: GET %s: %d %s", phase, path, code, body)
			}
			for _, m := range append(a.markers(), b.markers()...) {
				if strings.Contains(body, m) && !strings.Contains(path, m) {
					t.Errorf("%s: the default tenant sees %q in GET %s", phase, m, path)
				}
			}
		}
	}
	check("running")

	// Refusals: a tenant nobody configured, or one the token may not
	// write to, on both OTLP transports; and on the query API.
	unknown := 0
	for i := range 50 {
		name := fmt.Sprintf("bomb-%d", i)
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+gateway)
		req.Header.Set("X-Scope-OrgID", name)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(msg), "not a tenant this server keeps") {
			t.Fatalf("OTLP HTTP naming tenant %s: %s %s, want 403 saying the tenant is not kept", name, resp.Status, msg)
		}
		unknown++
	}
	ctx := context.Background()
	cross, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithHeaders(map[string]string{"Authorization": "Bearer " + ingestA, "X-Scope-OrgID": "b"}),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	err = cross.ExportSpans(ctx, tracetest.SpanStubs{{Name: "sneak", SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{9}})}}.Snapshots())
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied {
		t.Errorf("tenant a's token naming tenant b over gRPC: %v, want PermissionDenied", err)
	}
	if got := counter(t, s, "skytrail_receiver_spans_rejected_total", "reason", "forbidden", "receiver", "otlp-http"); got != float64(unknown) {
		t.Errorf("refused OTLP HTTP requests counted %v, want %d", got, unknown)
	}
	if got := counter(t, s, "skytrail_receiver_spans_rejected_total", "reason", "forbidden", "receiver", "otlp-grpc"); got != 1 {
		t.Errorf("refused OTLP gRPC requests counted %v, want 1", got)
	}
	if code, body := ask(t, base, readA, "/api/v1/services", "X-Scope-OrgID", "nobody"); code != http.StatusForbidden {
		t.Errorf("query naming an unknown tenant: %d %s, want 403", code, body)
	}
	// Only the configured tenants have directories, whatever was asked.
	entries, err := os.ReadDir(filepath.Join(data, "tenants"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("tenant directories %v, want [a b]", names)
	}
	// The default tenant keeps the data directory's layout of a server
	// without tenants.
	for _, p := range []string{"spans", "metrics", "wal", filepath.Join("tenants", "a", "spans"), filepath.Join("tenants", "b", "metrics")} {
		if _, err := os.Stat(filepath.Join(data, p)); err != nil {
			t.Errorf("data directory: %v", err)
		}
	}

	// A restart on the same directory keeps each tenant's data, apart.
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s = servertest.StartIn(t, data, configure)
	base = "http://" + s.Addrs["query API"]
	for _, tm := range teams {
		poll.Until(t, waitTimeout, "tenant "+tm.d.tenant+"'s trace after the restart", func() bool {
			code, body := ask(t, base, tm.read, "/api/v1/traces/"+tm.d.traceID)
			return code == http.StatusOK && spansIn(body) == 3
		})
		poll.Until(t, waitTimeout, "tenant "+tm.d.tenant+"'s counter after the restart", func() bool {
			_, body := ask(t, base, tm.read, "/prometheus/api/v1/query?query="+url.QueryEscape(`agent_orders_placed_total`))
			return strings.Contains(body, tm.d.metricService)
		})
	}
	delete(own, "/api/v1/alerts") // the restarted rules have not fired again yet
	check("after a restart")

	// A SkyWalking agent authenticating with tenant a's ingest token writes
	// to tenant a: agents cannot send X-Scope-OrgID.
	// (After the restart: the agent's stream stays open until the test
	// ends, and a graceful stop would wait for it.)
	tracer := servertest.Go2sky(t, s, "agent-alpha", reporter.WithAuthentication(ingestA))
	span, _, err := tracer.CreateLocalSpan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	span.SetOperationName("nightly job")
	span.End()
	poll.Until(t, waitTimeout, "the go2sky agent's service in tenant a", func() bool {
		_, body := ask(t, base, readA, "/api/v1/services")
		return strings.Contains(body, "agent-alpha")
	})
	for _, tok := range []string{readB, readOther} {
		if _, body := ask(t, base, tok, "/api/v1/services"); strings.Contains(body, "agent-alpha") {
			t.Errorf("tenant a's SkyWalking agent shows to another tenant: %s", body)
		}
	}

}

// spansIn is how many spans a native trace answer holds.
func spansIn(body string) int {
	var tr nativeTrace
	if json.Unmarshal([]byte(body), &tr) != nil {
		return 0
	}
	return len(tr.Spans)
}

// Tenants and cluster mode do not combine yet: a server asked for both
// refuses to start and says which pair, rather than mixing tenants' data.
func TestTenantsRefusedWithClusterMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*server.Config)
		want string
	}{
		{"remote spans", func(c *server.Config) { c.Spans.URL = "http://127.0.0.1:1" }, "--spans-url"},
		{"remote metrics", func(c *server.Config) {
			c.RemoteMetrics.WriteURL, c.RemoteMetrics.QueryURL = "http://127.0.0.1:1/api/v1/write", "http://127.0.0.1:1"
		}, "--metrics-write-url"},
		{"peers", func(c *server.Config) { c.Cluster.Peers = "127.0.0.1:1,127.0.0.1:2" }, "--peers"},
	} {
		cfg := servertest.Config(t.TempDir())
		cfg.Tenants = []string{"a", "b"}
		tc.set(&cfg)
		s, err := server.Start(cfg)
		if err == nil {
			_ = s.Shutdown(context.Background())
			t.Errorf("%s: the server started with --tenants", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--tenants") {
			t.Errorf("%s: %v, want it to name --tenants and %s", tc.name, err, tc.want)
		}
	}
}
