package demo

import (
	"fmt"
	"path/filepath"
	"strings"
)

// printGuide tells the newcomer where everything is and what to look at.
func (d *Demo) printGuide(dataDir string) {
	a := d.Server.Addrs
	var b strings.Builder
	fmt.Fprintf(&b, "\nSkyTrail demo: the server, and a shop of four services sending it traces (customers: %g requests/s).\n\n", d.rps)
	api := ""
	if addr, ok := a["query API"]; ok {
		api = d.baseURL(addr)
		fmt.Fprintf(&b, "  UI and query API   %s/\n", api)
	}
	fmt.Fprintf(&b, "  OTLP               gRPC %s%s\n", dialAddr(a["OTLP gRPC"]), orNone(", HTTP ", a["OTLP HTTP"]))
	fmt.Fprintf(&b, "  SkyWalking         gRPC %s%s\n", dialAddr(a["SkyWalking gRPC"]), orNone(", HTTP ", a["SkyWalking HTTP"]))
	if dir, err := filepath.Abs(dataDir); err == nil {
		fmt.Fprintf(&b, "  Data               %s\n", dir)
	}
	b.WriteString(`
The shop (its code: examples/shop in the SkyTrail repository):
  frontend -> order -> inventory, payment; order -> kafka "orders" -> inventory
  frontend, order, inventory: OpenTelemetry Go SDK + otelhttp, over OTLP
  payment:                    go2sky, over SkyWalking's protocol; order calls it with traceparent and sw8
  simulated MySQL, Redis and Kafka calls; ~3% of checkouts fail, ~3% take a slow path
`)
	if api != "" {
		fmt.Fprintf(&b, `
What to look at, in the UI:
  services       %[1]s/services                 calls/min, success rate, p99, Apdex
  service map    %[1]s/map                      (calls show as they arrive)
  failures       %[1]s/traces?service=order&errors=true
  the slow path  %[1]s/traces?service=inventory&minDuration=300ms
  the bug        order e-mails confirmations from a goroutine given context.Background(), so each
                 e-mail is a trace of its own (examples/shop/order.go):
                 %[1]s/traces?service=order&operation=send+confirmation+email
  alarms         %[1]s/alerts
                 the default rules watch every service; the bug above makes one fire within a
                 few minutes, and this terminal says so when it does (docs/alarms.md)
The same through the API: curl -s %[1]s/api/v1/services, %[1]s/api/v1/topology, ... (docs/api.md)
`, api)
	}
	b.WriteString("\nCtrl-C stops it.\n")
	fmt.Fprint(d.out, b.String())
}

// printFirstOrder points at the trace of the first order placed.
func (d *Demo) printFirstOrder(orderID string) {
	addr, ok := d.Server.Addrs["query API"]
	if !ok {
		return
	}
	// Order IDs are "ord-" and hex: nothing to escape.
	base := d.baseURL(addr)
	fmt.Fprintf(d.out, "\nFirst order placed, %s; its trace: %s/traces?tag=order_id=%s\n", orderID, base, orderID)
	fmt.Fprintf(d.out, "Its log lines (order, inventory over OTLP, payment through the Elasticsearch bulk API), each linking to its trace:\n  %s/logs?field=order_id:%s   (or search order_id:%s on the Logs page)\n", base, orderID, orderID)
}

// orNone is prefix+dialAddr(addr), or "" for a listener that is off.
func orNone(prefix, addr string) string {
	if addr == "" {
		return ""
	}
	return prefix + dialAddr(addr)
}
