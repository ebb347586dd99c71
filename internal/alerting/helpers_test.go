package alerting

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a real metric store in dir, closed when the test ends
// (unless closed before).
func openStore(t testing.TB, dir string) *metricstore.Store {
	t.Helper()
	s, err := metricstore.Open(metricstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testConfig evaluates every 100 ms and keeps alerting's state in dir.
func testConfig(dir string, ruleFiles ...string) Config {
	return Config{
		RuleFiles:      ruleFiles,
		EvalInterval:   100 * time.Millisecond,
		Dir:            filepath.Join(dir, "alerting"),
		ExternalURL:    "http://skytrail.test:8080",
		Logger:         quiet(),
		Registerer:     prometheus.NewRegistry(),
		ResendDelay:    100 * time.Millisecond,
		ForGracePeriod: time.Second,
	}
}

func start(t testing.TB, cfg Config, store Store) *Alerting {
	t.Helper()
	a, err := New(cfg, store)
	if err != nil {
		t.Fatalf("starting alerting: %v", err)
	}
	t.Cleanup(func() { stopAlerting(a) })
	return a
}

// stopAlerting shuts a down once (tests restart it, then clean up).
func stopAlerting(a *Alerting) {
	select {
	case <-a.stop:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.Shutdown(ctx)
}

// gauges writes series to the store at the current time every 50 ms, with
// the values the test sets, as an exporter scraped every 50 ms would.
type gauges struct {
	mu     sync.Mutex
	values map[string]float64
	ls     map[string]labels.Labels
}

func writeGauges(t testing.TB, store *metricstore.Store) *gauges {
	g := &gauges{values: map[string]float64{}, ls: map[string]labels.Labels{}}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tk.C:
				g.mu.Lock()
				app := store.AppenderV2(context.Background())
				for k, v := range g.values {
					_, _ = app.Append(0, g.ls[k], 0, now.UnixMilli(), v, nil, nil, storage.AOptions{})
				}
				g.mu.Unlock()
				_ = app.Commit()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return g
}

// set gives a series (name and label pairs) its value from now on.
func (g *gauges) set(v float64, nameAndPairs ...string) {
	ls := labels.FromStrings(append([]string{labels.MetricName}, nameAndPairs...)...)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.values[ls.String()] = v
	g.ls[ls.String()] = ls
}

// webhookMessage is Alertmanager's webhook payload (version 4).
type webhookMessage struct {
	Version     string            `json:"version"`
	GroupKey    string            `json:"groupKey"`
	Status      string            `json:"status"`
	Receiver    string            `json:"receiver"`
	GroupLabels map[string]string `json:"groupLabels"`
	ExternalURL string            `json:"externalURL"`
	Alerts      []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

// webhook is a real HTTP receiver on 127.0.0.1 keeping what it is sent.
type webhook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []webhookMessage
}

func newWebhook(t testing.TB) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m webhookMessage
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook: %v", err)
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.got = append(w.got, m)
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) messages() []webhookMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]webhookMessage(nil), w.got...)
}

// waitMessage waits for a message that ok accepts, and returns it.
func (w *webhook) waitMessage(t testing.TB, what string, ok func(webhookMessage) bool) webhookMessage {
	t.Helper()
	var found webhookMessage
	poll.Until(t, 15*time.Second, what, func() bool {
		for _, m := range w.messages() {
			if ok(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// notifyConfig routes everything to url with short waits.
func notifyConfigFor(url string, extra string) string {
	return `route:
  receiver: hook
  group_by: [alertname, service]
  group_wait: 100ms
  group_interval: 300ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: ` + url + `
        send_resolved: true
` + extra
}
