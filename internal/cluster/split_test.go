package cluster

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

func testView(members []string, self int) *view {
	v := &view{hrw: newRendezvous(members), self: self, peers: make([]*peer, len(members))}
	for i, m := range members {
		if i != self {
			v.peers[i] = &peer{addr: m}
		}
	}
	return v
}

// batch is services × traces spans: every service has a span in every trace.
func batch(services, traces int) ptrace.Traces {
	td := ptrace.NewTraces()
	ids := traceIDs(traces)
	for s := range services {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprint("svc-", s))
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(fmt.Sprint("scope-", s))
		for i, id := range ids {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(id)
			sp.SetSpanID([8]byte{byte(s), byte(i), byte(i >> 8), 1})
			sp.SetName(fmt.Sprint("op-", i))
		}
	}
	return td
}

// Every span ends in exactly one part, its owner's, under its own
// resource and scope, and the node's own part keeps its resources'
// identities in step.
func TestSplitKeepsEverySpanOnce(t *testing.T) {
	members := []string{"a:1", "b:1", "c:1"}
	v := testView(members, 1)
	td := pipeline.TracesOf(batch(3, 200))
	total := td.SpanCount()
	parts, err := split(v, &td, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[8]byte]string{}
	check := func(who int, tr ptrace.Traces) {
		rss := tr.ResourceSpans()
		for i := range rss.Len() {
			svc, _ := rss.At(i).Resource().Attributes().Get("service.name")
			for j := range rss.At(i).ScopeSpans().Len() {
				ss := rss.At(i).ScopeSpans().At(j)
				for k := range ss.Spans().Len() {
					sp := ss.Spans().At(k)
					if got := v.hrw.owner(key(sp.TraceID()), nil); got != who {
						t.Fatalf("span in %s's part is owned by %s", members[who], members[got])
					}
					if fmt.Sprint("svc-", sp.SpanID()[0]) != svc.Str() || fmt.Sprint("scope-", sp.SpanID()[0]) != ss.Scope().Name() {
						t.Fatalf("span of svc-%d under %s/%s", sp.SpanID()[0], svc.Str(), ss.Scope().Name())
					}
					if prev, dup := seen[sp.SpanID()]; dup {
						t.Fatalf("span in both %s and %s", prev, members[who])
					}
					seen[sp.SpanID()] = members[who]
				}
			}
		}
	}
	check(1, td.Traces)
	for _, p := range parts {
		if p.spans != p.td.SpanCount() || p.peer != members[p.member] || p.member == 1 {
			t.Fatalf("part %+v holds %d spans", p, p.td.SpanCount())
		}
		check(p.member, p.td)
	}
	if len(seen) != total || len(parts) != 2 {
		t.Fatalf("%d of %d spans in %d parts", len(seen), total, len(parts))
	}
	if len(td.Resources) != td.ResourceSpans().Len() {
		t.Fatalf("%d resources for %d resource spans", len(td.Resources), td.ResourceSpans().Len())
	}
	for i, r := range td.Resources {
		if svc, _ := td.ResourceSpans().At(i).Resource().Attributes().Get("service.name"); svc.Str() != r.Service {
			t.Fatalf("resource %d is %s, identified as %s", i, svc.Str(), r.Service)
		}
	}

	// A down peer's traces go to the next in rendezvous order.
	v.peers[2].down.Store(true)
	td = pipeline.TracesOf(batch(2, 100))
	away := make([]int, 3)
	parts, _ = split(v, &td, v.skipDown(nil), away)
	for _, p := range parts {
		if p.member == 2 {
			t.Fatal("a part for the down peer")
		}
	}
	if away[2] == 0 || away[0] != 0 || away[1] != 0 {
		t.Errorf("spans sent away from their owner = %v, want only the down peer's", away)
	}
}

// A batch of one trace goes whole to its owner, without a copy.
func TestSplitWholeBatch(t *testing.T) {
	members := []string{"a:1", "b:1", "c:1"}
	orig := batch(2, 1)
	owner := newRendezvous(members).owner(key(orig.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()), nil)
	td := pipeline.TracesOf(orig)
	parts, err := split(testView(members, owner), &td, nil, nil)
	if err != nil || parts != nil || td.SpanCount() != 2 {
		t.Fatalf("own batch: parts %v, %d spans left, %v", parts, td.SpanCount(), err)
	}
	other := (owner + 1) % 3
	parts, _ = split(testView(members, other), &td, nil, nil)
	if len(parts) != 1 || parts[0].member != owner || parts[0].spans != 2 || td.SpanCount() != 0 {
		t.Fatalf("a peer's batch: %+v, %d spans left", parts, td.SpanCount())
	}
}

func BenchmarkSplit(b *testing.B) {
	members := []string{"a:1", "b:1", "c:1"}
	v := testView(members, 0)
	orig := batch(5, 100) // 500 spans of 100 traces
	b.ReportAllocs()
	for b.Loop() {
		td := ptrace.NewTraces()
		orig.CopyTo(td)
		t := pipeline.TracesOf(td)
		if _, err := split(v, &t, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
