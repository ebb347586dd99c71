package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

type hookMessage struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Alerts  []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	} `json:"alerts"`
}

// hookServer is a webhook receiver on 127.0.0.1 keeping what it is sent.
func hookServer(t *testing.T) (*httptest.Server, func() []hookMessage) {
	var mu sync.Mutex
	var got []hookMessage
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m hookMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hookMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]hookMessage(nil), got...)
	}
}

// writeWebhookRoute writes a notification configuration sending every
// alert, firing and resolved, to a webhook at url, grouped by alert and
// service with short waits.
func writeWebhookRoute(t *testing.T, dir, url string) string {
	t.Helper()
	file := filepath.Join(dir, "notify.yml")
	if err := os.WriteFile(file, []byte(`route:
  receiver: team
  group_by: [alertname, service]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs:
      - url: `+url+`
        send_resolved: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// quickErrorRateRule is the default error-rate rule over the live
// counters with a 10 s window, evaluated four times a second: failures
// count as soon as they arrive, and leave the window, resolving the
// alert, 10 s later. It fires after 3 s, by when the failed spans are
// searchable (a second after they arrive), so the first notification
// carries an example trace, as with the default for: 2m.
func quickErrorRateRule(c *server.Config) {
	c.Alerting.ExternalURL = "http://skytrail.test"
	c.Alerting.EvalInterval = 250 * time.Millisecond
	c.Alerting.Thresholds = alerting.Thresholds{ServiceErrorRate: 0.05, MinCallRate: 0.01, Window: 10 * time.Second, For: 3 * time.Second}
}

// Failing calls sent with the OpenTelemetry SDK make the default error-rate
// rule fire: a real webhook receives the firing notification, with a link
// to one of the failed traces, then the resolved one once the failures
// leave the rule's window.
func TestErrorRateAlertReachesWebhook(t *testing.T) {
	t.Parallel()
	hook, messages := hookServer(t)
	dir := t.TempDir()
	notify := writeWebhookRoute(t, dir, hook.URL)

	s := servertest.StartIn(t, filepath.Join(dir, "data"), quickErrorRateRule, func(c *server.Config) { c.Alerting.NotifyConfig = notify })

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp, "orders")
	failed := map[string]bool{}
	start := time.Now().Add(-10 * time.Millisecond)
	for i := range 10 {
		_, span := tp.Tracer("orders").Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(time.Duration(i)*time.Millisecond)))
		if i%2 == 0 {
			span.SetStatus(codes.Error, "out of stock")
			failed[span.SpanContext().TraceID().String()] = true
		}
		span.End(trace.WithTimestamp(start.Add(time.Duration(i)*time.Millisecond + 20*time.Millisecond)))
	}
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	find := func(status string) (hookMessage, bool) {
		for _, m := range messages() {
			if m.Status == status && len(m.Alerts) == 1 && m.Alerts[0].Labels["alertname"] == alerting.AlertServiceErrorRate {
				return m, true
			}
		}
		return hookMessage{}, false
	}
	var firing, resolved hookMessage
	poll.Until(t, 25*time.Second, "the firing notification", func() bool {
		var ok bool
		firing, ok = find("firing")
		return ok
	})
	fa := firing.Alerts[0]
	if fa.Labels["service"] != "orders" || fa.Labels["severity"] != "critical" || firing.Version != "4" {
		t.Fatalf("firing: %+v", firing)
	}
	if id := fa.Annotations[alerting.AnnotationExampleTraceID]; !failed[id] {
		t.Errorf("example trace %q is not one of the failed traces %v (annotations %v)", id, failed, fa.Annotations)
	}
	if u := fa.Annotations[alerting.AnnotationTracesURL]; !strings.HasPrefix(u, "http://skytrail.test/traces?") || !strings.Contains(u, "errors=true") || !strings.Contains(u, "service=orders") {
		t.Errorf("traces link %q", u)
	}
	if !strings.Contains(fa.Annotations["description"], "50%") {
		t.Errorf("description %q does not give the error rate", fa.Annotations["description"])
	}
	var alerts struct {
		Alerts []alerting.Alert `json:"alerts"`
	}
	servertest.GetJSON(t, "http://"+s.Addrs["query API"]+"/api/v1/alerts", &alerts)
	if len(alerts.Alerts) == 0 || alerts.Alerts[0].Labels["service"] != "orders" {
		t.Errorf("/api/v1/alerts: %+v", alerts)
	}

	poll.Until(t, 25*time.Second, "the resolved notification", func() bool {
		var ok bool
		resolved, ok = find("resolved")
		return ok
	})
	if ra := resolved.Alerts[0]; ra.Fingerprint != fa.Fingerprint || !ra.StartsAt.Equal(fa.StartsAt) {
		t.Errorf("resolved %+v is not the alert that fired %+v", ra, fa)
	}
}

// The alerting API: alerts, rules with health, silences over HTTP, the
// Prometheus-compatible rules and alerts, and /-/reload refusing a bad
// rule file while keeping the rules that run.
func TestAlertingAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	write := func(content string) {
		if err := os.WriteFile(rules, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`groups:
  - name: api
    rules:
      - alert: Always
        expr: label_replace(vector(1), "service", "api-test", "", "")
        labels:
          severity: warning
`)
	s := servertest.StartIn(t, filepath.Join(dir, "data"), func(c *server.Config) {
		c.Alerting.RuleFiles = []string{rules}
		c.Alerting.EvalInterval = 200 * time.Millisecond
	})
	base := "http://" + s.Addrs["query API"]

	var alerts struct {
		Alerts   []alerting.Alert `json:"alerts"`
		Resolved []alerting.Alert `json:"resolved"`
	}
	poll.Until(t, 10*time.Second, "Always firing in /api/v1/alerts", func() bool {
		servertest.GetJSON(t, base+"/api/v1/alerts?state=firing", &alerts)
		return len(alerts.Alerts) == 1 && alerts.Alerts[0].Name == "Always"
	})

	var rulesResp struct {
		Groups []struct {
			Name, File string
			Rules      []struct{ Name, Health, Type string }
		} `json:"groups"`
		Status alerting.Status `json:"status"`
	}
	servertest.GetJSON(t, base+"/api/v1/rules", &rulesResp)
	names := map[string]string{}
	for _, g := range rulesResp.Groups {
		for _, r := range g.Rules {
			names[r.Name] = g.File
		}
	}
	if names["Always"] != rules || names[alerting.AlertServiceErrorRate] != alerting.DefaultRulesFile || !rulesResp.Status.LastReloadSuccessful {
		t.Errorf("/api/v1/rules: %+v", rulesResp)
	}

	// Grafana's view: Prometheus' shapes.
	var prom struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Name  string
				Rules []struct {
					Name, State, Type string
					Alerts            []struct{ State, Value string }
				}
			}
		}
	}
	// The rule's state is read from its group, which may be between two
	// evaluations: wait for the view to agree with /api/v1/alerts.
	ruleFiring := func() bool {
		servertest.GetJSON(t, base+"/prometheus/api/v1/rules?type=alert", &prom)
		for _, g := range prom.Data.Groups {
			for _, r := range g.Rules {
				if r.Name == "Always" && r.State == "firing" && r.Type == "alerting" && len(r.Alerts) == 1 && r.Alerts[0].Value == "1e+00" {
					return prom.Status == "success"
				}
			}
		}
		return false
	}
	poll.Until(t, 5*time.Second, "Always firing in /prometheus/api/v1/rules", ruleFiring)
	var promAlerts struct {
		Data struct {
			Alerts []struct{ Labels map[string]string }
		}
	}
	servertest.GetJSON(t, base+"/prometheus/api/v1/alerts", &promAlerts)
	if len(promAlerts.Data.Alerts) != 1 || promAlerts.Data.Alerts[0].Labels["alertname"] != "Always" {
		t.Errorf("/prometheus/api/v1/alerts: %+v", promAlerts)
	}

	// Silence it for an hour, see it silenced, expire it.
	post := func(path, body string) (int, []byte) {
		resp, err := http.Post(base+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := post("/api/v1/silences", `{"matchers":[{"name":"alertname","value":"Always","isRegex":false}],"duration":"1h","createdBy":"ops","comment":"known"}`)
	var created struct{ SilenceID string }
	if code != http.StatusOK || json.Unmarshal(body, &created) != nil || created.SilenceID == "" {
		t.Fatalf("creating a silence: %d %s", code, body)
	}
	poll.Until(t, 5*time.Second, "Always silenced", func() bool {
		servertest.GetJSON(t, base+"/api/v1/alerts", &alerts)
		return len(alerts.Alerts) == 1 && len(alerts.Alerts[0].SilencedBy) == 1 && alerts.Alerts[0].SilencedBy[0] == created.SilenceID
	})
	var sils struct{ Silences []alerting.Silence }
	servertest.GetJSON(t, base+"/api/v1/silences?state=active", &sils)
	if len(sils.Silences) != 1 || sils.Silences[0].Comment != "known" || (sils.Silences[0].EndsAt.Sub(sils.Silences[0].StartsAt)-time.Hour).Abs() > time.Second {
		t.Errorf("silences: %+v", sils)
	}
	if code, body := post("/api/v1/silences", `{"matchers":[],"duration":"1h","createdBy":"ops"}`); code != http.StatusBadRequest || !strings.Contains(string(body), "matchers") {
		t.Errorf("a silence without matchers: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/api/v1/silences/"+created.SilenceID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("expiring the silence: %v %v", resp, err)
	}
	resp.Body.Close()
	var one alerting.Silence
	servertest.GetJSON(t, base+"/api/v1/silences/"+created.SilenceID, &one)
	if one.Status == nil || one.Status.State != "expired" {
		t.Errorf("the silence after DELETE: %+v", one)
	}

	// A bad rule file on reload: 500 with file and line, the old rules stay.
	write("groups:\n  - name: api\n    rules:\n      - alert: Always\n        expr: vector(1) +\n")
	if code, body := post("/-/reload", ""); code != http.StatusInternalServerError || !strings.Contains(string(body), rules) || !strings.Contains(string(body), "5:") {
		t.Errorf("reload with a bad rule file: %d %s", code, body)
	}
	var st alerting.Status
	servertest.GetJSON(t, base+"/api/v1/alerting/status", &st)
	if st.LastReloadSuccessful || !strings.Contains(st.LastError, rules) {
		t.Errorf("status: %+v", st)
	}
	servertest.GetJSON(t, base+"/api/v1/alerts?state=firing", &alerts)
	if len(alerts.Alerts) != 1 {
		t.Errorf("the old rule stopped after a failed reload: %+v", alerts)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "skytrail_alerting_config_last_reload_successful 0") {
		t.Error("/metrics does not report the failed reload")
	}
	write("groups: []\n")
	if code, body := post("/-/reload", ""); code != http.StatusOK {
		t.Errorf("reload with a good file: %d %s", code, body)
	}
}

// A bad rule file stops the server at start, naming file, line and reason.
func TestBadRuleFileStopsStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(x[5m]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config(filepath.Join(dir, "data"))
	cfg.Alerting.RuleFiles = []string{rules}
	s, err := server.Start(cfg)
	if err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatal("the server started with a bad rule file")
	}
	for _, want := range []string{rules, "5:", "parse error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// Nothing is left listening or locked: the same directory starts.
	cfg.Alerting.RuleFiles = nil
	s, err = server.Start(cfg)
	if err != nil {
		t.Fatalf("start after fixing the rules: %v", err)
	}
	_ = s.Shutdown(context.Background())
}

// An alert that fires before any trace shows its problem (here a rule that
// fires at once, for a service whose failed call arrives later) gets its
// example trace from the background search: /api/v1/alerts shows it
// without searching itself.
func TestLateExampleTraceFoundInBackground(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: late
    rules:
      - alert: LateExample
        expr: label_replace(vector(1), "service", "late", "", "")
        annotations:
          `+alerting.AnnotationTraces+`: errors
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := servertest.StartIn(t, filepath.Join(dir, "data"), func(c *server.Config) {
		c.Alerting.RuleFiles = []string{rules}
		c.Alerting.EvalInterval = 200 * time.Millisecond
	})
	base := "http://" + s.Addrs["query API"]
	example := func() (string, bool) {
		var alerts struct {
			Alerts []alerting.Alert `json:"alerts"`
		}
		servertest.GetJSON(t, base+"/api/v1/alerts?state=firing", &alerts)
		for _, a := range alerts.Alerts {
			if a.Name == "LateExample" {
				return a.Annotations[alerting.AnnotationExampleTraceID], true
			}
		}
		return "", false
	}
	poll.Until(t, 10*time.Second, "LateExample firing", func() bool { _, ok := example(); return ok })
	if id, _ := example(); id != "" {
		t.Fatalf("an example trace %q before any span of the service arrived", id)
	}

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp, "late")
	_, span := tp.Tracer("late").Start(ctx, "GET /late", trace.WithSpanKind(trace.SpanKindServer))
	span.SetStatus(codes.Error, "too late")
	span.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	want := span.SpanContext().TraceID().String()
	// Searched again every 10 s while none is found, by the background loop.
	poll.Until(t, 30*time.Second, "the late failed trace as LateExample's example", func() bool {
		id, _ := example()
		return id == want
	})
}
