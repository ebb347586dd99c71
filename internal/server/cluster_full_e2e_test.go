package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
	"github.com/skytrail/skytrail/internal/testutil/victoriametrics"
)

// teeReporter hands go2sky's segments to two reporters, so the same
// SkyWalking traces (same IDs) reach a cluster node and the embedded
// server a cluster is compared with.
type teeReporter struct{ a, b go2sky.Reporter }

func (r teeReporter) Boot(service, instance string, w []go2sky.AgentConfigChangeWatcher) {
	r.a.Boot(service, instance, w)
	r.b.Boot(service, instance, w)
}
func (r teeReporter) Send(spans []go2sky.ReportedSpan) { r.a.Send(spans); r.b.Send(spans) }
func (r teeReporter) Close()                           { r.a.Close(); r.b.Close() }

// getBody GETs url and returns its status and body.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// traceIDsOf is the sorted trace IDs a search on api answers.
func traceIDsOf(t *testing.T, api, query string) []string {
	t.Helper()
	var r struct {
		Traces []struct {
			TraceID string `json:"traceID"`
		} `json:"traces"`
	}
	if code := servertest.GetJSON(t, api+"/api/v1/traces?"+query, &r); code != http.StatusOK {
		t.Fatalf("search %s: HTTP %d", query, code)
	}
	var ids []string
	for _, tr := range r.Traces {
		ids = append(ids, tr.TraceID)
	}
	slices.Sort(ids)
	return ids
}

// topologyOf is the service map over [start, end] as canonical JSON.
func topologyOf(t *testing.T, api string, start, end time.Time) string {
	t.Helper()
	var topo struct {
		Nodes, Edges []any
	}
	q := fmt.Sprintf("/api/v1/topology?start=%s&end=%s", url.QueryEscape(start.Format(time.RFC3339)), url.QueryEscape(end.Format(time.RFC3339)))
	if code := servertest.GetJSON(t, api+q, &topo); code != http.StatusOK {
		t.Fatalf("topology: HTTP %d", code)
	}
	// The rate and the minutes covered depend on when the query runs.
	for _, x := range slices.Concat(topo.Nodes, topo.Edges) {
		for _, side := range []string{"figures", "clientSide", "serverSide"} {
			if f, ok := x.(map[string]any)[side].(map[string]any); ok {
				delete(f, "callsPerMinute")
				delete(f, "minutes")
				// Sums over nodes add in another order: 34 against 34.00000000000001.
				for k, v := range f {
					if v, ok := v.(float64); ok {
						f[k], _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
					}
				}
			}
		}
	}
	b, _ := json.Marshal(topo)
	return string(b)
}

// The whole of issue 14 at once, on loopback: a VictoriaLogs cluster (two
// storage nodes, one insert/select node), one VictoriaMetrics, three
// SkyTrail nodes with --peers over both (node-0 the ruler), and one
// embedded SkyTrail fed the same traces. Services report to different
// nodes, so traces cross nodes. Every trace is whole by ID from every
// node; search, services with their figures and the service map agree
// with the embedded server, the figures summed over the nodes' labels; a
// SkyTrail node stopped mid-run loses no acknowledged span; a storage node
// stopped fails queries naming it and writes only retryably, and what is
// written once it is back is whole.
func TestClusterWholeSystem(t *testing.T) {
	t.Parallel()
	storage := []*victorialogs.Server{victorialogs.Start(t), victorialogs.Start(t)}
	front := victorialogs.Start(t, "-storageNode="+hostPortOf(storage[0].URL)+","+hostPortOf(storage[1].URL))
	vm := victoriametrics.Start(t)
	c := startCluster(t, 3, func(i int, cfg *server.Config) {
		cfg.Spans = server.RemoteSpans{URL: front.URL, Timeout: 5 * time.Second}
		cfg.RemoteMetrics = server.RemoteMetrics{WriteURL: vm.URL + "/api/v1/write", QueryURL: vm.URL, Node: fmt.Sprint("node-", i), Timeout: 5 * time.Second}
	})
	emb := servertest.Start(t)
	embAPI := "http://" + emb.Addrs["query API"]
	ctx := context.Background()
	testStart := time.Now().Truncate(time.Minute)

	// frontend reports to node 0, payment to node 1; gateway to node 1,
	// stock to node 2. Each also to the embedded server.
	embExp := exporterTo(t, emb.Addrs["OTLP gRPC"])
	frontend := provider(t, exporterTo(t, c.addrs[0]), "frontend")
	frontend.RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(embExp))
	payment := provider(t, exporterTo(t, c.addrs[1]), "payment")
	payment.RegisterSpanProcessor(sdktrace.NewSimpleSpanProcessor(embExp))
	want := map[string]int{} // trace ID -> spans
	for i := range 12 {
		want[checkoutTrace(t, frontend, payment, 100+i).String()] = 3
	}
	tee := func(node *server.Server, service string) *go2sky.Tracer {
		tr, err := go2sky.NewTracer(service, go2sky.WithInstance(service+"-1"),
			go2sky.WithReporter(teeReporter{servertest.Go2skyReporter(t, node), servertest.Go2skyReporter(t, emb)}))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	gateway, stock := tee(c.nodes[1], "gateway"), tee(c.nodes[2], "stock")
	for i := range 6 {
		want[go2skyCall(t, gateway, stock, i)] = 4
	}

	// Every trace whole by ID from every node, and on the embedded server.
	for id, n := range want {
		poll.Until(t, waitTimeout, "trace "+id+" whole on the embedded server", func() bool {
			var tr nativeTrace
			return servertest.GetJSON(t, embAPI+"/api/v1/traces/"+url.PathEscape(id), &tr) == http.StatusOK && len(tr.Spans) == n
		})
		c.wholeOnEvery(id, n)
	}
	if c.forwarded() == 0 {
		t.Error("no span was forwarded between nodes: the traces did not cross nodes")
	}

	// Search agrees with the embedded server, from every node.
	for _, q := range []string{"service=frontend&limit=100", "service=gateway&limit=100", "service=payment&operation=charge&limit=100", "tag=error%3Dtrue&limit=100"} {
		w := traceIDsOf(t, embAPI, q)
		if len(w) == 0 {
			t.Errorf("embedded server: search %s found nothing", q)
		}
		for i := range c.nodes {
			poll.Until(t, waitTimeout, fmt.Sprintf("node %d: search %s as embedded (%d traces)", i, q, len(w)), func() bool {
				return slices.Equal(traceIDsOf(t, c.api(i), q), w)
			})
		}
	}

	// Figures: each node wrote those of the traces it owns, labelled with
	// its name; every node reads the sum, which is the embedded server's.
	for _, s := range append([]*server.Server{emb}, c.nodes...) {
		if err := s.Analyser.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var wantFigures serviceFigures
	poll.Until(t, waitTimeout, "the embedded server's figures of four services", func() bool {
		servertest.GetJSON(t, embAPI+"/api/v1/services?lookback=1h", &wantFigures)
		n := 0
		for _, s := range wantFigures.Services {
			if s.Figures != nil && s.Figures.Calls > 0 {
				n++
			}
		}
		return n == 4
	})
	end := testStart.Add(2 * time.Minute)
	wantTopo := topologyOf(t, embAPI, testStart.Add(-time.Hour), end)
	if !strings.Contains(wantTopo, `"server":"payment"`) || !strings.Contains(wantTopo, `"server":"stock"`) {
		t.Fatalf("embedded server's service map lacks an edge: %s", wantTopo)
	}
	for i := range c.nodes {
		var got serviceFigures
		for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if servertest.GetJSON(t, c.api(i)+"/api/v1/services?lookback=1h", &got); got.String() == wantFigures.String() {
				break
			}
		}
		if got.String() != wantFigures.String() {
			t.Errorf("node %d's services and figures:\n%s\nthe embedded server's:\n%s", i, got, wantFigures)
		}
		var topo string
		for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if topo = topologyOf(t, c.api(i), testStart.Add(-time.Hour), end); topo == wantTopo {
				break
			}
		}
		if topo != wantTopo {
			t.Errorf("node %d's service map:\n%s\nthe embedded server's:\n%s", i, topo, wantTopo)
		}
	}
	// The sum is over nodes: more than one node wrote figures.
	if n := promScalar(t, c.api(0), `count(count by (node) (skytrail_service_calls_total))`); n == "" || n == "1" {
		t.Errorf("nodes that wrote figures: %q, want 2 or 3", n)
	}

	// A SkyTrail node stops under a sending client and starts again: every
	// acknowledged span is found, whole, from every node.
	nodeDownLosesNothing(t, c)

	// A VictoriaLogs storage node stops.
	storageNodeDown(t, c, storage[1])
}

func hostPortOf(u string) string { return strings.TrimPrefix(u, "http://") }

// sendRound sends four traces of two spans in one request to exp and
// returns their IDs, or the export's error.
func sendRound(tr trace.Tracer, rec *tracetest.SpanRecorder, exp interface {
	ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error
}, round int) ([]string, error) {
	for range 4 {
		ctx, root := tr.Start(context.Background(), fmt.Sprintf("round %d", round), trace.WithSpanKind(trace.SpanKindServer))
		_, child := tr.Start(ctx, "work")
		child.End()
		root.End()
	}
	spans := rec.Ended()
	rec.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := exp.ExportSpans(ctx, spans); err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range spans {
		if !s.Parent().IsValid() {
			ids = append(ids, s.SpanContext().TraceID().String())
		}
	}
	return ids, nil
}

func nodeDownLosesNothing(t *testing.T, c *testCluster) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("load")
	exps := []*otlptrace.Exporter{exporterTo(t, c.addrs[0]), exporterTo(t, c.addrs[2])}
	var acked []string
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			ids, err := sendRound(tr, rec, exps[round%2], round)
			if err != nil {
				t.Errorf("round %d: refused with node 1 down: %v", round, err)
				continue
			}
			acked = append(acked, ids...)
			// An SDK's pace, not a flood: each acknowledged trace is
			// looked up on every node afterwards.
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = c.nodes[1].Shutdown(stopCtx) // the go2sky stream would hold a graceful stop open
	cancel()
	time.Sleep(2 * time.Second)
	c.start(1)
	poll.Until(t, waitTimeout, "node 1 back in the routing", func() bool {
		return sumMetric(t, c.api(0), "skytrail_cluster_peers_down") == 0 && sumMetric(t, c.api(2), "skytrail_cluster_peers_down") == 0
	})
	time.Sleep(time.Second)
	close(stop)
	<-done
	rerouted := sumMetric(t, c.api(0), "skytrail_cluster_rerouted_spans_total") + sumMetric(t, c.api(2), "skytrail_cluster_rerouted_spans_total")
	if rerouted == 0 {
		t.Error("no span was rerouted while node 1 was down")
	}
	for _, id := range acked {
		c.wholeOnEvery(id, 2)
	}
	t.Logf("SkyTrail node 1 down and back: %d traces acknowledged, all whole from every node; %.0f spans rerouted", len(acked), rerouted)
}

func storageNodeDown(t *testing.T, c *testCluster, node *victorialogs.Server) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("load")
	exp := exporterTo(t, c.addrs[0])
	before, err := sendRound(tr, rec, exp, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range before {
		poll.Until(t, waitTimeout, "trace "+id+" stored", func() bool { return c.where(id)[2] == 2 })
	}

	node.Stop()
	// Queries fail, naming the node, rather than answer half a trace.
	for i := range c.nodes {
		code, body := getBody(t, c.api(i)+"/api/v1/traces/"+before[0])
		if code != http.StatusServiceUnavailable || !strings.Contains(body, hostPortOf(node.URL)) {
			t.Errorf("node %d: trace lookup with storage node %s down: HTTP %d %s; want 503 naming it", i, hostPortOf(node.URL), code, body)
		}
	}
	code, body := getBody(t, c.api(1)+"/api/v1/traces?service=load&limit=10")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, hostPortOf(node.URL)) {
		t.Errorf("search with storage node down: HTTP %d %s; want 503 naming it", code, body)
	}
	// Writes: acknowledged (the insert node sends the rows to the storage
	// node that is up) or refused retryably; never anything else.
	var during []string
	refused := 0
	for round := 1; round <= 6; round++ {
		ids, err := sendRound(tr, rec, exp, round)
		if err != nil {
			if code := status.Code(err); code != codes.Unavailable && code != codes.ResourceExhausted {
				t.Errorf("write with a storage node down: %v (%s); want success or Unavailable/ResourceExhausted", err, code)
			}
			refused++
			continue
		}
		during = append(during, ids...)
	}
	node.Restart(t)
	var after []string
	for round := 7; round <= 9; round++ {
		ids, err := sendRound(tr, rec, exp, round)
		if err != nil {
			t.Fatalf("write with the storage node back: %v", err)
		}
		after = append(after, ids...)
	}
	for _, id := range slices.Concat(before, during, after) {
		c.wholeOnEvery(id, 2)
	}
	t.Logf("storage node down: %d traces acknowledged meanwhile, %d requests refused retryably; all whole once it was back", len(during), refused)
}
