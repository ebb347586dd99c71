package analysis

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"github.com/SkyAPM/go2sky/reporter"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/skywalking"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// countingConsumer counts the spans it passes on, so a test knows when an
// agent's asynchronous reports have all arrived.
type countingConsumer struct {
	next  *Analyser
	spans atomic.Int64
}

func (c *countingConsumer) ConsumeTraces(ctx context.Context, td pipeline.Traces) error {
	err := c.next.ConsumeTraces(ctx, td)
	c.spans.Add(int64(td.SpanCount()))
	return err
}

func newGo2sky(t *testing.T, addr, service, instance string) *go2sky.Tracer {
	t.Helper()
	r, err := reporter.NewGRPCReporter(addr, reporter.WithCheckInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	tracer, err := go2sky.NewTracer(service, go2sky.WithReporter(r), go2sky.WithInstance(instance))
	if err != nil {
		t.Fatal(err)
	}
	return tracer
}

// TestGo2skyMap sends go2sky traces through the SkyWalking receiver: an
// HTTP call from frontend to backend (joined through the sw8 ref) and a
// MySQL exit span, which becomes a virtual database node; the instances
// register through SkyWalking's management service.
func TestGo2skyMap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	counter := &countingConsumer{next: h.analyser}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(pipeline.Config{}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{counter}, Heartbeats: []pipeline.HeartbeatConsumer{h.analyser}})
	srv := skywalking.NewGRPCServer(p, skywalking.Options{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	frontend := newGo2sky(t, lis.Addr().String(), "sw-frontend", "fe-1")
	backend := newGo2sky(t, lis.Addr().String(), "sw-backend", "be-1")

	const requests = 5
	for range requests {
		headers := map[string]string{}
		entry, ctx, err := frontend.CreateEntrySpan(context.Background(), "GET /checkout", func(string) (string, error) { return "", nil })
		if err != nil {
			t.Fatal(err)
		}
		entry.SetSpanLayer(agentv3.SpanLayer_Http)
		exit, err := frontend.CreateExitSpan(ctx, "GET /stock", "sw-backend:8080", func(k, v string) error { headers[k] = v; return nil })
		if err != nil {
			t.Fatal(err)
		}
		exit.SetSpanLayer(agentv3.SpanLayer_Http)
		bEntry, bctx, err := backend.CreateEntrySpan(context.Background(), "GET /stock", func(k string) (string, error) { return headers[k], nil })
		if err != nil {
			t.Fatal(err)
		}
		bEntry.SetSpanLayer(agentv3.SpanLayer_Http)
		db, err := backend.CreateExitSpan(bctx, "SELECT stock", "mysql:3306", func(string, string) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		db.SetComponent(5012)
		db.SetSpanLayer(agentv3.SpanLayer_Database)
		db.Tag(go2sky.TagDBType, "Mysql")
		db.End()
		bEntry.End()
		exit.End()
		entry.End()
	}
	poll.UntilNil(t, 30*time.Second, func() error {
		if n := counter.spans.Load(); n < 4*requests {
			return fmt.Errorf("%d of %d spans arrived", n, 4*requests)
		}
		return nil
	})
	// go2sky reports instance properties on its first check (1 s).
	poll.UntilNil(t, 30*time.Second, func() error {
		if list := h.analyser.Registry().List("sw-backend", time.Now()); len(list) == 0 || list[0].Properties == nil {
			return fmt.Errorf("sw-backend's instance properties never arrived: %+v", list)
		}
		return nil
	})
	h.flush()

	// The spans are in the current minute, written stamped with its end.
	topo := h.topology()
	type edgeID struct{ client, server, serverType, system string }
	got := map[edgeID]Edge{}
	for _, e := range topo.Edges {
		got[edgeID{e.Client, e.Server, e.ServerType, e.System}] = e
	}
	for _, w := range []struct {
		id         edgeID
		clientSide bool
		serverSide bool
	}{
		{edgeID{"user", "sw-frontend", "service", ""}, false, true},
		{edgeID{"sw-frontend", "sw-backend", "service", ""}, true, true},
		{edgeID{"sw-backend", "mysql:3306", "database", "mysql"}, true, false},
	} {
		e, ok := got[w.id]
		switch {
		case !ok:
			t.Errorf("missing edge %+v in %+v", w.id, topo.Edges)
		case (e.ClientSide != nil) != w.clientSide || (e.ServerSide != nil) != w.serverSide:
			t.Errorf("edge %+v: client side %v, server side %v", w.id, e.ClientSide, e.ServerSide)
		case e.ClientSide != nil && e.ClientSide.Calls != requests, e.ServerSide != nil && e.ServerSide.Calls != requests:
			t.Errorf("edge %+v: calls %+v / %+v, want %d", w.id, e.ClientSide, e.ServerSide, requests)
		}
	}
	if len(got) != 3 {
		t.Errorf("edges %+v, want 3", topo.Edges)
	}
	insts := h.analyser.Registry().List("sw-backend", time.Now())
	if len(insts) != 1 || insts[0].Name != "be-1" || insts[0].Protocol != "skywalking" || !insts[0].Alive {
		t.Errorf("sw-backend instances: %+v, want be-1, alive, over skywalking", insts)
	}
}
