package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// lockedBuffer collects the demo's output, written from the traffic's
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig is servertest's configuration with the demo's warnings in the
// test's output.
func testConfig(t *testing.T) server.Config {
	cfg := servertest.Config(t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// waitTimeout bounds each wait for the demo's traffic to show: generous,
// for a busy CI machine running tests in parallel.
const waitTimeout = 30 * time.Second

func startDemo(t *testing.T) (*Demo, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	d, err := Start(t.Context(), Config{Server: testConfig(t), RPS: 40, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	return d, out
}

// The demo, run for a few seconds, shows in the query API the four
// services, checkouts as single traces through OpenTelemetry and go2sky
// services with every parent present, the queue joining the trace, failed
// checkouts, the deliberate propagation bug, and the service map; then it
// stops cleanly.
func TestDemo(t *testing.T) {
	t.Parallel()
	d, out := startDemo(t)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = d.Stop(ctx)
		}
	})
	api := "http://" + d.Server.Addrs["query API"]

	var services struct{ Services []struct{ Name string } }
	poll.Until(t, waitTimeout, "the four services", func() bool {
		servertest.GetJSON(t, api+"/api/v1/services", &services)
		var names []string
		for _, s := range services.Services {
			names = append(names, s.Name)
		}
		return containsAll(names, "frontend", "order", "inventory", "payment")
	})

	// A whole checkout: frontend's root, order, inventory, payment (go2sky),
	// and inventory's consumer, which ends last.
	var checkout trace
	poll.Until(t, waitTimeout, "a checkout trace through all four services and the queue", func() bool {
		for _, sum := range search(t, api, url.Values{"service": {"payment"}, "lookback": {"5m"}, "limit": {"50"}}) {
			if !containsAll(sum.Services, "frontend", "order", "inventory", "payment") || sum.Error {
				continue
			}
			checkout = trace{} // decoding into a used value would merge the two
			servertest.GetJSON(t, api+"/api/v1/traces/"+sum.TraceID, &checkout)
			if checkout.find("inventory", "process orders") != nil && checkout.find("frontend", "GET /checkout") != nil {
				return true
			}
		}
		return false
	})
	sdks := map[string]string{}
	for _, sp := range checkout.Spans {
		sdks[sp.Service], _ = sp.Resource["telemetry.sdk.name"].(string)
	}
	for service, want := range map[string]string{"frontend": "opentelemetry", "order": "opentelemetry", "inventory": "opentelemetry", "payment": "skywalking"} {
		if sdks[service] != want {
			t.Errorf("%s's spans came from telemetry.sdk.name %q, want %q", service, sdks[service], want)
		}
	}
	byID := map[string]span{}
	for _, sp := range checkout.Spans {
		byID[sp.SpanID] = sp
	}
	for _, sp := range checkout.Spans {
		if sp.ParentSpanID == "" {
			if sp.Service != "frontend" || sp.Name != "GET /checkout" {
				t.Errorf("a second root in the checkout: %s %q", sp.Service, sp.Name)
			}
			continue
		}
		if _, ok := byID[sp.ParentSpanID]; !ok {
			t.Errorf("%s %q: parent %s is not in the trace", sp.Service, sp.Name, sp.ParentSpanID)
		}
	}
	if charge := checkout.find("payment", "POST /charges"); charge == nil {
		t.Error("no payment entry span POST /charges")
	} else if parent := byID[charge.ParentSpanID]; parent.Service != "order" || parent.Kind != "client" {
		t.Errorf("payment's entry span's parent is %s %s %q, want order's client span", parent.Service, parent.Kind, parent.Name)
	} else if charge.Attributes["order_id"] == nil {
		t.Errorf("payment's entry span has no order_id: %v", charge.Attributes)
	}
	if consumer := checkout.find("inventory", "process orders"); consumer != nil {
		if parent := byID[consumer.ParentSpanID]; parent.Service != "order" || parent.Kind != "producer" {
			t.Errorf("the consumer's parent is %s %s %q, want order's producer span", parent.Service, parent.Kind, parent.Name)
		}
	}
	root := checkout.find("frontend", "GET /checkout")
	orderID, _ := root.Attributes["order_id"].(string)
	if !strings.HasPrefix(orderID, "ord-") || root.Attributes["user_id"] == nil {
		t.Errorf("frontend's span lacks order_id or user_id: %v", root.Attributes)
	} else {
		// The checkout, and its confirmation e-mail, a trace of its own
		// because of the deliberate bug.
		found := search(t, api, url.Values{"tag": {"order_id=" + orderID}, "lookback": {"5m"}})
		ids := []string{}
		for _, sum := range found {
			ids = append(ids, sum.TraceID)
		}
		if !slices.Contains(ids, checkout.TraceID) {
			t.Errorf("search by order_id=%s found %v, not the checkout %s", orderID, found, checkout.TraceID)
		}
		// Its log lines: order's over OTLP, payment's through the
		// Elasticsearch bulk API, all tied to the checkout's trace.
		var logs struct {
			Logs []struct{ Service, Body, TraceID string }
		}
		poll.Until(t, waitTimeout, "the order's log lines from order and payment", func() bool {
			servertest.GetJSON(t, api+"/api/v1/logs?lookback=5m&field=order_id:"+orderID, &logs)
			var services []string
			for _, l := range logs.Logs {
				services = append(services, l.Service)
			}
			return containsAll(services, "order", "payment")
		})
		for _, l := range logs.Logs {
			if l.TraceID != checkout.TraceID {
				t.Errorf("%s's line %q has trace %q, want the checkout's %s", l.Service, l.Body, l.TraceID, checkout.TraceID)
			}
		}
	}

	// Product pages are one endpoint, named by route, however many products.
	poll.Until(t, waitTimeout, "the frontend's endpoints", func() bool {
		var ops struct{ Operations []struct{ Name string } }
		servertest.GetJSON(t, api+"/api/v1/services/frontend/operations", &ops)
		var names []string
		for _, op := range ops.Operations {
			names = append(names, op.Name)
		}
		return containsAll(names, "GET /products/{item}", "GET /checkout")
	})

	poll.Until(t, waitTimeout, "a failed checkout", func() bool {
		return len(search(t, api, url.Values{"service": {"frontend"}, "errors": {"true"}, "lookback": {"5m"}})) > 0
	})
	// The deliberate bug: confirmation e-mails are traces of their own.
	poll.Until(t, waitTimeout, "confirmation e-mails as traces of their own", func() bool {
		found := search(t, api, url.Values{"service": {"order"}, "operation": {"send confirmation email"}, "lookback": {"5m"}})
		return len(found) > 0 && found[0].RootService == "order" && found[0].RootOperation == "send confirmation email" && found[0].SpanCount == 2
	})

	// The service map: the analysis writes figures per minute, so make it
	// write the open minute now.
	if err := d.Server.Analyser.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var topo struct {
		Edges []struct{ Client, Server string }
	}
	if code := servertest.GetJSON(t, api+"/api/v1/topology", &topo); code == http.StatusNotFound {
		t.Log("no /api/v1/topology on this server: service map not checked")
	} else {
		var edges []string
		for _, e := range topo.Edges {
			edges = append(edges, e.Client+"->"+e.Server)
		}
		t.Logf("service map: %v", edges)
		if !containsAll(edges, "frontend->order", "frontend->inventory", "order->inventory", "order->payment", "order->mysql:3306", "payment->mysql:3306", "frontend->redis:6379") {
			t.Errorf("service map edges %v lack some of the shop's", edges)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	stopped = true
	if err := d.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	sent, failed := d.stats.totals()
	if sent == 0 || failed*5 > sent {
		t.Errorf("%d checkouts sent, %d failed: want most to succeed", sent, failed)
	}
	if !strings.Contains(out.String(), "First order placed, ord-") {
		t.Errorf("the output does not point at the first order:\n%s", out)
	}
}

type summary struct {
	TraceID       string
	RootService   string
	RootOperation string
	SpanCount     int
	Services      []string
	Error         bool
}

type span struct {
	SpanID, ParentSpanID, Name, Kind, Service string
	Attributes, Resource                      map[string]any
}

type trace struct {
	TraceID string
	Spans   []span
}

func (tr *trace) find(service, name string) *span {
	for i, sp := range tr.Spans {
		if sp.Service == service && sp.Name == name {
			return &tr.Spans[i]
		}
	}
	return nil
}

func search(t *testing.T, api string, q url.Values) []summary {
	t.Helper()
	var res struct{ Traces []summary }
	if code := servertest.GetJSON(t, api+"/api/v1/traces?"+q.Encode(), &res); code != http.StatusOK {
		t.Fatalf("search %v: status %d", q, code)
	}
	return res.Traces
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// The demo refuses to start without the listeners its services report to.
func TestDemoNeedsItsReceivers(t *testing.T) {
	t.Parallel()
	cfg := server.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.SWGRPCAddr = ""
	_, err := Start(t.Context(), Config{Server: cfg})
	if err == nil || !strings.Contains(err.Error(), "--sw-grpc") {
		t.Fatalf("got %v, want an error naming --sw-grpc", err)
	}
}

// Run prints where to look, points at the first order, and on Ctrl-C (its
// context ending) stops everything and sums the traffic up.
func TestRunUntilInterrupted(t *testing.T) {
	t.Parallel()
	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Server: testConfig(t), RPS: 40, Out: out}) }()
	poll.Until(t, waitTimeout, "the first order", func() bool {
		return strings.Contains(out.String(), "First order placed")
	})
	interrupt()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of the interrupt")
	}
	for _, want := range []string{"/api/v1/services", "/api/v1/topology", "operation=send+confirmation+email", "tag=order_id=ord-", "Ctrl-C", "Customers sent "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// TestREADMEExamples runs the README's examples against the demo, as
// written (the port aside): each answers 200 with something in it.
func TestREADMEExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- demo-examples -->")
	block, _, ok2 := strings.Cut(block, "<!-- /demo-examples -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no <!-- demo-examples --> block")
	}
	var urls []string
	for _, line := range strings.Split(block, "\n") {
		if rest, found := strings.CutPrefix(line, "curl -s '"); found {
			u, _, _ := strings.Cut(rest, "'")
			urls = append(urls, u)
		}
	}
	if len(urls) < 5 {
		t.Fatalf("the README's demo block has %d curl lines", len(urls))
	}
	d, _ := startDemo(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	api := d.Server.Addrs["query API"]
	for _, u := range urls {
		u := "http://" + strings.Replace(u, "localhost:8080", api, 1)
		// Something in it: a list that is not empty, or a finding that says so.
		poll.Until(t, 2*waitTimeout, u, func() bool {
			resp, err := http.Get(u)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var body map[string]any
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
				return false
			}
			for _, k := range []string{"services", "traces", "spans", "findings"} {
				if list, ok := body[k].([]any); ok {
					return len(list) > 0
				}
			}
			_, ok := body["listeners"]
			return ok
		})
	}
	var diag struct{ Findings []struct{ Summary string } }
	servertest.GetJSON(t, "http://"+api+"/api/v1/diagnostics?service=ordr", &diag)
	if len(diag.Findings) == 0 || diag.Findings[0].Summary != "SkyTrail has never received a span from ordr; did you mean order?" {
		t.Errorf("the README's typo example: %+v", diag.Findings)
	}
}
