package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victoriametrics"
)

type serviceFigures struct {
	Services []struct {
		Name    string
		Figures *struct {
			Calls, Errors               uint64
			SuccessRate                 float64
			Apdex                       *float64
			P50Ms, P90Ms, P99Ms, MeanMs float64
		}
	}
}

func (f serviceFigures) String() string {
	var b strings.Builder
	for _, s := range f.Services {
		if s.Figures == nil {
			fmt.Fprintf(&b, "%s: no figures; ", s.Name)
			continue
		}
		g, apdex := s.Figures, "none"
		if g.Apdex != nil {
			apdex = fmt.Sprintf("%.4f", *g.Apdex)
		}
		fmt.Fprintf(&b, "%s: calls %d errors %d p50 %.3f p90 %.3f p99 %.3f mean %.3f apdex %s; ", s.Name, g.Calls, g.Errors, g.P50Ms, g.P90Ms, g.P99Ms, g.MeanMs, apdex)
	}
	return b.String()
}

// promScalar runs an instant query on a server's PromQL API and returns its
// one value ("" when the answer has none).
func promScalar(t *testing.T, api, expr string) string {
	t.Helper()
	var r struct {
		Status string
		Data   struct {
			Result []struct{ Value []any }
		}
	}
	if code := servertest.GetJSON(t, api+"/prometheus/api/v1/query?query="+url.QueryEscape(expr), &r); code != http.StatusOK {
		t.Fatalf("%s: HTTP %d", expr, code)
	}
	if len(r.Data.Result) != 1 {
		return ""
	}
	return fmt.Sprint(r.Data.Result[0].Value[1])
}

// Two SkyTrail nodes writing their figures to one real VictoriaMetrics
// (node-1 and node-2) answer as one embedded server fed the same spans:
// the services list's figures, Grafana's RED queries on the PromQL API and
// the error-rate alert. With VictoriaMetrics down, figures writes fail
// retryably (counted on /metrics) and queries answer 503 with
// Retry-After; the figures of that time are written once it is back.
func TestRemoteMetricStore(t *testing.T) {
	t.Parallel()
	vm := victoriametrics.Start(t)
	remote := func(node string) func(*server.Config) {
		return func(c *server.Config) {
			c.RemoteMetrics = server.RemoteMetrics{WriteURL: vm.URL + "/api/v1/write", QueryURL: vm.URL, Node: node, Timeout: 2 * time.Second}
		}
	}
	// The default error-rate rule over 5 minutes, firing after a second.
	rule := func(c *server.Config) {
		c.Alerting.EvalInterval = 250 * time.Millisecond
		c.Alerting.Thresholds = alerting.Thresholds{ServiceErrorRate: 0.05, MinCallRate: 0.01, Window: 5 * time.Minute, For: time.Second}
	}
	emb := servertest.Start(t, rule)
	n1 := servertest.Start(t, rule, remote("node-1"))
	n2 := servertest.Start(t, rule, remote("node-2"))
	ctx := context.Background()
	send := func(s *server.Server, first, n int) {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		frontend, payment := provider(t, exp, "frontend"), provider(t, exp, "payment")
		for i := range n {
			checkoutTrace(t, frontend, payment, first+i)
		}
		_ = frontend.ForceFlush(ctx)
		_ = payment.ForceFlush(ctx)
	}
	// The embedded server gets every trace; node-1 four, node-2 two.
	send(emb, 1, 6)
	send(n1, 1, 4)
	send(n2, 5, 2)

	api := func(s *server.Server) string { return "http://" + s.Addrs["query API"] }
	var want serviceFigures
	poll.Until(t, waitTimeout, "the embedded server's figures", func() bool {
		servertest.GetJSON(t, api(emb)+"/api/v1/services?lookback=1h", &want)
		return len(want.Services) == 2 && want.Services[0].Figures != nil && want.Services[0].Figures.Calls == 6 &&
			want.Services[1].Figures != nil && want.Services[1].Figures.Calls == 6
	})
	// The nodes' figures reach VictoriaMetrics when written; each node
	// reads the other's from there.
	for _, s := range []*server.Server{emb, n1, n2} {
		if err := s.Analyser.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*server.Server{n1, n2} {
		var got serviceFigures
		poll.Until(t, waitTimeout, "a node's figures to be the embedded server's", func() bool {
			servertest.GetJSON(t, api(s)+"/api/v1/services?lookback=1h", &got)
			return got.String() == want.String()
		})
	}

	// Grafana's RED queries, through SkyTrail's PromQL API.
	for _, expr := range []string{
		`sum(increase(skytrail_service_calls_total{service="payment"}[10m])) > 5.9`,
		`sum(increase(skytrail_service_errors_total{service="payment"}[10m])) > 5.9`,
		`histogram_quantile(0.99, sum by (le) (rate(skytrail_service_duration_seconds_bucket{service="payment"}[10m])))`,
		`histogram_quantile(0.5, sum(rate(skytrail_service_duration_seconds{service="frontend"}[10m])))`,
	} {
		w := promScalar(t, api(emb), expr)
		if w == "" {
			t.Fatalf("embedded server: %s has no answer", expr)
		}
		poll.Until(t, waitTimeout, expr+" = "+w+" on node-1", func() bool {
			got := promScalar(t, api(n1), expr)
			return got != "" && (got == w || strings.HasPrefix(expr, "sum(increase")) // increase extrapolates by each node's own write times
		})
	}
	// The rate of calls is the sum over nodes: node-1's query sees node-2's.
	poll.Until(t, waitTimeout, "node-1 to count both nodes' payment calls", func() bool {
		return promScalar(t, api(n1), `count(count by (node) (skytrail_service_calls_total{service="payment"}))`) == "2"
	})

	// Every payment call failed: the error-rate alert fires on the nodes as
	// on the embedded server.
	for _, s := range []*server.Server{emb, n1} {
		poll.Until(t, waitTimeout, "the payment error-rate alert", func() bool {
			var alerts struct {
				Alerts []alerting.Alert `json:"alerts"`
			}
			servertest.GetJSON(t, api(s)+"/api/v1/alerts", &alerts)
			for _, a := range alerts.Alerts {
				if a.Labels["service"] == "payment" && a.FiredAt != nil && a.ResolvedAt == nil {
					if a.Value != 1 {
						t.Errorf("payment's error rate in the alert = %v, want 1", a.Value)
					}
					return true
				}
			}
			return false
		})
	}

	// VictoriaMetrics down.
	vm.Stop()
	send(n1, 100, 3)
	if err := n1.Analyser.Flush(ctx); err == nil || !strings.Contains(err.Error(), "metric storage unavailable") {
		t.Errorf("writing figures with VictoriaMetrics down: %v, want a retryable failure", err)
	}
	for _, path := range []string{"/api/v1/services?lookback=1h", "/prometheus/api/v1/query?query=" + url.QueryEscape(`sum(skytrail_service_calls_total)`)} {
		resp, err := http.Get(api(n1) + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s with VictoriaMetrics down: HTTP %d (Retry-After %q) %s; want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	resp, err := http.Get(api(n1) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `skytrail_metricstore_remote_failures_total{op="write"}`) ||
		strings.Contains(string(metrics), `skytrail_metricstore_remote_failures_total{op="write"} 0`) {
		t.Errorf("/metrics does not count the failed writes")
	}

	// Back: the minutes held meanwhile are written; node-1 and node-2 now
	// count 4+3 and 2 payment calls.
	vm.Restart(t)
	if err := n1.Analyser.Flush(ctx); err != nil {
		t.Fatalf("writing figures once VictoriaMetrics is back: %v", err)
	}
	poll.Until(t, waitTimeout, "node-2 to see the 9 payment calls", func() bool {
		var got serviceFigures
		servertest.GetJSON(t, api(n2)+"/api/v1/services?lookback=1h", &got)
		for _, s := range got.Services {
			if s.Name == "payment" && s.Figures != nil {
				return s.Figures.Calls == 9
			}
		}
		return false
	})
}
