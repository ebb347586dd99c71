package sdk_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"

	"github.com/skytrail/skytrail/sdk"
	"github.com/skytrail/skytrail/sdk/sw8"
	"github.com/skytrail/skytrail/sdk/tracehttp"
)

// segmentReporter is a go2sky reporter that hands finished segments to the
// test instead of sending them to an OAP.
type segmentReporter struct{ segments chan []go2sky.ReportedSpan }

func (r *segmentReporter) Boot(string, string, []go2sky.AgentConfigChangeWatcher) {}
func (r *segmentReporter) Send(spans []go2sky.ReportedSpan)                       { r.segments <- spans }
func (r *segmentReporter) Close()                                                 {}

func (r *segmentReporter) next(t *testing.T) []go2sky.ReportedSpan {
	t.Helper()
	select {
	case s := <-r.segments:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("go2sky reported no segment")
		return nil
	}
}

func newGo2sky(t *testing.T, service string) (*go2sky.Tracer, *segmentReporter) {
	t.Helper()
	rep := &segmentReporter{segments: make(chan []go2sky.ReportedSpan, 4)}
	tr, err := go2sky.NewTracer(service, go2sky.WithReporter(rep), go2sky.WithInstance(service+"-1"))
	if err != nil {
		t.Fatal(err)
	}
	return tr, rep
}

// TestInteropWithGo2sky runs gateway (go2sky) -> orders (this SDK) ->
// inventory (go2sky) over loopback HTTP and checks that, under SkyTrail's ID
// mapping, the three make one trace with every parent link in place.
func TestInteropWithGo2sky(t *testing.T) {
	// inventory: a go2sky service.
	inventory, inventoryRep := newGo2sky(t, "inventory")
	inventorySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span, _, err := inventory.CreateEntrySpan(r.Context(), "/stock", func(k string) (string, error) { return r.Header.Get(k), nil })
		if err != nil {
			t.Errorf("inventory entry span: %v", err)
			return
		}
		span.End()
	}))
	t.Cleanup(inventorySrv.Close)

	// orders: a service using this SDK, exporting to an OTLP collector.
	col, addr := startGRPCCollector(t)
	logger, _ := textLogger()
	flush := start(t, sdk.WithServiceName("orders"), sdk.WithServiceInstanceID("orders-1"),
		sdk.WithEndpoint("http://"+addr), sdk.WithLogger(logger))
	client := tracehttp.NewClient()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, inventorySrv.URL+"/stock", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("orders -> inventory: %v", err)
			return
		}
		_ = resp.Body.Close()
	})
	ordersSrv := httptest.NewServer(tracehttp.NewHandler(mux))
	t.Cleanup(ordersSrv.Close)
	ordersHost := mustHost(t, ordersSrv.URL)

	// gateway: a go2sky service calling orders.
	gateway, gatewayRep := newGo2sky(t, "gateway")
	entry, ctx, err := gateway.CreateLocalSpan(context.Background(), go2sky.WithOperationName("/checkout"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ordersSrv.URL+"/orders/42", nil)
	exit, err := gateway.CreateExitSpan(ctx, "/orders/{id}", ordersHost, func(k, v string) error {
		req.Header.Set(k, v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	exit.End()
	entry.End()
	flush()

	gatewaySeg := gatewayRep.next(t)
	inventorySeg := inventoryRep.next(t)
	var gwExit go2sky.ReportedSpan
	for _, s := range gatewaySeg {
		if s.Peer() != "" { // only exit spans have a peer
			gwExit = s
		}
	}
	if gwExit == nil {
		t.Fatal("gateway segment has no exit span")
	}
	swTraceID := gwExit.Context().TraceID
	wantTrace, _ := sw8.TraceIDFromString(swTraceID)

	// gateway -> orders: the SDK's server span continues the go2sky trace
	// and hangs off the exit span.
	server := col.span(t, "GET /orders/{id}")
	if got := hex.EncodeToString(server.span.TraceId); got != wantTrace.String() {
		t.Errorf("orders trace %s, want %s (from go2sky %s)", got, wantTrace, swTraceID)
	}
	wantParent := sw8.SpanIDFromSegment(gwExit.Context().SegmentID, gwExit.Context().SpanID)
	if got := hex.EncodeToString(server.span.ParentSpanId); got != wantParent.String() {
		t.Errorf("orders server span's parent %s, want %s (go2sky exit span %s/%d)", got, wantParent,
			gwExit.Context().SegmentID, gwExit.Context().SpanID)
	}
	client2 := col.span(t, "GET")
	if hex.EncodeToString(client2.span.ParentSpanId) != hex.EncodeToString(server.span.SpanId) {
		t.Error("orders client span is not a child of its server span")
	}

	// orders -> inventory: go2sky's entry span references the SDK's client
	// span, in the same trace, with the caller's service, endpoint, address.
	invEntry := inventorySeg[len(inventorySeg)-1]
	if invEntry.Context().TraceID != swTraceID {
		t.Errorf("inventory trace ID %q, want %q", invEntry.Context().TraceID, swTraceID)
	}
	refs := invEntry.Refs()
	if len(refs) != 1 {
		t.Fatalf("inventory entry span has %d refs", len(refs))
	}
	ref := refs[0]
	if got := sw8.SpanIDFromSegment(ref.ParentSegmentID, ref.ParentSpanID); got.String() != hex.EncodeToString(client2.span.SpanId) {
		t.Errorf("inventory ref maps to span %s, want the orders client span %x", got, client2.span.SpanId)
	}
	if ref.TraceID != swTraceID || ref.ParentService != "orders" || ref.ParentServiceInstance != "orders-1" ||
		ref.ParentEndpoint != "GET /orders/{id}" || ref.AddressUsedAtClient != mustHost(t, inventorySrv.URL) {
		t.Errorf("inventory ref %+v", ref)
	}
}

func mustHost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
