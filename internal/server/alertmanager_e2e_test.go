package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// alertmanagerBinary finds a real Alertmanager: Debian's
// prometheus-alertmanager, or an alertmanager on PATH. The module
// proxy's copy cannot be built (its web UI is not in the module), so CI
// installs Debian's; without one the test is skipped, except under CI.
func alertmanagerBinary(t *testing.T) string {
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Alertmanager binary: apt-get install prometheus-alertmanager")
	}
	t.Skip("no Alertmanager binary (apt-get install prometheus-alertmanager)")
	return ""
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// SkyTrail forwards its alerts to a team's own Alertmanager (the real
// binary): the default error-rate rule fires on failing calls sent with the
// OpenTelemetry SDK, and Alertmanager's webhook delivers it with SkyTrail's
// links, then the resolved message.
func TestAlertsForwardedToAlertmanager(t *testing.T) {
	t.Parallel()
	bin := alertmanagerBinary(t)
	hook, messages := hookServer(t)
	dir := t.TempDir()
	conf := writeWebhookRoute(t, dir, hook.URL)
	amAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	am := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	am.Stdout, am.Stderr = os.Stderr, os.Stderr
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = am.Wait()
	})
	poll.Until(t, 20*time.Second, "Alertmanager ready", func() bool {
		resp, err := http.Get("http://" + amAddr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	s := servertest.StartIn(t, filepath.Join(dir, "data"), quickErrorRateRule, func(c *server.Config) { c.Alerting.ForwardTo = []string{"http://" + amAddr} })
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp, "billing")
	start := time.Now().Add(-10 * time.Millisecond)
	for i := range 10 {
		_, span := tp.Tracer("billing").Start(context.Background(), "POST /invoices", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
		if i%2 == 0 {
			span.SetStatus(codes.Error, "ledger unavailable")
		}
		span.End(trace.WithTimestamp(start.Add(20 * time.Millisecond)))
	}

	find := func(status string) (hookMessage, bool) {
		for _, m := range messages() {
			if m.Status == status && len(m.Alerts) == 1 && m.Alerts[0].Labels["alertname"] == alerting.AlertServiceErrorRate && m.Alerts[0].Labels["service"] == "billing" {
				return m, true
			}
		}
		return hookMessage{}, false
	}
	var firing hookMessage
	poll.Until(t, 30*time.Second, "the firing alert through Alertmanager", func() bool {
		var ok bool
		firing, ok = find("firing")
		return ok
	})
	if u := firing.Alerts[0].Annotations[alerting.AnnotationTracesURL]; u == "" {
		t.Errorf("the forwarded alert lost SkyTrail's links: %v", firing.Alerts[0].Annotations)
	}
	// Alertmanager itself lists it, as any other source's.
	var listed []struct {
		Labels map[string]string `json:"labels"`
	}
	resp, err := http.Get("http://" + amAddr + "/api/v2/alerts?filter=" + fmt.Sprintf("service=%q", "billing"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || len(listed) != 1 {
		t.Errorf("Alertmanager's /api/v2/alerts: %v %+v", err, listed)
	}
	resp.Body.Close()
	poll.Until(t, 40*time.Second, "the resolved alert through Alertmanager", func() bool {
		_, ok := find("resolved")
		return ok
	})
}
