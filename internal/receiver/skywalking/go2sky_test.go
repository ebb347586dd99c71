package skywalking

import (
	"context"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"github.com/SkyAPM/go2sky/reporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/receiver/skywalking/swconv"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/traceid"
)

// newTracer starts a real go2sky tracer reporting to addr over gRPC.
func newTracer(t *testing.T, addr, service, instance string, opts ...reporter.GRPCReporterOption) *go2sky.Tracer {
	t.Helper()
	opts = append([]reporter.GRPCReporterOption{reporter.WithCheckInterval(time.Second), reporter.WithCDS(time.Second)}, opts...)
	r, err := reporter.NewGRPCReporter(addr, opts...)
	if err != nil {
		t.Fatalf("go2sky reporter: %v", err)
	}
	t.Cleanup(r.Close)
	tracer, err := go2sky.NewTracer(service, go2sky.WithReporter(r), go2sky.WithInstance(instance))
	if err != nil {
		t.Fatalf("go2sky tracer: %v", err)
	}
	return tracer
}

// checkoutTrace has frontend call backend over HTTP (a cross-process ref
// carried in the sw8 header) and backend query MySQL, failing. It returns
// go2sky's trace ID.
func checkoutTrace(t *testing.T, frontend, backend *go2sky.Tracer) string {
	t.Helper()
	headers := map[string]string{}
	entry, ctx, err := frontend.CreateEntrySpan(context.Background(), "GET /checkout", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	entry.SetComponent(5004)
	entry.SetSpanLayer(agentv3.SpanLayer_Http)
	entry.Tag(go2sky.TagHTTPMethod, "GET")
	exit, err := frontend.CreateExitSpan(ctx, "GET /stock", "backend:8080", func(k, v string) error {
		headers[k] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exit.SetComponent(5005)
	exit.SetSpanLayer(agentv3.SpanLayer_Http)
	exit.Tag(go2sky.TagURL, "http://backend:8080/stock")

	bEntry, bctx, err := backend.CreateEntrySpan(context.Background(), "GET /stock", func(k string) (string, error) { return headers[k], nil })
	if err != nil {
		t.Fatal(err)
	}
	bEntry.SetComponent(5004)
	bEntry.SetSpanLayer(agentv3.SpanLayer_Http)
	db, err := backend.CreateExitSpan(bctx, "SELECT stock", "mysql:3306", func(string, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	db.SetComponent(5012)
	db.SetSpanLayer(agentv3.SpanLayer_Database)
	db.Tag(go2sky.TagDBType, "Mysql")
	db.Tag(go2sky.TagDBStatement, "SELECT qty FROM stock WHERE sku = ?")
	db.Error(time.Now(), "error.kind", "timeout", "message", "deadline exceeded")

	db.End()
	bEntry.End()
	exit.End()
	entry.End()
	return go2sky.TraceID(ctx)
}

func TestGo2skyTwoServicesJoinIntoOneTree(t *testing.T) {
	s := &sink{}
	addr := startGRPC(t, s.door(), Options{})
	frontend := newTracer(t, addr, "frontend", "frontend-1")
	backend := newTracer(t, addr, "backend", "backend-1")
	accepted := s.counter(t, "skytrail_receiver_spans_accepted_total", "receiver", GRPCReceiver)

	traceID := checkoutTrace(t, frontend, backend)
	poll.Until(t, 30*time.Second, "both segments", func() bool { return len(s.spans()) >= 4 })

	want, ok := traceid.FromString(traceID)
	if !ok {
		t.Fatalf("go2sky trace ID %q does not map", traceID)
	}
	byName := map[string]ptrace.Span{}
	for _, span := range s.spans() {
		if span.TraceID() != want {
			t.Errorf("span %q in trace %v, want %v (go2sky's %s)", span.Name(), span.TraceID(), want, traceID)
		}
		key := span.Name()
		if span.Kind() == ptrace.SpanKindServer {
			key = "server " + key
		}
		byName[key] = span
	}
	root, exit, bEntry, db := byName["server GET /checkout"], byName["GET /stock"], byName["server GET /stock"], byName["SELECT stock"]
	if len(byName) != 4 {
		t.Fatalf("spans = %v, want the 4 of the trace", keys(byName))
	}

	// One tree: root -> exit -> (other process) entry -> db.
	if !root.ParentSpanID().IsEmpty() {
		t.Errorf("root has parent %v", root.ParentSpanID())
	}
	if exit.ParentSpanID() != root.SpanID() {
		t.Errorf("exit parent %v, want root %v", exit.ParentSpanID(), root.SpanID())
	}
	if bEntry.ParentSpanID() != exit.SpanID() {
		t.Errorf("backend entry parent %v, want frontend exit %v (cross-process ref)", bEntry.ParentSpanID(), exit.SpanID())
	}
	if db.ParentSpanID() != bEntry.SpanID() {
		t.Errorf("db parent %v, want backend entry %v", db.ParentSpanID(), bEntry.SpanID())
	}

	if exit.Kind() != ptrace.SpanKindClient || db.Kind() != ptrace.SpanKindClient {
		t.Errorf("exit kinds %v, %v", exit.Kind(), db.Kind())
	}
	ba := bEntry.Attributes()
	for key, want := range map[string]string{
		"sw.ref.type": "CrossProcess", "sw.ref.parent_service": "frontend", "sw.ref.parent_service_instance": "frontend-1",
		"sw.ref.parent_endpoint": "GET /checkout", "sw.ref.network_address": "backend:8080",
	} {
		if got := str(ba, key); got != want {
			t.Errorf("backend entry %s = %q, want %q", key, got, want)
		}
	}
	// go2sky's trace ID is 32 hex digits: the span's trace ID is that string.
	if got := bEntry.TraceID().String(); got != traceID {
		t.Errorf("trace ID prints as %s, go2sky's is %s", got, traceID)
	}

	if db.Status().Code() != ptrace.StatusCodeError {
		t.Errorf("db status %v, want error", db.Status().Code())
	}
	da := db.Attributes()
	for key, want := range map[string]string{
		"sw.peer": "mysql:3306", "db.system": "mysql", "db.statement": "SELECT qty FROM stock WHERE sku = ?",
		"sw.layer": "Database", "sw.component": "GoMysql",
	} {
		if got := str(da, key); got != want {
			t.Errorf("db %s = %q, want %q", key, got, want)
		}
	}
	if id, ok := swconv.ComponentID(str(da, "sw.component")); !ok || id != 5012 {
		t.Errorf("component %q maps back to %d, want 5012", str(da, "sw.component"), id)
	}
	if db.Events().Len() != 1 {
		t.Fatalf("db events = %d, want the error log", db.Events().Len())
	}
	if msg, _ := db.Events().At(0).Attributes().Get("message"); msg.Str() != "deadline exceeded" {
		t.Errorf("db event attributes = %v", db.Events().At(0).Attributes().AsRaw())
	}
	if got := s.counter(t, "skytrail_receiver_spans_accepted_total", "receiver", GRPCReceiver) - accepted; got != 4 {
		t.Errorf("spans accepted counter rose by %v, want 4", got)
	}

	// go2sky reports its instance properties, then keeps alive.
	poll.Until(t, 30*time.Second, "instance properties and a keep-alive", func() bool {
		var props, ping bool
		for _, hb := range s.heartbeatList() {
			if hb.Service == "backend" && hb.Instance == "backend-1" && hb.Protocol == "skywalking" {
				props = props || hb.Properties["language"] == "go"
				ping = ping || hb.Properties == nil
			}
		}
		return props && ping
	})
}

func TestGo2skyWithAuthentication(t *testing.T) {
	s := &sink{}
	addr := startGRPC(t, s.door(), Options{Token: "s3cret"})
	unauth := func() float64 {
		return s.counter(t, "skytrail_receiver_spans_rejected_total", "receiver", GRPCReceiver, "reason", "unauthenticated")
	}

	// Without the token nothing gets in: wait until the server has turned the
	// agent away, then check that nothing was stored.
	before := unauth()
	anonymous := newTracer(t, addr, "anonymous", "anonymous-1")
	checkoutTrace(t, anonymous, anonymous)
	poll.Until(t, 30*time.Second, "the server to refuse the agent without a token", func() bool { return unauth() > before })
	time.Sleep(200 * time.Millisecond)
	if n := len(s.spans()); n != 0 {
		t.Fatalf("%d spans stored from an agent without the token", n)
	}
	if hbs := s.heartbeatList(); len(hbs) != 0 {
		t.Fatalf("heartbeats stored from an agent without the token: %v", hbs)
	}

	frontend := newTracer(t, addr, "frontend", "frontend-1", reporter.WithAuthentication("s3cret"))
	backend := newTracer(t, addr, "backend", "backend-1", reporter.WithAuthentication("s3cret"))
	checkoutTrace(t, frontend, backend)
	poll.Until(t, 30*time.Second, "spans from the agents with the token", func() bool { return len(s.spans()) >= 4 })
	for _, span := range s.spans() {
		if svc, _ := span.Attributes().Get("sw.ref.parent_service"); svc.Str() == "anonymous" {
			t.Errorf("span %q from the unauthenticated agent stored", span.Name())
		}
	}
}

func keys(m map[string]ptrace.Span) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// str returns attribute key of m as a string, "" when absent.
func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}
