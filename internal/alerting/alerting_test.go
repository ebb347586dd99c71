package alerting

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skytrail/skytrail/internal/testutil/poll"
)

const signalRules = `groups:
  - name: signals
    rules:
      - alert: ErrorRate
        expr: error_signal > 0
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }} fails"
      - alert: Latency
        expr: latency_signal > 0
        labels:
          severity: warning
`

// alertState is the state of alert name for service, "" when inactive.
func alertState(a *Alerting, name, service string) (Alert, bool) {
	active, _ := a.Alerts(context.Background())
	for _, al := range active {
		if al.Name == name && al.Labels["service"] == service {
			return al, true
		}
	}
	return Alert{}, false
}

// A firing alert reaches a real webhook in Alertmanager's v4 payload, then
// its resolution does, under the same identity; the rule's ALERTS series
// is in the TSDB.
func TestWebhookGetsFiringThenResolved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir+"/metrics")
	t.Cleanup(func() { _ = store.Close() })
	hook := newWebhook(t)
	ding, dingSrv := newRobot(t, "dingtalk", "SEC1", `{"errcode":0}`)
	cfg := testConfig(dir, writeFile(t, dir, "rules.yml", signalRules))
	cfg.NotifyConfig = writeFile(t, dir, "notify.yml", notifyConfigFor(hook.srv.URL, "")+"    dingtalk_configs:\n      - url: "+dingSrv.URL+"\n        secret: SEC1\n")
	a := start(t, cfg, store)
	g := writeGauges(t, store)
	g.set(1, "error_signal", "service", "checkout")

	firing := hook.waitMessage(t, "a firing notification", func(m webhookMessage) bool { return m.Status == "firing" })
	if firing.Version != "4" || len(firing.Alerts) != 1 || firing.Alerts[0].Labels["alertname"] != "ErrorRate" || firing.Alerts[0].Labels["service"] != "checkout" {
		t.Fatalf("firing message: %+v", firing)
	}
	fa := firing.Alerts[0]
	if !strings.HasPrefix(fa.Annotations[AnnotationServiceURL], "http://skytrail.test:8080/services/checkout?") || fa.Annotations["summary"] != "checkout fails" {
		t.Errorf("annotations: %v", fa.Annotations)
	}
	if !strings.HasPrefix(fa.GeneratorURL, "http://skytrail.test:8080/") || firing.ExternalURL != "http://skytrail.test:8080" {
		t.Errorf("links: generator %q, external %q", fa.GeneratorURL, firing.ExternalURL)
	}
	// The rules engine notifies before it appends the evaluation's ALERTS
	// series: the series follows the message by up to one evaluation.
	poll.Until(t, 5*time.Second, "ALERTS in the TSDB", func() bool {
		v, err := store.InstantQuery(context.Background(), `ALERTS{alertname="ErrorRate",alertstate="firing",service="checkout"}`, time.Now())
		return err == nil && len(v) == 1
	})

	g.set(0, "error_signal", "service", "checkout")
	resolved := hook.waitMessage(t, "a resolved notification", func(m webhookMessage) bool { return m.Status == "resolved" })
	ra := resolved.Alerts[0]
	if ra.Fingerprint != fa.Fingerprint || !ra.StartsAt.Equal(fa.StartsAt) || resolved.GroupKey != firing.GroupKey {
		t.Errorf("resolved %+v is not the firing alert %+v", ra, fa)
	}
	if ra.EndsAt.Before(ra.StartsAt) || ra.EndsAt.After(time.Now()) {
		t.Errorf("resolved at %v", ra.EndsAt)
	}
	poll.Until(t, 5*time.Second, "DingTalk's firing and resolved messages", func() bool {
		ding.mu.Lock()
		defer ding.mu.Unlock()
		return len(ding.bodies) >= 2
	})
	ding.mu.Lock()
	if len(ding.bad) != 0 {
		t.Errorf("DingTalk signatures: %v", ding.bad)
	}
	ding.mu.Unlock()
	_, history := a.Alerts(context.Background())
	if len(history) != 1 || history[0].State != "resolved" || history[0].ResolvedAt == nil {
		t.Errorf("history: %+v", history)
	}
}

// Alerts of two services for the same rule, grouped by alertname, arrive
// in one message; a critical alert mutes the warning of its service
// (inhibition) and not another service's; a silence mutes an alert until
// it is expired.
func TestGroupingInhibitionSilence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir+"/metrics")
	t.Cleanup(func() { _ = store.Close() })
	hook := newWebhook(t)
	cfg := testConfig(dir, writeFile(t, dir, "rules.yml", signalRules))
	cfg.NotifyConfig = writeFile(t, dir, "notify.yml", strings.Replace(notifyConfigFor(hook.srv.URL, `inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [service]
`), "group_by: [alertname, service]", "group_by: [alertname]", 1))
	a := start(t, cfg, store)
	g := writeGauges(t, store)

	// Grouping: two services' ErrorRate in one message.
	g.set(1, "error_signal", "service", "a")
	g.set(1, "error_signal", "service", "b")
	hook.waitMessage(t, "one message with both services' ErrorRate", func(m webhookMessage) bool {
		return m.GroupLabels["alertname"] == "ErrorRate" && len(m.Alerts) == 2
	})

	// Inhibition: a's Latency is muted by a's ErrorRate; c's is not.
	g.set(1, "latency_signal", "service", "a")
	g.set(1, "latency_signal", "service", "c")
	latency := hook.waitMessage(t, "c's Latency", func(m webhookMessage) bool { return m.GroupLabels["alertname"] == "Latency" })
	poll.Until(t, 5*time.Second, "a's Latency shown as inhibited", func() bool {
		al, ok := alertState(a, "Latency", "a")
		return ok && al.State == "firing" && al.Inhibited
	})
	time.Sleep(time.Second) // several group intervals: a's Latency would have been sent by now
	for _, m := range hook.messages() {
		for _, al := range m.Alerts {
			if al.Labels["alertname"] == "Latency" && al.Labels["service"] == "a" {
				t.Fatalf("a's Latency was sent though a's ErrorRate is critical: %+v", m)
			}
		}
	}
	if len(latency.Alerts) != 1 || latency.Alerts[0].Labels["service"] != "c" {
		t.Errorf("latency message: %+v", latency)
	}

	// Silence: d's ErrorRate is silenced; once the silence expires it is sent.
	id, err := a.SetSilence(context.Background(), Silence{Matchers: []Matcher{{Name: "service", Value: "d"}}, EndsAt: time.Now().Add(time.Hour), CreatedBy: "test", Comment: "deploying d"})
	if err != nil {
		t.Fatal(err)
	}
	g.set(1, "error_signal", "service", "d")
	poll.Until(t, 5*time.Second, "d's ErrorRate shown as silenced", func() bool {
		al, ok := alertState(a, "ErrorRate", "d")
		return ok && al.State == "firing" && len(al.SilencedBy) == 1 && al.SilencedBy[0] == id
	})
	time.Sleep(time.Second)
	for _, m := range hook.messages() {
		for _, al := range m.Alerts {
			if al.Labels["service"] == "d" {
				t.Fatalf("d's alert was sent though silenced: %+v", m)
			}
		}
	}
	sils, err := a.Silences(context.Background(), "active")
	if err != nil || len(sils) != 1 || sils[0].ID != id || sils[0].Comment != "deploying d" {
		t.Fatalf("silences: %+v, %v", sils, err)
	}
	if err := a.ExpireSilence(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	hook.waitMessage(t, "d's ErrorRate once the silence expired", func(m webhookMessage) bool {
		for _, al := range m.Alerts {
			if al.Labels["service"] == "d" && al.Status == "firing" {
				return true
			}
		}
		return false
	})
	if err := a.ExpireSilence(context.Background(), "no-such-id"); !errors.Is(err, ErrSilenceNotFound) {
		t.Errorf("expiring an unknown silence: %v", err)
	}
	if _, err := a.SetSilence(context.Background(), Silence{Matchers: []Matcher{{Name: "service", Value: ""}}, EndsAt: time.Now().Add(time.Hour), CreatedBy: "x"}); err == nil {
		t.Error("a silence matching every alert was accepted")
	}
}

// A restart keeps an alert's state: an alert that was firing fires again
// at once, with its original activation time, instead of waiting out its
// for: again; and a silence survives too.
func TestRestartKeepsAlertState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yml", `groups:
  - name: slow
    rules:
      - alert: Held
        expr: held_signal > 0
        for: 2s
`)
	store := openStore(t, dir+"/metrics")
	a := start(t, testConfig(dir, rules), store)
	g := writeGauges(t, store)
	g.set(1, "held_signal", "service", "a")
	var before Alert
	poll.Until(t, 10*time.Second, "Held firing", func() bool {
		var ok bool
		before, ok = alertState(a, "Held", "a")
		return ok && before.State == "firing"
	})
	sil, err := a.SetSilence(context.Background(), Silence{Matchers: []Matcher{{Name: "alertname", Value: "Held"}}, EndsAt: time.Now().Add(time.Hour), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	stopAlerting(a)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store = openStore(t, dir+"/metrics")
	t.Cleanup(func() { _ = store.Close() })
	g2 := writeGauges(t, store)
	g2.set(1, "held_signal", "service", "a")
	cfg := testConfig(dir, rules)
	cfg.Registerer = prometheus.NewRegistry()
	restarted := time.Now()
	a = start(t, cfg, store)
	var after Alert
	poll.Until(t, 10*time.Second, "Held firing after the restart", func() bool {
		var ok bool
		after, ok = alertState(a, "Held", "a")
		return ok && after.State == "firing"
	})
	if since := time.Since(restarted); since >= 2*time.Second {
		t.Errorf("Held fired %v after the restart: its for: was waited out again", since)
	}
	// ALERTS_FOR_STATE keeps whole seconds.
	if !after.ActiveAt.Equal(before.ActiveAt.Truncate(time.Second)) {
		t.Errorf("active since %v after the restart, %v before", after.ActiveAt, before.ActiveAt)
	}
	if s, err := a.GetSilence(context.Background(), sil); err != nil || s.Status.State != "active" {
		t.Errorf("the silence after the restart: %+v, %v", s, err)
	}
}

// A bad rule file stops the start with file, line and reason; on reload it
// keeps the old rules, and says so in Status, the log and a metric.
func TestBadRuleFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir+"/metrics")
	t.Cleanup(func() { _ = store.Close() })
	bad := `groups:
  - name: broken
    rules:
      - alert: Broken
        expr: sum(rate(x[5m]) by
`
	badFile := writeFile(t, dir, "bad.yml", bad)
	_, err := New(testConfig(dir, badFile), store)
	var rfe *RuleFileError
	if !errors.As(err, &rfe) {
		t.Fatalf("start with a bad rule file: %v", err)
	}
	for _, want := range []string{badFile, "5:15", `"Broken"`, "parse error"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if _, err := New(testConfig(dir, dir+"/missing.yml"), store); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("start with a missing rule file: %v", err)
	}
	yamlErr := writeFile(t, dir, "yaml.yml", "groups:\n  - name: x\n    rules:\n      - alert: A\n        exprr: up\n")
	if _, err := New(testConfig(dir, yamlErr), store); err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "exprr") {
		t.Errorf("start with an unknown field: %v", err)
	}

	good := writeFile(t, dir, "rules.yml", signalRules)
	cfg := testConfig(dir, dir+"/*.rules.yml", good)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	a := start(t, cfg, store)
	if n := countRules(a); n != 2 {
		t.Fatalf("%d rules loaded, want 2", n)
	}
	writeFile(t, dir, "extra.rules.yml", bad)
	err = a.Reload()
	if err == nil || !strings.Contains(err.Error(), "extra.rules.yml") || !strings.Contains(err.Error(), "5:15") {
		t.Fatalf("reload with a bad file: %v", err)
	}
	st := a.Status()
	if st.LastReloadSuccessful || !strings.Contains(st.LastError, "extra.rules.yml") {
		t.Errorf("status after a failed reload: %+v", st)
	}
	if v := testutil.ToFloat64(a.reloadOK); v != 0 {
		t.Errorf("skytrail_alerting_config_last_reload_successful = %v", v)
	}
	if n := countRules(a); n != 2 {
		t.Errorf("%d rules after a failed reload, want the old 2", n)
	}
	// A bad notification configuration is refused the same way.
	writeFile(t, dir, "extra.rules.yml", "groups: []\n")
	cfg2 := cfg
	_ = cfg2
	a.cfg.NotifyConfig = writeFile(t, dir, "notify.yml", "route:\n  receiver: nobody\nreceivers:\n  - name: hook\n")
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("reload with a route to an undefined receiver: %v", err)
	}
	a.cfg.NotifyConfig = ""
	if err := a.Reload(); err != nil {
		t.Fatalf("reload after fixing: %v", err)
	}
	if st := a.Status(); !st.LastReloadSuccessful || len(st.RuleFiles) != 2 {
		t.Errorf("status after a good reload: %+v", st)
	}
}

func countRules(a *Alerting) int {
	n := 0
	for _, g := range a.RuleGroups() {
		n += len(g.Rules)
	}
	return n
}

// A rule whose expression gives more series than the cap fails its
// evaluation with a clear error, writes nothing, and is counted.
func TestSeriesCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, dir+"/metrics")
	t.Cleanup(func() { _ = store.Close() })
	cfg := testConfig(dir, writeFile(t, dir, "rules.yml", `groups:
  - name: wide
    rules:
      - record: endpoint:wide
        expr: wide_signal * 2
      - alert: Wide
        expr: wide_signal > 0
`))
	cfg.MaxSeriesPerRule = 3
	a := start(t, cfg, store)
	g := writeGauges(t, store)
	for _, e := range []string{"/a", "/b", "/c", "/d", "/e"} {
		g.set(1, "wide_signal", "endpoint", e)
	}
	poll.Until(t, 10*time.Second, "both rules refused at the cap", func() bool {
		n := 0
		for _, gr := range a.RuleGroups() {
			for _, r := range gr.Rules {
				if r.Health == "err" && strings.Contains(r.LastError, "5 series, over the 3 one rule may produce") {
					n++
				}
			}
		}
		return n == 2
	})
	if v := testutil.ToFloat64(a.capHits); v < 2 {
		t.Errorf("skytrail_alerting_series_cap_hits_total = %v", v)
	}
	if active, _ := a.Alerts(context.Background()); len(active) != 0 {
		t.Errorf("alerts from a capped rule: %+v", active)
	}
	v, err := store.InstantQuery(context.Background(), `endpoint:wide`, time.Now())
	if err != nil || len(v) != 0 {
		t.Errorf("a capped recording rule wrote %v (%v)", v, err)
	}
}

func TestForwardToNeedsHTTPURL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := openStore(t, filepath.Join(dir, "tsdb"))
	for _, bad := range []string{"alertmanager:9093", "ftp://am:9093", "http://"} {
		cfg := testConfig(dir)
		cfg.ForwardTo = []string{bad}
		a, err := New(cfg, store)
		if err == nil {
			_ = a.Shutdown(context.Background())
			t.Errorf("ForwardTo %q was accepted", bad)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("ForwardTo %q: the error does not name it: %v", bad, err)
		}
	}
}
