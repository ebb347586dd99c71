package cluster

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// part is the spans of a batch owned by one peer.
type part struct {
	member int
	peer   string
	td     ptrace.Traces
	spans  int
}

// split leaves in td the spans this node owns and returns the others,
// one part per owning peer, each with its spans' resources and scopes.
// Owners are chosen among the members skip does not exclude; away counts,
// per member, the spans it owns but skip made go elsewhere (nil: not
// counted). A batch
// owned wholly by this node is left as it is, and one owned wholly by
// one peer is handed over without a copy: with a single trace a batch,
// as SkyWalking agents send, that is every batch.
func split(v *view, td *pipeline.Traces, skip func(int) bool, away []int) ([]part, error) {
	total := td.SpanCount()
	owners := make([]int32, 0, total)
	counts := make([]int, len(v.peers))
	var lastID pcommon.TraceID
	last, natural := -1, -1
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				if id := spans.At(k).TraceID(); last < 0 || id != lastID {
					k := key(id)
					last, lastID = v.hrw.owner(k, skip), id
					if last < 0 {
						return nil, &pipeline.Error{Reason: pipeline.Unavailable, Msg: fmt.Sprintf("%v: every peer is down and this node is not one of them", errNoRoute)}
					}
					natural = last
					if away != nil && skip != nil {
						natural = v.hrw.owner(k, nil)
					}
				}
				owners = append(owners, int32(last))
				counts[last]++
				if natural != last {
					away[natural]++
				}
			}
		}
	}
	for m, c := range counts {
		if c != total || total == 0 {
			continue
		}
		if m == v.self {
			return nil, nil
		}
		whole := part{member: m, peer: v.hrw.members[m], td: td.Traces, spans: total}
		*td = pipeline.Traces{Traces: ptrace.NewTraces()}
		return []part{whole}, nil
	}

	parts := make([]part, len(v.peers))
	curRS := make([]ptrace.ResourceSpans, len(v.peers))
	curSS := make([]ptrace.ScopeSpans, len(v.peers))
	rsAt := make([]int, len(v.peers)) // the source resource curRS was made for, +1
	ssAt := make([]int, len(v.peers))
	n := 0
	for i := range rss.Len() {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := range spans.Len() {
				m := int(owners[n])
				n++
				if m == v.self {
					continue
				}
				p := &parts[m]
				if p.spans == 0 {
					p.member, p.peer, p.td = m, v.hrw.members[m], ptrace.NewTraces()
				}
				if rsAt[m] != i+1 {
					curRS[m] = p.td.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(curRS[m].Resource())
					curRS[m].SetSchemaUrl(rs.SchemaUrl())
					rsAt[m], ssAt[m] = i+1, 0
				}
				if ssAt[m] != j+1 {
					curSS[m] = curRS[m].ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(curSS[m].Scope())
					curSS[m].SetSchemaUrl(ss.SchemaUrl())
					ssAt[m] = j + 1
				}
				spans.At(k).CopyTo(curSS[m].Spans().AppendEmpty())
				p.spans++
			}
		}
	}
	keepOwn(td, owners, v.self)
	out := parts[:0]
	for _, p := range parts {
		if p.spans > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// keepOwn removes from td the spans owners gives to another member, and
// the resources left without spans with their entries in td.Resources.
func keepOwn(td *pipeline.Traces, owners []int32, self int) {
	td.Raw, td.RawRoom = nil, nil // no longer the request as received
	n, ri := 0, 0
	kept := td.Resources[:0]
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		rs.ScopeSpans().RemoveIf(func(ss ptrace.ScopeSpans) bool {
			ss.Spans().RemoveIf(func(ptrace.Span) bool {
				o := owners[n]
				n++
				return int(o) != self
			})
			return ss.Spans().Len() == 0
		})
		keep := rs.ScopeSpans().Len() > 0
		if keep && ri < len(td.Resources) {
			kept = append(kept, td.Resources[ri])
		}
		ri++
		return !keep
	})
	td.Resources = kept
}
