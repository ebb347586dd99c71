package ui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// TestBrowserAlerts makes the default error-rate rule fire with failing
// calls sent through the OpenTelemetry SDK, then checks in the browser
// that the Alerts page lists it first with a link to a failed trace, that
// the header, the services list and the service page carry a badge, and
// that two clicks silence it (and one expires the silence).
func TestBrowserAlerts(t *testing.T) {
	dir := browserPrereqs(t)
	s, base := startSkyTrail(t, func(c *server.Config) {
		c.Alerting.EvalInterval = 250 * time.Millisecond
		c.Alerting.Thresholds = alerting.Thresholds{ServiceErrorRate: 0.05, MinCallRate: 0.01, Window: 10 * time.Minute, For: time.Second}
	})
	api := "http://" + s.Addrs["query API"]
	f := &feeder{t: t, addr: s.Addrs["OTLP gRPC"], tps: map[string]*sdktrace.TracerProvider{}}
	defer f.shutdown()
	now := time.Now()
	// 20 good calls and 10 failed ones: an error rate of a third.
	for i := range 20 {
		_, end := span(context.Background(), f.tracer("payments"), "POST /charge", trace.SpanKindServer, now.Add(-time.Duration(20-i)*time.Second), 30*time.Millisecond)
		end()
	}
	failed(f, now)
	_, end := span(context.Background(), f.tracer("quiet"), "GET /", trace.SpanKindServer, now.Add(-10*time.Second), time.Millisecond)
	end()
	f.flush()
	defer func() {
		if t.Failed() {
			for _, p := range []string{"/api/v1/alerts", "/api/v1/traces?service=payments&errors=true&limit=2"} {
				if resp, err := http.Get(api + p); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("%s: %s", p, b)
				}
			}
		}
	}()
	poll.Until(t, waitTimeout, "the payments error-rate alert firing", func() bool {
		resp, err := http.Get(api + "/api/v1/alerts?state=firing")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Alerts []alerting.Alert `json:"alerts"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		for _, a := range body.Alerts {
			if a.Labels["service"] == "payments" && a.Annotations["example_trace_id"] != "" {
				return true
			}
		}
		return false
	})

	if t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "alerts.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "CHROMIUM="+chromium, "SCREENSHOTS="+os.Getenv("UI_SCREENSHOTS"))
	out, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", out)
	if err != nil {
		t.Fatalf("browser checks failed: %v", err)
	}
}

// failed sends ten failed calls of payments.
func failed(f *feeder, now time.Time) {
	for i := range 10 {
		ctx, end := span(context.Background(), f.tracer("payments"), "POST /charge", trace.SpanKindServer, now.Add(-time.Duration(15-i)*time.Second), 50*time.Millisecond)
		trace.SpanFromContext(ctx).SetStatus(codes.Error, "card declined")
		end()
	}
}
