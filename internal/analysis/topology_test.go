package analysis

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// call runs one client span in the caller and the server span it causes in
// the callee, the server's parent arriving as a remote span context, as
// propagation over the wire would deliver it. It returns the server's
// context for further calls.
func call(ctx context.Context, client, server trace.Tracer, op string, start time.Time, clientMs, serverMs float64, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	_, cs := client.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	sctx, ss := server.Start(trace.ContextWithRemoteSpanContext(context.Background(), cs.SpanContext()), op,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(time.Millisecond)))
	ss.End(trace.WithTimestamp(start.Add(time.Millisecond + ms(serverMs))))
	cs.End(trace.WithTimestamp(start.Add(ms(clientMs))))
	return sctx, ss
}

// TestECommerceMap sends the classic chain — frontend to order, order to
// inventory and payment, inventory to MySQL — and expects that map, with
// MySQL as a virtual database node and frontend under the user node.
func TestECommerceMap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	frontend, flushFrontend := h.tracer("frontend", attribute.String("service.instance.id", "fe-1"))
	order, flushOrder := h.tracer("order", attribute.String("service.instance.id", "order-1"))
	inventory, flushInventory := h.tracer("inventory", attribute.String("service.instance.id", "inv-1"))
	payment, flushPayment := h.tracer("payment", attribute.String("service.instance.id", "pay-1"))

	base := pastMinute()
	for i := range 10 {
		start := base.Add(time.Duration(i) * time.Second)
		ctx, root := frontend.Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
		octx, _ := call(ctx, frontend, order, "POST /orders", start.Add(time.Millisecond), 90, 85)
		ictx, _ := call(octx, order, inventory, "POST /reserve", start.Add(2*time.Millisecond), 40, 38)
		_, db := inventory.Start(ictx, "UPDATE stock", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(3*time.Millisecond)),
			trace.WithAttributes(attribute.String("db.system", "mysql"), attribute.String("server.address", "mysql"), attribute.Int("server.port", 3306)))
		db.End(trace.WithTimestamp(start.Add(13 * time.Millisecond)))
		call(octx, order, payment, "POST /charge", start.Add(45*time.Millisecond), 30, 28)
		root.End(trace.WithTimestamp(start.Add(100 * time.Millisecond)))
	}
	// Servers before clients for payment, clients first for the rest: the
	// join must work in both orders.
	flushPayment()
	flushFrontend()
	flushOrder()
	flushInventory()
	h.flush()

	topo := h.topology()

	type edgeID struct{ client, server, serverType, system string }
	got := map[edgeID]Edge{}
	for _, e := range topo.Edges {
		got[edgeID{e.Client, e.Server, e.ServerType, e.System}] = e
	}
	want := []struct {
		id                 edgeID
		clientSide, server bool
	}{
		{edgeID{"user", "frontend", "service", ""}, false, true},
		{edgeID{"frontend", "order", "service", ""}, true, true},
		{edgeID{"order", "inventory", "service", ""}, true, true},
		{edgeID{"order", "payment", "service", ""}, true, true},
		{edgeID{"inventory", "mysql:3306", "database", "mysql"}, true, false},
	}
	if len(got) != len(want) {
		t.Errorf("got %d edges, want %d: %+v", len(got), len(want), topo.Edges)
	}
	for _, w := range want {
		e, ok := got[w.id]
		if !ok {
			t.Errorf("missing edge %+v", w.id)
			continue
		}
		if (e.ClientSide != nil) != w.clientSide || (e.ServerSide != nil) != w.server {
			t.Errorf("edge %+v: client side %v, server side %v; want %v, %v", w.id, e.ClientSide != nil, e.ServerSide != nil, w.clientSide, w.server)
		}
		for _, f := range []*Figures{e.ClientSide, e.ServerSide} {
			if f != nil && f.Calls != 10 {
				t.Errorf("edge %+v: %d calls, want 10", w.id, f.Calls)
			}
		}
	}
	if e := got[edgeID{"order", "payment", "service", ""}]; e.ClientSide != nil && e.ServerSide != nil {
		within(t, "order->payment client p50", e.ClientSide.P50Ms, 30, histogramTolerance)
		within(t, "order->payment server p50", e.ServerSide.P50Ms, 28, histogramTolerance)
	}

	nodes := map[string]Node{}
	for _, n := range topo.Nodes {
		nodes[n.Name] = n
	}
	for name, typ := range map[string]string{"user": "user", "frontend": "service", "order": "service", "inventory": "service", "payment": "service", "mysql:3306": "database"} {
		if n, ok := nodes[name]; !ok || n.Type != typ {
			t.Errorf("node %s: %+v, want type %s", name, n, typ)
		}
	}
	if n := nodes["mysql:3306"]; n.System != "mysql" || n.Figures == nil || n.Figures.Calls != 10 {
		t.Errorf("mysql node: %+v, want system mysql and 10 calls", n)
	}
	if n := nodes["order"]; n.Figures == nil || n.Figures.Calls != 10 || n.Figures.Apdex == nil || *n.Figures.Apdex != 1 {
		t.Errorf("order node figures: %+v, want 10 calls, apdex 1", n.Figures)
	}

	deps, err := h.analyser.Dependencies(context.Background(), time.Now(), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 4 {
		t.Errorf("dependencies: %+v, want the 4 edges without the user node", deps)
	}
	for _, d := range deps {
		if d.CallCount != 10 {
			t.Errorf("dependency %+v: want 10 calls", d)
		}
	}
}

// TestUnansweredHTTPCall: a client span no instrumented server answers
// becomes an edge to an external node named for the host it called.
func TestUnansweredHTTPCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	tracer, finish := h.tracer("shop")
	start := pastMinute()
	_, span := tracer.Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.full", "https://api.stripe.com/v1/charges")))
	span.End(trace.WithTimestamp(start.Add(200 * time.Millisecond)))
	finish()
	h.flush()
	if got := h.scalar(`sum_over_time(skytrail_edge_client_calls:increase1m{client="shop",server="api.stripe.com",server_type="external"}[10m])`); got != 1 {
		t.Errorf("calls to the external node = %g, want 1", got)
	}
}
