package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/cluster"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

// testCluster is three SkyTrail nodes on 127.0.0.1 with --peers naming
// each other's OTLP gRPC ports, node 0 the ruler.
type testCluster struct {
	t     testing.TB
	addrs []string // OTLP gRPC, fixed so a node restarts on its own
	dirs  []string
	peers string
	nodes []*server.Server
	// configure, when set, changes every node's configuration.
	configure func(i int, c *server.Config)
}

func startCluster(t testing.TB, n int, configure func(i int, c *server.Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, configure: configure}
	for range n {
		// A port of its own, known before the nodes start: the peers list
		// names it, and a restarted node binds it again.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs = append(c.addrs, ln.Addr().String())
		_ = ln.Close()
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.peers = strings.Join(c.addrs, ",")
	c.nodes = make([]*server.Server, n)
	for i := range n {
		c.start(i)
	}
	return c
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	c.nodes[i] = servertest.StartIn(c.t, c.dirs[i], func(cfg *server.Config) {
		cfg.OTLPGRPCAddr = c.addrs[i]
		cfg.Cluster = cluster.Config{Peers: c.peers, Refresh: 500 * time.Millisecond, Timeout: 3 * time.Second, Ruler: i == 0}
		if c.configure != nil {
			c.configure(i, cfg)
		}
	})
}

func (c *testCluster) api(i int) string { return "http://" + c.nodes[i].Addrs["query API"] }

// where is, for each node, the spans it holds of traceID (0: none).
func (c *testCluster) where(traceID string) []int {
	out := make([]int, len(c.nodes))
	for i := range c.nodes {
		var tr nativeTrace
		if servertest.GetJSON(c.t, c.api(i)+"/api/v1/traces/"+url.PathEscape(traceID), &tr) == http.StatusOK {
			out[i] = len(tr.Spans)
		}
	}
	return out
}

// wholeOnEvery waits until every node answers traceID with all want
// spans: nodes sharing one span store.
func (c *testCluster) wholeOnEvery(traceID string, want int) {
	c.t.Helper()
	poll.Until(c.t, waitTimeout, "trace "+traceID+" whole on every node", func() bool {
		for _, n := range c.where(traceID) {
			if n != want {
				return false
			}
		}
		return true
	})
}

// forwarded is how many spans the nodes forwarded to their peers.
func (c *testCluster) forwarded() float64 {
	sum := 0.0
	for i := range c.nodes {
		sum += sumMetric(c.t, c.api(i), "skytrail_cluster_forwarded_spans_total")
	}
	return sum
}

// wholeOnOne waits until one node holds all want spans of traceID and
// fails if any other node holds any of them; it returns that node.
func (c *testCluster) wholeOnOne(traceID string, want int) int {
	c.t.Helper()
	var got []int
	owner := -1
	poll.Until(c.t, waitTimeout, "trace "+traceID+" whole on one node", func() bool {
		got, owner = c.where(traceID), -1
		for i, n := range got {
			if n == want {
				owner = i
			}
		}
		return owner >= 0
	})
	for i, n := range got {
		if i != owner && n != 0 {
			c.t.Errorf("trace %s: node %d holds %d spans, node %d all %d: split between nodes", traceID, i, n, owner, want)
		}
	}
	return owner
}

func exporterTo(t *testing.T, addr string) *otlptrace.Exporter {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// Three nodes behind no load balancer at all: each service reports to a
// different node, so every trace's client span arrives at one node and its
// server span at another. Each trace is whole on exactly one node (the
// owner), SkyWalking's own attributes survive the hop between nodes, the
// owner's service map has the call, and no node reports the broken or
// half traces a split would make it see.
func TestClusterRoutesWholeTraces(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	frontend := provider(t, exporterTo(t, c.addrs[0]), "frontend")
	payment := provider(t, exporterTo(t, c.addrs[1]), "payment")
	var otelIDs []string
	for i := range 12 {
		otelIDs = append(otelIDs, checkoutTrace(t, frontend, payment, 5000+i).String())
	}
	gateway, stock := servertest.Go2sky(t, c.nodes[1], "gateway"), servertest.Go2sky(t, c.nodes[2], "stock")
	var swIDs []string
	for i := range 6 {
		swIDs = append(swIDs, go2skyCall(t, gateway, stock, i))
	}

	owners := map[int]bool{}
	for _, id := range otelIDs {
		owners[c.wholeOnOne(id, 3)] = true
	}
	for _, id := range swIDs {
		o := c.wholeOnOne(id, 4)
		owners[o] = true
		var tr nativeTrace
		servertest.GetJSON(t, c.api(o)+"/api/v1/traces/"+url.PathEscape(id), &tr)
		for _, sp := range tr.Spans {
			// Set by the SkyWalking converter on the node the agent reported
			// to, and carried over OTLP to the owner.
			if sp.Attributes["sw.segment_id"] == nil || sp.Attributes["sw.span_id"] == nil {
				t.Errorf("trace %s span %s lost SkyWalking attributes on the way: %v", id, sp.Name, sp.Attributes)
			}
			if sp.Name == "UPDATE stock" && (sp.Attributes["sw.peer"] != "mysql:3306" || sp.Attributes["sw.layer"] != "Database") {
				t.Errorf("exit span attributes = %v", sp.Attributes)
			}
			if sp.Name == "GET /reserve" && sp.Kind == "server" && (sp.Attributes["sw.ref.parent_service"] != "gateway" || sp.Attributes["sw.ref.type"] != "CrossProcess") {
				t.Errorf("entry span's segment reference attributes = %v", sp.Attributes)
			}
		}
	}
	if len(owners) < 2 {
		t.Errorf("18 traces all owned by node(s) %v: routing does not spread", owners)
	}

	end := time.Now().Truncate(time.Minute).Add(2 * time.Minute)
	topology := fmt.Sprintf("/api/v1/topology?start=%s&end=%s", url.QueryEscape(end.Add(-time.Hour).Format(time.RFC3339)), url.QueryEscape(end.Format(time.RFC3339)))
	for o := range owners {
		if err := c.nodes[o].Analyser.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	edges := map[string]bool{}
	for i := range c.nodes {
		var topo struct {
			Edges []struct{ Client, Server string }
		}
		servertest.GetJSON(t, c.api(i)+topology, &topo)
		for _, e := range topo.Edges {
			edges[e.Client+"->"+e.Server] = true
		}
	}
	for _, e := range []string{"frontend->payment", "gateway->stock"} {
		if !edges[e] {
			t.Errorf("no node's service map has %s: %v", e, edges)
		}
	}

	// Every owner judges its traces whole: none is broken, lost its
	// context or has a detached root, as half traces would.
	for o := range owners {
		var rep struct {
			Findings     []struct{ Kind, Service, Peer, Summary string }
			JudgedTraces uint64
		}
		poll.Until(t, waitTimeout, fmt.Sprintf("node %d judging its traces", o), func() bool {
			servertest.GetJSON(t, c.api(o)+"/api/v1/diagnostics", &rep)
			return rep.JudgedTraces > 0
		})
		for _, f := range rep.Findings {
			switch f.Kind {
			case "broken_trace", "lost_propagation", "detached_root":
				t.Errorf("node %d: finding %s (%s): %s", o, f.Kind, f.Service, f.Summary)
			case "uninstrumented_peer":
				if !strings.Contains(f.Peer, "mysql") {
					t.Errorf("node %d: %s calls %s, said uninstrumented: %s", o, f.Service, f.Peer, f.Summary)
				}
			}
		}
	}

	// Only the ruler evaluates; the others say where it is.
	var rules struct{ Groups []any }
	if code := servertest.GetJSON(t, c.api(0)+"/api/v1/rules", &rules); code != http.StatusOK {
		t.Errorf("ruler's rules: HTTP %d", code)
	}
	resp, err := http.Get(c.api(1) + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	_ = jsonDecode(resp.Body, &body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Error, c.addrs[0]) {
		t.Errorf("alerts on a node without --ruler: HTTP %d %q, want 503 naming the ruler %s", resp.StatusCode, body.Error, c.addrs[0])
	}
	if c.nodes[1].Alerting != nil || c.nodes[0].Alerting == nil {
		t.Error("alarm rules must be evaluated on the ruler only")
	}

	// With --ruler-url, a node forwards the alerts API to the ruler. (The
	// go2sky reporter's stream to node 2 would hold a graceful stop open:
	// it is cut after a second, as an operator's stop timeout would.)
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.nodes[2].Shutdown(stopCtx)
	c.configure = func(i int, cfg *server.Config) { cfg.Cluster.RulerURL = c.api(0) }
	c.start(2)
	var viaPeer struct {
		Groups []struct{ Name string }
	}
	if code := servertest.GetJSON(t, c.api(2)+"/api/v1/rules", &viaPeer); code != http.StatusOK || len(viaPeer.Groups) == 0 || len(viaPeer.Groups) != len(rules.Groups) {
		t.Errorf("rules through --ruler-url: HTTP %d, %d groups, the ruler has %d", code, len(viaPeer.Groups), len(rules.Groups))
	}
}

// go2skyCall records gateway -> stock -> mysql with go2sky, the gateway
// and stock reporting to different nodes, and returns the trace ID.
func go2skyCall(t *testing.T, gateway, stock *go2sky.Tracer, i int) string {
	t.Helper()
	headers := map[string]string{}
	entry, ctx, err := gateway.CreateEntrySpan(context.Background(), "GET /buy", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	entry.Tag("order_id", fmt.Sprint(9000+i))
	exit, err := gateway.CreateExitSpan(ctx, "GET /reserve", "stock:8080", func(k, v string) error { headers[k] = v; return nil })
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

// One node of three stops mid-run: clients of the other two keep being
// acknowledged (its traces go to the next node), no acknowledged span is
// lost, and once it is back, a refresh later, it owns its traces again.
func TestClusterNodeDownLosesNothing(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3, nil)
	exps := []*otlptrace.Exporter{exporterTo(t, c.addrs[0]), nil, exporterTo(t, c.addrs[2])}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tp.Tracer("load")

	var (
		mu    sync.Mutex
		acked = map[string]int{} // trace ID -> spans acknowledged
	)
	send := func(round int) {
		// Four traces of two spans per batch, to node 0 or 2 in turn.
		var spans []sdktrace.ReadOnlySpan
		for range 4 {
			ctx, root := tr.Start(context.Background(), fmt.Sprintf("round %d", round), trace.WithSpanKind(trace.SpanKindServer))
			_, child := tr.Start(ctx, "work")
			child.End()
			root.End()
		}
		spans = rec.Ended()
		rec.Reset()
		exp := exps[2*(round%2)]
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := exp.ExportSpans(ctx, spans); err != nil {
			t.Errorf("round %d: export to node %d refused: %v", round, 2*(round%2), err)
			return
		}
		mu.Lock()
		for _, s := range spans {
			acked[s.SpanContext().TraceID().String()]++
		}
		mu.Unlock()
	}
	// One client sends batch after batch, as an SDK does, while node 1
	// stops and starts again under it.
	var rounds atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	var afterRestart []string // traces first acknowledged once node 1 was back
	var restarted atomic.Bool
	go func() {
		defer close(stopped)
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			known := make(map[string]bool, len(acked))
			for id := range acked {
				known[id] = true
			}
			back := restarted.Load()
			mu.Unlock()
			send(round)
			if back {
				mu.Lock()
				for id := range acked {
					if !known[id] {
						afterRestart = append(afterRestart, id)
					}
				}
				mu.Unlock()
			}
			rounds.Add(1)
		}
	}()
	waitRounds := func(n int64) {
		target := rounds.Load() + n
		poll.Until(t, waitTimeout, fmt.Sprint(n, " more batches"), func() bool { return rounds.Load() >= target })
	}
	waitRounds(20)
	if err := c.nodes[1].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitRounds(20)
	rerouted := 0.0
	for _, i := range []int{0, 2} {
		rerouted += sumMetric(t, c.api(i), "skytrail_cluster_rerouted_spans_total")
	}
	if rerouted == 0 {
		t.Error("no span was rerouted while node 1 was down")
	}

	c.start(1)
	// A refresh (500 ms) later, node 1's traces return to it.
	owner := c.addrs[1]
	poll.Until(t, waitTimeout, "node 1 back in the routing", func() bool {
		return sumMetric(t, c.api(0), "skytrail_cluster_peers_down") == 0 && sumMetric(t, c.api(2), "skytrail_cluster_peers_down") == 0
	})
	restarted.Store(true)
	waitRounds(10)
	close(stop)
	<-stopped
	backOnNode1 := 0
	for _, id := range afterRestart {
		if c.nodes[0].Cluster.Owner(mustTraceID(t, id)) == owner {
			if c.wholeOnOne(id, 2) != 1 {
				t.Errorf("trace %s, owned by node 1 after its restart, is not on it", id)
			}
			backOnNode1++
		}
	}
	if backOnNode1 == 0 {
		t.Errorf("none of the %d traces sent after the restart went to node 1", len(afterRestart))
	}

	// Every acknowledged span is found on some node.
	for id, n := range acked {
		var got []int
		poll.Until(t, waitTimeout, "acknowledged trace "+id, func() bool {
			got = c.where(id)
			total := 0
			for _, k := range got {
				total += k
			}
			return total >= n
		})
	}
	t.Logf("%d traces acknowledged, all found; %.0f spans rerouted while node 1 was down; %d of %d traces after its restart owned by it",
		len(acked), rerouted, backOnNode1, len(afterRestart))
}

// sumMetric is the sum of a metric's samples on /metrics, whatever their
// labels.
func sumMetric(t testing.TB, api, name string) float64 {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func mustTraceID(t *testing.T, hexID string) pcommon.TraceID {
	t.Helper()
	id, err := trace.TraceIDFromHex(hexID)
	if err != nil {
		t.Fatal(err)
	}
	return pcommon.TraceID(id)
}

// Three nodes over one real VictoriaLogs (--spans-url): spans still go to
// the node owning their trace, so its analysis sees the trace whole, and
// every node answers every trace whole, once, from the shared store.
func TestClusterOverVictoriaLogs(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	c := startCluster(t, 3, func(_ int, cfg *server.Config) {
		cfg.Spans = server.RemoteSpans{URL: vl.URL, Timeout: 5 * time.Second}
	})
	frontend := provider(t, exporterTo(t, c.addrs[0]), "frontend")
	payment := provider(t, exporterTo(t, c.addrs[1]), "payment")
	want := map[string]int{}
	for i := range 6 {
		want[checkoutTrace(t, frontend, payment, 7000+i).String()] = 3
	}
	gateway, stock := servertest.Go2sky(t, c.nodes[1], "gateway"), servertest.Go2sky(t, c.nodes[2], "stock")
	for i := range 3 {
		want[go2skyCall(t, gateway, stock, i)] = 4
	}
	for id, n := range want {
		c.wholeOnEvery(id, n)
	}
	if c.forwarded() == 0 {
		t.Error("no span was forwarded: every node stored what it received")
	}
	edges := map[string]bool{}
	end := time.Now().Truncate(time.Minute).Add(2 * time.Minute)
	topology := fmt.Sprintf("/api/v1/topology?start=%s&end=%s", url.QueryEscape(end.Add(-time.Hour).Format(time.RFC3339)), url.QueryEscape(end.Format(time.RFC3339)))
	for i := range c.nodes {
		if err := c.nodes[i].Analyser.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		var topo struct {
			Edges []struct{ Client, Server string }
		}
		servertest.GetJSON(t, c.api(i)+topology, &topo)
		for _, e := range topo.Edges {
			edges[e.Client+"->"+e.Server] = true
		}
	}
	if !edges["frontend->payment"] || !edges["gateway->stock"] {
		t.Errorf("service map edges over the nodes: %v", edges)
	}
}
