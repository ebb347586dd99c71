// Command alertdelay measures how long SkyTrail takes from the first
// failing span to the webhook delivery of the default error-rate alert,
// with the default rule settings (10 s evaluation, a 5 min window) and a
// notification route with group_wait 5s. It runs a server in process on
// loopback ports, sends calls with the OpenTelemetry SDK (a fifth failing
// from the start) and reports the delay beyond the rule's for: duration,
// the figure the target (≤ 20 s) is about.
//
//	go run ./bench/alertdelay              # the default for: 2m
//	go run ./bench/alertdelay --for 30s    # quicker; the rest of the path is the same
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/server"
)

func main() {
	forD := flag.Duration("for", alerting.DefaultThresholds().For, "the rule's for: duration")
	rate := flag.Int("rps", 10, "calls a second, a fifth of them failing")
	flag.Parse()

	fired := make(chan time.Time, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Status string `json:"status"`
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if json.NewDecoder(r.Body).Decode(&m) == nil && m.Status == "firing" && len(m.Alerts) > 0 &&
			m.Alerts[0].Labels["alertname"] == alerting.AlertServiceErrorRate {
			select {
			case fired <- time.Now():
			default:
			}
		}
	}))
	defer hook.Close()

	dir, err := os.MkdirTemp("", "alertdelay")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	notify := filepath.Join(dir, "notify.yml")
	if err := os.WriteFile(notify, []byte(`route:
  receiver: team
  group_by: [alertname, service]
  group_wait: 5s
receivers:
  - name: team
    webhook_configs:
      - url: `+hook.URL+`
`), 0o644); err != nil {
		log.Fatal(err)
	}
	cfg := server.Defaults()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPAddr, cfg.OTLPGRPCAddr, cfg.OTLPHTTPAddr, cfg.SWGRPCAddr, cfg.SWHTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "", "", ""
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Alerting.NotifyConfig = notify
	cfg.Alerting.Thresholds.For = *forD
	s, err := server.Start(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = s.Shutdown(context.Background()) }()

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("checkout"))))
	defer func() { _ = tp.Shutdown(ctx) }()
	tr := tp.Tracer("alertdelay")

	start := time.Now()
	fmt.Printf("sending %d calls/s to checkout, a fifth failing; for: %s, rules evaluated every 10 s (the default)\n", *rate, *forD)
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	deadline := time.After(*forD + 3*time.Minute)
	for i := 0; ; i++ {
		select {
		case at := <-fired:
			d := at.Sub(start)
			fmt.Printf("first failing span -> webhook: %s (for: %s + %s)\n", d.Round(100*time.Millisecond), *forD, (d - *forD).Round(100*time.Millisecond))
			return
		case <-deadline:
			log.Fatalf("no notification within %s", *forD+3*time.Minute)
		case <-tick.C:
			_, sp := tr.Start(ctx, "POST /checkout", trace.WithSpanKind(trace.SpanKindServer))
			if i%5 == 0 {
				sp.SetStatus(codes.Error, "payment declined")
			}
			sp.End()
		}
	}
}
