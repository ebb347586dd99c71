package analysis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/analysis/instances"
	"github.com/skytrail/skytrail/internal/testutil/testclock"
)

func sendEntry(tracer trace.Tracer, name string) {
	start := pastMinute()
	_, span := tracer.Start(context.Background(), name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	span.End(trace.WithTimestamp(start.Add(5 * time.Millisecond)))
}

// TestRestartUnderNewID: a program restarted on the same host under a new
// instance ID (skywalking-go's UUID@IP does this) is flagged as a duplicate
// of the instance it replaced; two IDs from one live process are flagged
// as the same process.
func TestRestartUnderNewID(t *testing.T) {
	t.Parallel()
	clock := testclock.New()
	// A minute apart is one process (the one's last sign of life and the
	// other's first), however slow the machine; the restart is passed on
	// the clock instead of waited for.
	h := newHarness(t, Config{Instances: instances.Config{AliveTimeout: time.Minute}, Now: clock.Now})
	host := attribute.String("host.name", "node-7")

	first, finish := h.tracer("cart", attribute.String("service.instance.id", "0b6e@10.0.0.7"), host, attribute.Int("process.pid", 4242))
	sendEntry(first, "GET /cart")
	finish()
	clock.Advance(2 * time.Minute) // the old process is gone for longer than the alive timeout

	second, finish2 := h.tracer("cart", attribute.String("service.instance.id", "9f1d@10.0.0.7"), host, attribute.Int("process.pid", 4377))
	sendEntry(second, "GET /cart")
	// The same live process under a third name (say, a second SDK set-up).
	third, finish3 := h.tracer("cart", attribute.String("service.instance.id", "cart-main"), host, attribute.Int("process.pid", 4377))
	sendEntry(third, "GET /cart")
	finish2()
	finish3()
	h.flush()

	got := h.instances("cart")
	byName := map[string]InstanceView{}
	for _, inst := range got.Instances {
		byName[inst.Name] = inst
	}
	if len(byName) != 3 {
		t.Fatalf("instances: %+v, want 3", got.Instances)
	}
	old, restarted, alias := byName["0b6e@10.0.0.7"], byName["9f1d@10.0.0.7"], byName["cart-main"]
	if old.DuplicateOf != "" {
		t.Errorf("the first instance is flagged %q: %s", old.DuplicateOf, old.DuplicateReason)
	}
	if restarted.DuplicateOf != "0b6e@10.0.0.7" {
		t.Errorf("restarted instance: duplicateOf %q (%s), want 0b6e@10.0.0.7", restarted.DuplicateOf, restarted.DuplicateReason)
	}
	if len(alias.SameProcessAs) != 1 || alias.SameProcessAs[0] != "9f1d@10.0.0.7" {
		t.Errorf("cart-main sameProcessAs %v, want [9f1d@10.0.0.7]", alias.SameProcessAs)
	}
	if alias.Properties["process.pid"] != "4377" || alias.Host != "node-7" || alias.Protocol != "otlp" {
		t.Errorf("cart-main: properties %v host %q protocol %q", alias.Properties, alias.Host, alias.Protocol)
	}
	if restarted.Figures == nil || restarted.Figures.Calls != 1 {
		t.Errorf("restarted instance figures: %+v, want 1 call", restarted.Figures)
	}
}

// TestEndpointCardinalityCap: URLs with IDs in them do not make a series
// each; beyond the cap they count as "<overflow>", reported as such.
func TestEndpointCardinalityCap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{MaxEndpointsPerService: 5})
	tracer, finish := h.tracer("users")
	for i := range 20 {
		sendEntry(tracer, fmt.Sprintf("GET /users/%d", i))
	}
	finish()
	h.flush()

	got, err := h.analyser.Endpoints(context.Background(), "users", time.Now().Add(-15*time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 6 || !got.Overflowed {
		t.Fatalf("endpoints: %+v (overflowed %v), want 5 named and <overflow>", got.Endpoints, got.Overflowed)
	}
	if e := got.Endpoints[0]; e.Name != Overflow || e.Figures.Calls != 15 {
		t.Errorf("busiest endpoint: %+v, want <overflow> with 15 calls", e)
	}
	if n := h.scalar(`count(count by (endpoint) (count_over_time(skytrail_endpoint_calls:increase1m{service="users"}[10m])))`); n != 6 {
		t.Errorf("%g endpoint series, want 6", n)
	}
	if got := h.scalar(`sum_over_time(skytrail_service_calls:increase1m{service="users"}[10m])`); got != 20 {
		t.Errorf("service calls = %g, want 20: overflowed endpoints still count", got)
	}
}
