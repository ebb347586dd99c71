// An external test package: the test runs the real server, which imports ui.
package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	otelhost "go.opentelemetry.io/contrib/instrumentation/host"
	otelruntime "go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"

	"github.com/skytrail/skytrail/internal/doctor"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

const chromium = "/usr/bin/chromium"

// browserPrereqs skips the test when chromium or the npm packages are
// missing on a developer's machine; under CI (CI set) they must be there.
func browserPrereqs(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install -y chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci in internal/ui/testdata/browser)")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s", strings.Join(missing, ", "))
		}
		t.Skipf("browser tests need %s", strings.Join(missing, ", "))
	}
	return dir
}

// startSkyTrail runs a real server on loopback ports and returns it with
// the URL the UI is reached at: the server itself once it serves the UI,
// else a front that serves Handler and passes the APIs through.
func startSkyTrail(t *testing.T, configure ...func(*server.Config)) (*server.Server, string) {
	t.Helper()
	s := servertest.Start(t, configure...)
	api := "http://" + s.Addrs["query API"]
	resp, err := http.Get(api + "/traces/0af7651916cd43dd8448eb211c80319c")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the server does not serve the UI at /traces/{id}: HTTP %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return s, api
}

// feeder sends spans to SkyTrail over OTLP/gRPC with the real
// OpenTelemetry SDK, one tracer provider (resource) per service instance.
type feeder struct {
	t    *testing.T
	addr string
	tps  map[string]*sdktrace.TracerProvider
}

// tracer returns the tracer of a service's instance service-1.
func (f *feeder) tracer(service string) trace.Tracer { return f.instance(service, service+"-1") }

// instance returns the tracer of one instance of a service; every instance
// of a service reports the same host and process.
func (f *feeder) instance(service, id string) trace.Tracer {
	tp := f.tps[id]
	if tp == nil {
		exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(f.addr), otlptracegrpc.WithInsecure())
		if err != nil {
			f.t.Fatal(err)
		}
		res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service),
			attribute.String("host.name", "host-"+service), attribute.Int("process.pid", 4242),
			attribute.String("service.instance.id", id))
		tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(50*time.Millisecond)))
		f.tps[id] = tp
	}
	return tp.Tracer("skytrail-ui-test")
}

func (f *feeder) flush() {
	for _, tp := range f.tps {
		if err := tp.ForceFlush(context.Background()); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *feeder) shutdown() {
	for _, tp := range f.tps {
		_ = tp.Shutdown(context.Background())
	}
}

// span starts a span at start lasting d; the SDK takes explicit times, so
// the tree's shape and order do not depend on the machine's speed.
func span(ctx context.Context, tr trace.Tracer, name string, kind trace.SpanKind, start time.Time, d time.Duration, attrs ...attribute.KeyValue) (context.Context, func(...trace.SpanEndOption)) {
	ctx, sp := tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	return ctx, func(opts ...trace.SpanEndOption) { sp.End(append(opts, trace.WithTimestamp(start.Add(d)))...) }
}

// remote carries ctx's span to another service as HTTP headers would
// (W3C traceparent), so the callee's parent is remote as in production.
func remote(ctx context.Context) context.Context {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return propagation.TraceContext{}.Extract(context.Background(), carrier)
}

// row is one waterfall row the browser must show: depth, service, operation.
type row struct {
	Depth   int    `json:"depth"`
	Service string `json:"service"`
	Name    string `json:"name"`
}

// checkoutTrace records the trace the browser test searches for by tag and
// returns its ID and the waterfall it must show.
func checkoutTrace(f *feeder, base time.Time, orderID int, links ...trace.Link) (string, []row) {
	ctx := context.Background()
	fe, orders, pay := f.tracer("frontend"), f.tracer("orders"), f.tracer("payment")
	ctx, endRoot := span(ctx, fe, "GET /checkout", trace.SpanKindServer, base, 180*time.Millisecond,
		attribute.Int("order_id", orderID), attribute.String("http.route", "/checkout"), attribute.String("http.request.method", "GET"))
	octx, endCall := span(ctx, fe, "POST /orders", trace.SpanKindClient, base.Add(5*time.Millisecond), 90*time.Millisecond, attribute.String("server.address", "orders"))
	sctx, endServe := span(remote(octx), orders, "POST /orders", trace.SpanKindServer, base.Add(8*time.Millisecond), 80*time.Millisecond, attribute.Int("order_id", orderID))
	_, endDB := span(sctx, orders, "INSERT orders", trace.SpanKindClient, base.Add(10*time.Millisecond), 30*time.Millisecond,
		attribute.String("db.system", "postgresql"), attribute.String("db.statement", "INSERT INTO orders VALUES ($1)"), attribute.String("server.address", "pg-main"))
	endDB()
	_, endPub := span(sctx, orders, "order.created publish", trace.SpanKindProducer, base.Add(45*time.Millisecond), 12*time.Millisecond,
		attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", "order.created"))
	endPub()
	endServe()
	endCall()
	pctx, endPayCall := span(ctx, fe, "POST payment", trace.SpanKindClient, base.Add(100*time.Millisecond), 70*time.Millisecond)
	cctx, charge := pay.Start(remote(pctx), "charge", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(104*time.Millisecond)), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Float64("amount", 12.5), attribute.String("card.brand", "visa")))
	_ = cctx
	charge.AddEvent("card checked", trace.WithTimestamp(base.Add(120*time.Millisecond)), trace.WithAttributes(attribute.String("result", "declined")))
	charge.SetStatus(codes.Error, "card declined")
	charge.End(trace.WithTimestamp(base.Add(160 * time.Millisecond)))
	endPayCall()
	endRoot()
	id := trace.SpanContextFromContext(ctx).TraceID().String()
	return id, []row{
		{0, "frontend", "GET /checkout"},
		{1, "frontend", "POST /orders"},
		{2, "orders", "POST /orders"},
		{3, "orders", "INSERT orders"},
		{3, "orders", "order.created publish"},
		{1, "frontend", "POST payment"},
		{2, "payment", "charge"},
	}
}

// slowPartTrace records shop's GET /cart (300 ms) waiting on pricing (the
// slow part, 10-280 ms, failing deep down in its database call with
// "deadlock detected") while a stock lookup (10-50 ms) runs beside it: the
// critical path is the cart, the prices call, pricing's span and its
// query; the cart's own time is 30 ms.
func slowPartTrace(f *feeder, base time.Time) string {
	shop, pricing := f.tracer("shop"), f.tracer("pricing")
	ctx, root := shop.Start(context.Background(), "GET /cart", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base))
	_, endStock := span(ctx, shop, "load stock", trace.SpanKindInternal, base.Add(10*time.Millisecond), 40*time.Millisecond)
	endStock()
	pctx, call := shop.Start(ctx, "GET /prices", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(10*time.Millisecond)))
	sctx, serve := pricing.Start(remote(pctx), "GET /prices", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(base.Add(12*time.Millisecond)))
	_, db := pricing.Start(sctx, "SELECT prices", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(20*time.Millisecond)),
		trace.WithAttributes(attribute.String("db.system", "postgresql")))
	db.SetStatus(codes.Error, "deadlock detected")
	db.End(trace.WithTimestamp(base.Add(260 * time.Millisecond)))
	serve.SetStatus(codes.Error, "prices unavailable")
	serve.End(trace.WithTimestamp(base.Add(278 * time.Millisecond)))
	call.SetStatus(codes.Error, "HTTP 503")
	call.End(trace.WithTimestamp(base.Add(280 * time.Millisecond)))
	root.SetStatus(codes.Error, "HTTP 500")
	root.End(trace.WithTimestamp(base.Add(300 * time.Millisecond)))
	return trace.SpanContextFromContext(ctx).TraceID().String()
}

// treeOfServices records one trace through n services m-00 … m-(n-1), each
// m-i calling m-(2i+1) and m-(2i+2): a map of n services in layers.
func treeOfServices(f *feeder, base time.Time, n int) {
	name := func(i int) string { return fmt.Sprintf("m-%02d", i) }
	var serve func(ctx context.Context, i int, at time.Time)
	serve = func(ctx context.Context, i int, at time.Time) {
		sctx, end := span(ctx, f.tracer(name(i)), "GET /work", trace.SpanKindServer, at, 50*time.Millisecond)
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c >= n {
				continue
			}
			cctx, endCall := span(sctx, f.tracer(name(i)), "GET /work", trace.SpanKindClient, at.Add(time.Millisecond), 40*time.Millisecond,
				attribute.String("server.address", name(c)))
			serve(remote(cctx), c, at.Add(2*time.Millisecond))
			endCall()
		}
		end()
	}
	serve(context.Background(), 0, base)
}

// goRuntime runs OpenTelemetry's Go runtime instrumentation in this
// process as the instance service-1 of service, exporting over OTLP/gRPC
// every 300 ms, as a Go service would; stop flushes and ends it.
func goRuntime(t *testing.T, addr, service string) (stop func()) {
	exp, err := otlpmetricgrpc.New(context.Background(), otlpmetricgrpc.WithEndpoint(addr), otlpmetricgrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service), attribute.String("service.instance.id", service+"-1"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(300*time.Millisecond))))
	if err := otelruntime.Start(otelruntime.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	// The runtime instrumentation reports no CPU; the host one does
	// (process.cpu.time), and a Go service runs both for it.
	if err := otelhost.Start(otelhost.WithMeterProvider(mp)); err != nil {
		t.Fatal(err)
	}
	return func() { _ = mp.Shutdown(context.Background()) }
}

// skywalkingGoRuntime reports this process' Go runtime as skywalking-go's
// agent does for an instance of service, every 500 ms until stop: the
// instance's properties and keep-alive (ManagementService), then a
// MeterReportService.CollectBatch stream of the meters its runtimemetrics
// plugin registers (apache/skywalking-go plugins/runtimemetrics), read from
// runtime/metrics as it reads them, service, instance and time on the first
// meter only. The plugin sends no CPU meter.
func skywalkingGoRuntime(t *testing.T, addr, service, instance string) (stop func()) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mgmt := managementv3.NewManagementServiceClient(conn)
	if _, err := mgmt.ReportInstanceProperties(ctx, &managementv3.InstanceProperties{Service: service, ServiceInstance: instance,
		Properties: []*commonv3.KeyStringValuePair{{Key: "language", Value: "go"}, {Key: "hostname", Value: "host-" + service}, {Key: "Process No.", Value: "4343"}}}); err != nil {
		t.Fatal(err)
	}
	meters := agentv3.NewMeterReportServiceClient(conn)
	// The plugin's gauges: runtime/metrics name → meter name and labels.
	gauges := []struct{ sample, name, typ string }{
		{"/memory/classes/heap/objects:bytes", "instance_golang_memory_heap_labeled", "objects"},
		{"/memory/classes/heap/free:bytes", "instance_golang_memory_heap_labeled", "free"},
		{"/memory/classes/heap/released:bytes", "instance_golang_memory_heap_labeled", "released"},
		{"/memory/classes/heap/unused:bytes", "instance_golang_memory_heap_labeled", "unused"},
		{"/sched/goroutines:goroutines", "instance_golang_live_goroutines_num", ""},
		{"/sched/gomaxprocs:threads", "instance_golang_os_threads_num", ""},
		{"/gc/heap/goal:bytes", "instance_golang_gc_heap_goal", ""},
		{"/gc/cycles/total:gc-cycles", "instance_golang_gc_count_labeled", "total"},
	}
	samples := make([]metrics.Sample, len(gauges)+1)
	for i, g := range gauges {
		samples[i].Name = g.sample
	}
	samples[len(gauges)].Name = "/gc/pauses:seconds"
	report := func() error {
		metrics.Read(samples)
		var batch []*agentv3.MeterData
		for i, g := range gauges {
			var labels []*agentv3.Label
			if g.typ != "" {
				labels = []*agentv3.Label{{Name: "type", Value: g.typ}}
			}
			batch = append(batch, &agentv3.MeterData{Metric: &agentv3.MeterData_SingleValue{SingleValue: &agentv3.MeterSingleValue{
				Name: g.name, Labels: labels, Value: float64(samples[i].Value.Uint64())}}})
		}
		// Every pause since the start, each bucket at its lower bound in
		// nanoseconds; the infinite bounds are left out, as the plugin does.
		pauses := samples[len(gauges)].Value.Float64Histogram()
		var buckets []*agentv3.MeterBucketValue
		for i, c := range pauses.Counts {
			if b := pauses.Buckets[i]; b >= 0 && !math.IsInf(b, 1) {
				buckets = append(buckets, &agentv3.MeterBucketValue{Bucket: b * 1e9, Count: int64(c)})
			}
		}
		batch = append(batch, &agentv3.MeterData{Metric: &agentv3.MeterData_Histogram{Histogram: &agentv3.MeterHistogram{Name: "instance_golang_gc_pauses", Values: buckets}}})
		batch[0].Service, batch[0].ServiceInstance, batch[0].Timestamp = service, instance, time.Now().UnixMilli()
		stream, err := meters.CollectBatch(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&agentv3.MeterDataCollection{MeterData: batch}); err != nil {
			return err
		}
		if _, err := stream.CloseAndRecv(); err != nil {
			return err
		}
		_, err = mgmt.KeepAlive(ctx, &managementv3.InstancePingPkg{Service: service, ServiceInstance: instance})
		return err
	}
	if err := report(); err != nil {
		t.Fatal(err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				// The service's own work: a collection now and then, so
				// every minute has pauses to rank.
				runtime.GC()
				if err := report(); err != nil {
					t.Errorf("reporting skywalking-go's meters: %v", err)
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		conn.Close()
	}
}

// promHas tells whether a PromQL query over the server answers a series.
func promHas(base, query string) bool {
	resp, err := http.Get(base + "/prometheus/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Data struct{ Result []json.RawMessage } `json:"data"`
	}
	return json.NewDecoder(resp.Body).Decode(&body) == nil && len(body.Data.Result) > 0
}

// crowd sends one server span for each of n services crowd-000 …, each
// its own resource, through the OTLP exporter in one export: the 500
// services every page's first draw is timed with. It returns a trace ID.
func crowd(t *testing.T, addr string, n int, at time.Time) string {
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	stubs := make(tracetest.SpanStubs, n)
	for i := range stubs {
		name := fmt.Sprintf("crowd-%03d", i)
		var tid trace.TraceID
		var sid trace.SpanID
		copy(tid[:], fmt.Sprintf("crowd%011d", i))
		copy(sid[:], fmt.Sprintf("s%07d", i))
		stubs[i] = tracetest.SpanStub{
			Name: "GET /health", SpanKind: trace.SpanKindServer, StartTime: at, EndTime: at.Add(time.Duration(i%50+1) * time.Millisecond),
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
			Resource:    resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name), attribute.String("service.instance.id", name+"-1")),
		}
	}
	if err := exp.ExportSpans(context.Background(), stubs.Snapshots()); err != nil {
		t.Fatal(err)
	}
	return stubs[0].SpanContext.TraceID().String()
}

// skywalkingTrace records gateway → stock → MySQL with go2sky, reported to
// SkyTrail's SkyWalking port, and returns the trace ID as the agent logs it.
func skywalkingTrace(t *testing.T, s *server.Server) string {
	gw, stock := servertest.Go2sky(t, s, "gateway"), servertest.Go2sky(t, s, "stock")
	headers := map[string]string{}
	entry, ctx, err := gw.CreateEntrySpan(context.Background(), "GET /buy", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	entry.Tag("order_id", "3003")
	exit, err := gw.CreateExitSpan(ctx, "GET /reserve", "stock:8080", func(k, v string) error { headers[k] = v; return nil })
	if err != nil {
		t.Fatal(err)
	}
	exit.SetSpanLayer(agentv3.SpanLayer_Http)
	sEntry, sctx, err := stock.CreateEntrySpan(context.Background(), "GET /reserve", func(k string) (string, error) { return headers[k], nil })
	if err != nil {
		t.Fatal(err)
	}
	db, err := stock.CreateExitSpan(sctx, "UPDATE stock", "mysql:3306", func(string, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	db.SetSpanLayer(agentv3.SpanLayer_Database)
	db.End()
	sEntry.End()
	exit.End()
	entry.End()
	return go2sky.TraceID(ctx)
}

// postAgentLog posts a log line tied to a trace the way SkyWalking's
// agents do over HTTP (/v3/logs).
func postAgentLog(t *testing.T, addr, traceID, text string) {
	body, _ := json.Marshal([]map[string]any{{
		"timestamp": time.Now().UnixMilli(), "service": "stock", "serviceInstance": "stock-1", "endpoint": "GET /reserve",
		"body":         map[string]any{"text": map[string]string{"text": text}},
		"traceContext": map[string]any{"traceId": traceID, "spanId": 0},
		"tags":         map[string]any{"data": []map[string]string{{"key": "level", "value": "ERROR"}}},
	}})
	resp, err := http.Post("http://"+addr+"/v3/logs", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v3/logs: HTTP %d", resp.StatusCode)
	}
}

// postShippedLog sends a zap-style JSON line through the Elasticsearch bulk
// API, as Filebeat ships it, tied to a span by its trace_id and span_id
// fields.
func postShippedLog(t *testing.T, addr, traceID, spanID, text string) {
	line, _ := json.Marshal(map[string]any{"@timestamp": time.Now().UTC().Format(time.RFC3339Nano), "level": "error", "msg": text,
		"service.name": "payment", "order_id": 1001, "trace_id": traceID, "span_id": spanID})
	body := append([]byte(`{"create":{"_index":"filebeat"}}`+"\n"), append(line, '\n')...)
	resp, err := http.Post("http://"+addr+"/insert/elasticsearch/_bulk", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /insert/elasticsearch/_bulk: HTTP %d", resp.StatusCode)
	}
}

// bigTrace records a trace of n spans: a root with chains under it, for
// the 2,000-span rendering and scrolling check.
func bigTrace(f *feeder, base time.Time, n int) string {
	tr := f.tracer("batch")
	ctx, endRoot := span(context.Background(), tr, "nightly import", trace.SpanKindServer, base, 20*time.Second)
	parent := ctx
	for i := 1; i < n; i++ {
		if i%20 == 1 {
			parent = ctx
		}
		c, end := span(parent, tr, fmt.Sprintf("import row %d", i), trace.SpanKindInternal, base.Add(time.Duration(i)*9*time.Millisecond), 8*time.Millisecond,
			attribute.Int("row", i))
		end()
		parent = c
	}
	endRoot()
	return trace.SpanContextFromContext(ctx).TraceID().String()
}

// lostContextTraces records calls from invoices to ledger whose server
// span starts a new trace (ledger does not extract the context), the
// integrity analysis's lost_propagation; it returns the callers' trace IDs.
// The caller is not frontend, whose neighbours the map test counts.
func lostContextTraces(f *feeder, base time.Time, n int) []string {
	inv, ledger := f.tracer("invoices"), f.tracer("ledger")
	var ids []string
	for i := range n {
		at := base.Add(time.Duration(i) * time.Second)
		ctx, endRoot := span(context.Background(), inv, "POST /invoices", trace.SpanKindServer, at, 40*time.Millisecond)
		_, endCall := span(ctx, inv, "GET /balance", trace.SpanKindClient, at.Add(2*time.Millisecond), 30*time.Millisecond,
			attribute.String("server.address", "ledger"), attribute.Int("server.port", 8080), attribute.String("url.full", "http://ledger:8080/balance"))
		// What a server without the propagation middleware records: a new trace.
		_, endServe := span(context.Background(), ledger, "GET /balance", trace.SpanKindServer, at.Add(4*time.Millisecond), 25*time.Millisecond,
			attribute.String("server.address", "ledger"), attribute.Int("server.port", 8080), attribute.String("http.route", "/balance"))
		endServe()
		endCall()
		endRoot()
		ids = append(ids, trace.SpanContextFromContext(ctx).TraceID().String())
	}
	return ids
}

// steadyService sends service steady's calls, one every 200 ms (300 a
// minute), from three minutes before the running one began until stop is
// called: the back-filled minutes at once, then each call as its time comes,
// so every complete minute has exactly 300 calls whenever the browser looks.
// Each span is stamped with its due time, however late the sender runs.
func steadyService(t *testing.T, addr string) (stop func()) {
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("steady"), attribute.String("service.instance.id", "steady-1"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(50*time.Millisecond)))
	tr := tp.Tracer("skytrail-ui-test")
	const every = 200 * time.Millisecond
	next := time.Now().Truncate(time.Minute).Add(-3 * time.Minute)
	sendDue := func() {
		for now := time.Now(); !next.After(now); next = next.Add(every) {
			_, end := span(context.Background(), tr, "GET /status", trace.SpanKindServer, next, 20*time.Millisecond)
			end()
		}
	}
	sendDue()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sendDue()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		_ = tp.Shutdown(context.Background())
	}
}

// findingOf judges the traces whose grace period has passed and answers
// the finding of kind about service, if the server reports it.
func findingOf(s *server.Server, api, kind, service string) bool {
	return findingErr(s, api, kind, service) == nil
}

// findingErr is nil once the diagnostics hold a finding of kind about
// service, else an error naming the findings they hold.
func findingErr(s *server.Server, api, kind, service string) error {
	s.Integrity.Judge(time.Now())
	resp, err := http.Get(api + "/api/v1/diagnostics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var rep struct {
		Findings []struct{ Kind, Service, Peer string } `json:"findings"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rep) != nil {
		return fmt.Errorf("diagnostics answered HTTP %d", resp.StatusCode)
	}
	for _, f := range rep.Findings {
		if f.Kind == kind && f.Service == service {
			return nil
		}
	}
	return fmt.Errorf("no %s finding about %s; the findings: %+v", kind, service, rep.Findings)
}

// swInstance is inventory's instance, named as skywalking-go names one by
// default (a UUID, @, the host's address).
const swInstance = "5b1c0c8e4f6a4d0f9a3e2b7c1d0e9f8a@10.0.0.7"

// waitTimeout bounds each wait for what the feeders sent to show through
// the API: generous, for a busy CI machine running tests in parallel.
const waitTimeout = 30 * time.Second

func traceSpans(api, id string) int {
	resp, err := http.Get(api + "/api/v1/traces/" + id)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var body struct {
		Spans []json.RawMessage `json:"spans"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return 0
	}
	return len(body.Spans)
}

// missingAPIs lists the APIs the UI calls that the server does not serve
// yet, as path patterns (* is one segment); the browser script tolerates their 404s (and only theirs) in the
// console, and the pages show what they have instead.
func missingAPIs(t *testing.T, base string) []string {
	var missing []string
	for _, api := range []struct{ probe, pattern string }{
		{"/api/v1/topology", "/api/v1/topology"},
		{"/api/v1/services/frontend/instances", "/api/v1/services/*/instances"},
		{"/api/v1/services/frontend/endpoints", "/api/v1/services/*/endpoints"},
		{"/prometheus/api/v1/query?query=1", "/prometheus"},
		{"/api/v1/logs", "/api/v1/logs"},
	} {
		resp, err := http.Get(base + api.probe)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			missing = append(missing, api.pattern)
		}
	}
	if len(missing) > 0 {
		t.Logf("APIs not served yet (the UI degrades): %s", strings.Join(missing, ", "))
	}
	return missing
}

// TestBrowser drives Debian's chromium with playwright-core through every
// page against a real SkyTrail fed by the OpenTelemetry SDK.
func TestBrowser(t *testing.T) {
	dir := browserPrereqs(t)
	// Minutes are written five minutes after they end, not 45 s: what the
	// UI shows of the last minutes comes from the analysis' memory (as it
	// does for the running minute in any case), and a minute of steady's is
	// never written before all its calls are in.
	s, base := startSkyTrail(t, func(c *server.Config) { c.Analysis.FlushDelay = 5 * time.Minute })
	api := "http://" + s.Addrs["query API"]
	empty, emptyBase := startSkyTrail(t)
	// quiet: order sent a span and nothing since; silence counts after 1 s.
	quiet, quietBase := startSkyTrail(t, func(c *server.Config) { c.Integrity.SilentAfter = time.Second })
	qf := &feeder{t: t, addr: quiet.Addrs["OTLP gRPC"], tps: map[string]*sdktrace.TracerProvider{}}
	defer qf.shutdown()
	_, endOrder := span(context.Background(), qf.tracer("order"), "GET /orders", trace.SpanKindServer, time.Now(), 5*time.Millisecond)
	endOrder()
	// crowded: 500 services, for the first draw of every page.
	const crowdSize = 500
	crowded, crowdBase := startSkyTrail(t)
	crowdTraceID := crowd(t, crowded.Addrs["OTLP gRPC"], crowdSize, time.Now().Add(-time.Minute))
	// Its map: fifty services in a tree.
	const mapServices = 50
	treeOfServices(qf, time.Now().Add(-time.Minute), mapServices)
	qf.flush()

	f := &feeder{t: t, addr: s.Addrs["OTLP gRPC"], tps: map[string]*sdktrace.TracerProvider{}}
	defer f.shutdown()
	now := time.Now()
	// Other orders first, so the tag search has traces to tell apart.
	var earlier string
	for i := range 5 {
		earlier, _ = checkoutTrace(f, now.Add(-time.Duration(10-i)*time.Minute), 2000+i)
	}
	// The payment retries an earlier order's charge: a span link to that trace.
	earlierID, _ := trace.TraceIDFromHex(earlier)
	link := trace.Link{
		SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: earlierID, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}}),
		Attributes:  []attribute.KeyValue{attribute.String("link.reason", "retry")},
	}
	traceID, tree := checkoutTrace(f, now.Add(-2*time.Minute), 1001, link)
	// A second identity of the orders process: the registry flags it.
	_, end := span(context.Background(), f.instance("orders", "orders-2"), "GET /health", trace.SpanKindServer, now.Add(-time.Minute), time.Millisecond)
	end()
	// A hundred more services, for the services page's rendering time.
	for i := range 100 {
		_, end := span(context.Background(), f.tracer(fmt.Sprintf("svc-%03d", i)), "GET /health", trace.SpanKindServer, now.Add(-time.Minute), time.Duration(i+1)*time.Millisecond)
		end()
	}
	cartID := slowPartTrace(f, now.Add(-4*time.Minute))
	swTraceID := skywalkingTrace(t, s)
	const bigSpans = 2000
	bigID := bigTrace(f, now.Add(-5*time.Minute), bigSpans)
	lostIDs := lostContextTraces(f, now.Add(-3*time.Minute), 3)
	f.flush()
	poll.Until(t, waitTimeout, "the checkout trace", func() bool { return traceSpans(api, traceID) == len(tree) })
	poll.Until(t, waitTimeout, "the cart trace", func() bool { return traceSpans(api, cartID) == 5 })
	poll.Until(t, waitTimeout, "the 2,000-span trace", func() bool { return traceSpans(api, bigID) == bigSpans })
	poll.Until(t, waitTimeout, "the go2sky trace", func() bool { return traceSpans(api, url.PathEscape(swTraceID)) == 4 })
	postAgentLog(t, s.Addrs["SkyWalking HTTP"], swTraceID, "stock reservation failed: lock wait timeout")
	var checkout struct {
		Spans []struct{ SpanID, Name string }
	}
	servertest.GetJSON(t, api+"/api/v1/traces/"+traceID, &checkout)
	chargeSpan := ""
	for _, sp := range checkout.Spans {
		if sp.Name == "charge" {
			chargeSpan = sp.SpanID
		}
	}
	postShippedLog(t, s.Addrs["OTLP HTTP"], traceID, chargeSpan, "card declined for order 1001")
	poll.Until(t, waitTimeout, "the shipped log line", func() bool {
		var ans struct{ Logs []any }
		servertest.GetJSON(t, api+"/api/v1/logs?field=order_id:1001", &ans)
		return len(ans.Logs) == 1
	})
	poll.UntilNil(t, waitTimeout, func() error { return findingErr(s, api, "lost_propagation", "invoices") })
	poll.Until(t, waitTimeout, "the fifty services' map", func() bool {
		var topo struct{ Edges []json.RawMessage }
		resp, err := http.Get(quietBase + "/api/v1/topology")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&topo) == nil && len(topo.Edges) >= mapServices // 49 calls and user → m-00
	})
	poll.Until(t, waitTimeout, "the 500 services", func() bool {
		var body struct{ Services []json.RawMessage }
		resp, err := http.Get(crowdBase + "/api/v1/services")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&body) == nil && len(body.Services) == crowdSize && traceSpans(crowdBase, crowdTraceID) == 1
	})
	poll.Until(t, waitTimeout, "the silent_service finding about order", func() bool { return findingOf(quiet, quietBase, "silent_service", "order") })
	// doctor's probe reaches the server with data: it must not show as a service.
	probe, err := doctor.Run(context.Background(), doctor.Config{OTLPEndpoint: "http://" + s.Addrs["OTLP gRPC"], OTLPProtocol: doctor.ProtocolGRPC,
		SWBackend: s.Addrs["SkyWalking gRPC"], Server: api, Wait: waitTimeout, DialTimeout: 5 * time.Second}, doctor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range probe.Checks {
		if c.Name == "probe searchable" && c.Status != doctor.StatusOK {
			t.Fatalf("doctor's probe did not arrive: %+v", c)
		}
	}
	// frontend-1's Go runtime, by OpenTelemetry's instrumentation over OTLP metrics.
	defer goRuntime(t, s.Addrs["OTLP gRPC"], "frontend")()
	// inventory's instance, skywalking-go style (UUID@IP), by its runtime meters.
	defer skywalkingGoRuntime(t, s.Addrs["SkyWalking gRPC"], "inventory", swInstance)()
	poll.Until(t, waitTimeout, "frontend-1's and inventory's Go runtime metrics", func() bool {
		return promHas(api, `agent_go_goroutine_count{service="frontend",instance="frontend-1"}`) &&
			promHas(api, `agent_go_memory_used_bytes{service="frontend",instance="frontend-1",go_memory_type="other"}`) &&
			promHas(api, `agent_process_cpu_time_seconds_total{service="frontend",instance="frontend-1"}`) &&
			promHas(api, `agent_instance_golang_live_goroutines_num{service="inventory"}`) &&
			promHas(api, `agent_instance_golang_gc_pauses_bucket{service="inventory"}`)
	})
	// No flush: the figures show as the spans arrive. steady's calls go on
	// while the browser looks.
	defer steadyService(t, s.Addrs["OTLP gRPC"])()

	want, _ := json.Marshal(tree)
	if hold, _ := time.ParseDuration(os.Getenv("UI_DEV")); hold > 0 {
		// UI_DEV=20m: keep the fed servers up for a person (or ui.mjs run
		// by hand with these variables) instead of running the checks.
		t.Logf("CROWD_BASE_URL=%s CROWD_TRACE_ID=%s CART_TRACE_ID=%s QUIET_BASE_URL=%s EMPTY_OTLP_GRPC=%s BASE_URL=%s EMPTY_BASE_URL=%s TRACE_ID=%s BIG_TRACE_ID=%s SW_TRACE_ID=%s LOST_TRACE_IDS=%s TREE='%s'", crowdBase, crowdTraceID, cartID, quietBase, empty.Addrs["OTLP gRPC"], base, emptyBase, traceID, bigID, swTraceID, strings.Join(lostIDs, ","), want)
		time.Sleep(hold)
		return
	}
	// A guard against a hung browser, not a budget (the budgets are in
	// ui.mjs): about three minutes on a busy two-core machine, and CI runs
	// the cluster tests' engines beside it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "ui.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"BASE_URL="+base, "EMPTY_BASE_URL="+emptyBase, "EMPTY_OTLP_GRPC="+empty.Addrs["OTLP gRPC"], "QUIET_BASE_URL="+quietBase, "CART_TRACE_ID="+cartID, "CROWD_BASE_URL="+crowdBase, "CROWD_TRACE_ID="+crowdTraceID, "TRACE_ID="+traceID, "BIG_TRACE_ID="+bigID,
		"TREE="+string(want), "SW_TRACE_ID="+swTraceID, "LINKED_TRACE_ID="+earlier, "LOST_TRACE_IDS="+strings.Join(lostIDs, ","), "SW_INSTANCE="+swInstance, "ALLOW_MISSING="+strings.Join(missingAPIs(t, base), ","), "CHROMIUM="+chromium,
		// UI_SCREENSHOTS=/some/dir keeps a screenshot of every page, light and dark.
		"SCREENSHOTS="+os.Getenv("UI_SCREENSHOTS"),
		// UI_BUDGETS=strict holds the pages to their speed budgets.
		"UI_BUDGETS="+os.Getenv("UI_BUDGETS"))
	out, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", out)
	if err != nil {
		t.Fatalf("browser checks failed: %v", err)
	}
}
