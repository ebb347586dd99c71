package integrity_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"github.com/SkyAPM/go2sky/reporter"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/receiver/skywalking"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/testclock"
	"github.com/skytrail/skytrail/sdk"
)

// noPropagator is what otel.GetTextMapPropagator returns until a program
// sets one: it neither injects nor extracts.
var noPropagator = propagation.NewCompositeTextMapPropagator()

// TestHealthyWorkload: OpenTelemetry services calling each other over
// HTTP with the context passed everywhere, two go2sky services joined by
// sw8, and a go2sky service calling one that reads sw8 through SkyTrail's
// SDK give no finding at all.
func TestHealthyWorkload(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	s := startServerWith(t, "", func(c *server.Config) { c.Integrity.Now = clock.Now })
	inventory := otelService(t, s, "inventory")
	inv := serve(t, inventory, w3c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, span := inventory.Tracer("db").Start(r.Context(), "load stock")
		span.End()
	}))
	frontend := otelService(t, s, "frontend")
	toInventory := client(frontend, w3c)
	front := serve(t, frontend, w3c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get(t, r.Context(), toInventory, inv.URL+"/stock")
		done := make(chan struct{})
		go func(ctx context.Context) { // background work keeps the request's context
			defer close(done)
			_, span := frontend.Tracer("audit").Start(ctx, "audit order")
			span.End()
		}(r.Context())
		<-done
	}))
	shopper := client(otelService(t, s, "shop-client"), w3c)
	for range 4 {
		get(t, context.Background(), shopper, front.URL+"/checkout")
	}

	billing := servertest.Go2sky(t, s, "billing")
	ledger := servertest.Go2sky(t, s, "ledger")
	ledgerSrv := go2skyServer(t, ledger)
	for range 3 {
		go2skyCall(t, billing, ledgerSrv.URL+"/post")
	}

	// go2sky calling an OpenTelemetry service that reads sw8 too, through
	// SkyTrail SDK's propagator: the remedy for a propagator mismatch.
	stock := otelService(t, s, "stock")
	stockSrv := serve(t, stock, sdk.DefaultPropagator(nil), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	orders := servertest.Go2sky(t, s, "legacy-orders")
	for range 2 {
		go2skyCall(t, orders, stockSrv.URL+"/reserve")
	}

	settle(t, s, 4+3+2)
	// The go2sky instances, once known, must also be old enough to be
	// judged silent: the clock moves past the grace period instead of the
	// test sleeping through it.
	for _, service := range []string{"billing", "ledger", "legacy-orders"} {
		instanceKnown(t, s, service, service+"-1")
	}
	clock.Advance(2 * grace)
	s.Integrity.Judge(clock.Now())
	r := settle(t, s, 4+3+2)
	if len(r.Findings) > 0 {
		t.Fatalf("healthy workload has findings: %s", describe(r.Findings))
	}
}

// TestMissingExtract: inventory runs otelhttp's middleware but never set a
// propagator, so it does not extract the caller's context and each call
// from frontend starts a new trace there.
func TestMissingExtract(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	inventory := otelService(t, s, "inventory")
	inv := serve(t, inventory, noPropagator, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	frontend := otelService(t, s, "frontend")
	toInventory := client(frontend, w3c)
	front := serve(t, frontend, w3c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get(t, r.Context(), toInventory, inv.URL+"/stock")
	}))
	shopper := client(otelService(t, s, "shop-client"), w3c)
	for range 3 {
		get(t, context.Background(), shopper, front.URL+"/checkout")
	}
	f := waitFinding(t, s, integrity.KindLostPropagation, "frontend")
	if f.Peer != "inventory" || f.Severity != integrity.SeverityError {
		t.Errorf("finding names the call frontend -> %q (%s), want inventory, error", f.Peer, f.Severity)
	}
	wantRemedy(t, f, "inventory starts new traces", "otelhttp.NewHandler", "otel.SetTextMapPropagator")
	if f.Count < 1 || f.Share <= 0 {
		t.Errorf("count %d, share %v", f.Count, f.Share)
	}
	// Asked about inventory, the API shows the finding too.
	if r := diagnostics(t, s, "inventory"); len(r.Findings) == 0 {
		t.Error("no finding for ?service=inventory")
	}
	// Alarms see it on /metrics.
	resp, err := http.Get("http://" + s.Addrs["query API"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if want := `skytrail_diagnostics_findings{kind="lost_propagation",service="frontend"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestGoroutineDropsContext: frontend starts a span in a goroutine from
// context.Background(): a root that is not a request.
func TestGoroutineDropsContext(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	frontend := otelService(t, s, "frontend")
	front := serve(t, frontend, w3c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, span := frontend.Tracer("jobs").Start(context.Background(), "recompute totals")
			span.End()
		}()
		<-done
	}))
	shopper := client(otelService(t, s, "shop-client"), w3c)
	for range 3 {
		get(t, context.Background(), shopper, front.URL+"/checkout")
	}
	f := waitFinding(t, s, integrity.KindDetachedRoot, "frontend")
	wantRemedy(t, f, "context.Background()", "goroutine")
}

// TestGo2skyCallsW3COnlyService: a go2sky service calls an OpenTelemetry
// service that reads only W3C traceparent; the sw8 header it sends is
// ignored.
func TestGo2skyCallsW3COnlyService(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	inventory := otelService(t, s, "inventory")
	inv := serve(t, inventory, w3c, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	legacy := servertest.Go2sky(t, s, "legacy-orders")
	for range 3 {
		go2skyCall(t, legacy, inv.URL+"/stock")
	}
	f := waitFinding(t, s, integrity.KindPropagatorMismatch, "legacy-orders")
	if f.Peer != "inventory" {
		t.Errorf("peer %q, want inventory", f.Peer)
	}
	wantRemedy(t, f, "sw8", "W3C traceparent", "sdk")
}

// TestSamplerAtZero: a go2sky agent sampling nothing still sends
// keep-alives; once older than the grace period, the instance is reported
// silent.
func TestSamplerAtZero(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	s := startServerWith(t, "", func(c *server.Config) {
		// A grace period no slow machine gets near, passed by the clock.
		c.Integrity.Grace, c.Integrity.Now = time.Minute, clock.Now
		c.Analysis.Instances.AliveTimeout = 10 * time.Minute
	})
	quiet, err := go2sky.NewTracer("quiet", go2sky.WithReporter(servertest.Go2skyReporter(t, s)),
		go2sky.WithInstance("quiet-1"), go2sky.WithSampler(0))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		span, _, err := quiet.CreateEntrySpan(context.Background(), "/work", func(string) (string, error) { return "", nil })
		if err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	instanceKnown(t, s, "quiet", "quiet-1")
	s.Integrity.Judge(clock.Now())
	// No span arrived at all: that the server says so is its only finding.
	if r := diagnostics(t, s, ""); len(r.Findings) != 1 || r.Findings[0].Kind != integrity.KindNoSpans {
		t.Fatalf("an instance younger than the grace period has findings: %s", describe(r.Findings))
	}
	clock.Advance(2 * time.Minute)
	s.Integrity.Judge(clock.Now())
	f := waitFinding(t, s, integrity.KindSilentInstance, "quiet")
	if f.Instance != "quiet-1" {
		t.Errorf("instance %q, want quiet-1", f.Instance)
	}
	wantRemedy(t, f, "sampler", "keep-alives")
}

// TestWrongToken: the server refuses a go2sky agent with the wrong token,
// and says so.
func TestWrongToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, "right-token")
	agent := servertest.Go2sky(t, s, "locked-out", reporter.WithAuthentication("wrong-token"))
	span, _, err := agent.CreateEntrySpan(context.Background(), "/work", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	span.End()
	// The refused agent is named by its address.
	f := waitFindingThat(t, s, integrity.KindRejectedData, "", "naming its clients", func(f integrity.Finding) bool { return len(f.Clients) > 0 })
	if f.Peer != skywalking.GRPCReceiver {
		t.Errorf("receiver %q, want %s", f.Peer, skywalking.GRPCReceiver)
	}
	wantRemedy(t, f, "unauthenticated", "SW_AGENT_AUTHENTICATION", "--sw-token")
	if len(f.Clients) == 0 || f.Clients[0].Client != "127.0.0.1" || f.Clients[0].Reason != "unauthenticated" || f.Clients[0].Requests < 1 {
		t.Errorf("refused clients: %+v", f.Clients)
	}
}

// TestRejectedOverHTTP: an OTLP/HTTP client posting garbage is named.
func TestRejectedOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	resp, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/x-protobuf", strings.NewReader("not protobuf"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage answered %s", resp.Status)
	}
	// The client is counted once its answer is written: a pass later.
	f := waitFindingThat(t, s, integrity.KindRejectedData, "", "naming its clients", func(f integrity.Finding) bool { return len(f.Clients) > 0 })
	if f.Peer != "otlp-http" || len(f.Clients) != 1 || f.Clients[0].Client != "127.0.0.1" {
		t.Errorf("finding: %+v", f)
	}
	wantRemedy(t, f, "malformed")
}

// TestBrokenSkewedPeerless: a request whose caller never sends its spans,
// a server span that starts seconds before the call that caused it, and a
// client span naming nothing it called.
func TestBrokenSkewedPeerless(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	payment := otelService(t, s, "payment")
	// A caller that propagates W3C context but exports nothing.
	carrier := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	ctx := w3c.Extract(context.Background(), carrier)
	_, span := payment.Tracer("pay").Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindServer))
	span.End()

	checkout, stock := otelService(t, s, "checkout"), otelService(t, s, "stock")
	start := time.Now()
	cctx, call := checkout.Tracer("c").Start(context.Background(), "reserve", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start))
	_, served := stock.Tracer("s").Start(cctx, "reserve", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(-5*time.Second)))
	served.End(trace.WithTimestamp(start.Add(-4 * time.Second)))
	call.End(trace.WithTimestamp(start.Add(10 * time.Millisecond)))

	broken := waitFinding(t, s, integrity.KindBrokenTrace, "payment")
	wantRemedy(t, broken, "never arrived", "parentbased")
	if broken.Examples[0] != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("example %v, want the trace's ID", broken.Examples)
	}
	skew := waitFinding(t, s, integrity.KindClockSkew, "stock")
	if skew.Peer != "checkout" {
		t.Errorf("skew against %q, want checkout", skew.Peer)
	}
	wantRemedy(t, skew, "clocks", "NTP")
	peerless := waitFinding(t, s, integrity.KindExitWithoutPeer, "checkout")
	wantRemedy(t, peerless, "server.address")
}

// go2skyServer is an HTTP server whose handler is a go2sky entry span
// reading sw8.
func go2skyServer(t *testing.T, tracer *go2sky.Tracer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span, _, err := tracer.CreateEntrySpan(r.Context(), r.Method+" "+r.URL.Path, func(k string) (string, error) { return r.Header.Get(k), nil })
		if err != nil {
			t.Error(err)
			return
		}
		span.SetSpanLayer(agentv3.SpanLayer_Http)
		span.End()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// go2skyCall is a go2sky service handling a request by calling target
// over HTTP, sw8 in the request's headers.
func go2skyCall(t *testing.T, tracer *go2sky.Tracer, target string) {
	t.Helper()
	entry, ctx, err := tracer.CreateEntrySpan(context.Background(), "/order", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(target)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	exit, err := tracer.CreateExitSpan(ctx, "GET "+u.Path, u.Host, func(k, v string) error { req.Header.Set(k, v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	exit.SetSpanLayer(agentv3.SpanLayer_Http)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	exit.Tag(go2sky.TagStatusCode, resp.Status)
	exit.End()
	entry.End()
}

// TestNoServerMiddleware: inventory has no tracing at all; frontend's
// calls to it are reported as going to an uninstrumented address.
func TestNoServerMiddleware(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	inv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(inv.Close)
	frontend := otelService(t, s, "frontend")
	toInventory := client(frontend, w3c)
	front := serve(t, frontend, w3c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get(t, r.Context(), toInventory, inv.URL+"/stock")
	}))
	shopper := client(otelService(t, s, "shop-client"), w3c)
	get(t, context.Background(), shopper, front.URL+"/checkout")
	f := waitFinding(t, s, integrity.KindUninstrumentedPeer, "frontend")
	if want := inv.Listener.Addr().String(); f.Peer != want {
		t.Errorf("peer %q, want %s", f.Peer, want)
	}
	wantRemedy(t, f, "otelhttp.NewHandler")
}

// TestDuplicateInstances: one process reporting under two instance IDs.
func TestDuplicateInstances(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	for _, id := range []string{"cart-a", "cart-b"} {
		tp := otelServiceWith(t, s, "cart", semconv.ServiceInstanceID(id), semconv.HostName("node-7"), semconv.ProcessPID(4242))
		_, span := tp.Tracer("cart").Start(context.Background(), "GET /cart", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
	}
	f := waitFinding(t, s, integrity.KindDuplicateInstance, "cart")
	if f.Instance != "cart-b" || f.Peer != "cart-a" || !strings.Contains(f.Detail, "pid 4242") {
		t.Errorf("duplicate: %+v", f)
	}
	wantRemedy(t, f, "service.instance.id")
}

// TestStoppedInstance: a go2sky agent that sent spans, then only
// keep-alives for longer than SilentAfter.
func TestStoppedInstance(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	// Longer than any wait of the test: only the clock gets there.
	const silentAfter = time.Minute
	s := startServerWith(t, "", func(c *server.Config) {
		c.Integrity.SilentAfter, c.Integrity.Now = silentAfter, clock.Now
		// Alive still when the clock has passed SilentAfter: its keep-alives
		// come in real time.
		c.Analysis.Instances.AliveTimeout = 10 * time.Minute
	})
	tracer := servertest.Go2sky(t, s, "worker")
	span, _, err := tracer.CreateEntrySpan(context.Background(), "/job", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	span.End()
	settle(t, s, 1)
	s.Integrity.Judge(clock.Now())
	if r := diagnostics(t, s, ""); len(r.Findings) > 0 {
		t.Fatalf("an instance that just sent a span has findings: %s", describe(r.Findings))
	}
	// The clock passes SilentAfter without a span.
	clock.Advance(2 * silentAfter)
	s.Integrity.Judge(clock.Now())
	f := waitFinding(t, s, integrity.KindStoppedInstance, "worker")
	if f.Instance != "worker-1" || !strings.HasPrefix(f.Detail, "last span at") {
		t.Errorf("stopped: %+v", f)
	}
	wantRemedy(t, f, "keep-alives")
}

// TestSilentService: an OpenTelemetry service (no keep-alives, so no
// instance finding) that sent spans and then none for SilentAfter is a
// finding naming when it last sent; it goes once the service sends again.
func TestSilentService(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	const silentAfter = time.Minute
	s := startServerWith(t, "", func(c *server.Config) {
		c.Integrity.SilentAfter, c.Integrity.Now = silentAfter, clock.Now
	})
	tp := otelService(t, s, "order")
	_, sp := tp.Tracer("t").Start(context.Background(), "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
	sp.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	settle(t, s, 1)
	s.Integrity.Judge(clock.Now())
	for _, f := range diagnostics(t, s, "").Findings {
		if f.Kind == integrity.KindSilentService {
			t.Fatalf("a service that just sent a span is silent: %+v", f)
		}
	}
	clock.Advance(2 * silentAfter)
	s.Integrity.Judge(clock.Now())
	f := waitFinding(t, s, integrity.KindSilentService, "order")
	if f.Severity != integrity.SeverityError || !strings.HasPrefix(f.Summary, "order has sent no span since "+f.FirstSeen.Format("2006-01-02 15:04:05")+" UTC") {
		t.Errorf("silent: %+v", f)
	}
	wantRemedy(t, f, "skytrail doctor --service-name order")
	// It sends again: the finding goes.
	_, sp = tp.Tracer("t").Start(context.Background(), "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
	sp.End()
	_ = tp.ForceFlush(context.Background())
	poll.Until(t, 30*time.Second, "the silent_service finding to go", func() bool {
		s.Integrity.Judge(clock.Now())
		for _, f := range diagnostics(t, s, "").Findings {
			if f.Kind == integrity.KindSilentService {
				return false
			}
		}
		return true
	})
}

// TestNearest: a typo finds the service meant; a name far from every
// known one finds none.
func TestNearest(t *testing.T) {
	t.Parallel()
	known := []string{"frontend", "inventory", "order", "payment"}
	for name, want := range map[string]string{"ordr": "order", "Order": "order", "paymnet": "payment", "inventroy": "inventory", "zz": "", "shipping": ""} {
		if got := integrity.Nearest(name, known); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", name, got, want)
		}
	}
}
