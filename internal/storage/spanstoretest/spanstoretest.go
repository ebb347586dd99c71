// Package spanstoretest is the span store's contract as a test suite: what
// every implementation (the embedded store, the one over VictoriaLogs'
// HTTP API) must do for the pipeline and the query APIs. Each
// implementation's tests call Run with a function that opens one, so the
// two cannot drift apart.
package spanstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// Store is what the contract covers: the pipeline's consumer, the query
// side's Reader, and Flush, which makes what was written searchable.
type Store interface {
	pipeline.TracesConsumer
	pipeline.LogsConsumer
	spanstore.Reader
	TraceLogs(ctx context.Context, ids []pcommon.TraceID, limit int) ([]spanstore.LogEntry, error)
	Logs(ctx context.Context, lq spanstore.LogQuery) ([]spanstore.LogEntry, error)
	Flush()
}

// The traces the suite writes, by role.
var (
	// checkout: frontend "GET /checkout" (server, 120 ms, on host web-1)
	// calling payment "charge" (client, 80 ms, failed: "card declined").
	checkoutID = pcommon.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	// home: frontend "GET /home", 5 ms, on host web-1.
	homeID = pcommon.TraceID{0x5c, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}
	// reserve: inventory "reserve" (internal, 300 ms, region=eu).
	reserveID = pcommon.TraceID{0x6d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f}
	// legacy: a 64-bit trace ID (Zipkin, SkyWalking-converted), zero-padded
	// in front: legacy "poll", 50 ms.
	legacyID = pcommon.TraceID{0, 0, 0, 0, 0, 0, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}
)

// Run writes the suite's traces into the store open returns (called once)
// and checks every read the query APIs make of them.
func Run(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	written := traces(now)
	if err := s.ConsumeTraces(ctx, written); err != nil {
		t.Fatalf("ConsumeTraces: %v", err)
	}
	s.Flush()
	ids := []pcommon.TraceID{checkoutID, homeID, reserveID, legacyID}
	poll.UntilNil(t, 30*time.Second, func() error {
		td, err := s.GetTraces(ctx, ids)
		if err != nil {
			return err
		}
		if td.SpanCount() != written.SpanCount() {
			return fmt.Errorf("GetTraces found %d of the %d spans written", td.SpanCount(), written.SpanCount())
		}
		// A remote engine may index a new service's stream a little after
		// its rows: searches by service wait for it, once.
		if services, err := s.Services(ctx); err != nil || len(services) != 4 {
			return fmt.Errorf("Services() = %v, %v; want the 4 services written", services, err)
		}
		return nil
	})

	t.Run("GetTraceRoundTrip", func(t *testing.T) {
		for _, id := range ids {
			got, err := s.GetTrace(ctx, id)
			if err != nil {
				t.Fatalf("GetTrace(%s): %v", id, err)
			}
			want, have := describe(written.Traces, id), describe(got, id)
			if !slices.Equal(want, have) {
				t.Errorf("trace %s read back differs.\nwritten:\n  %s\nread:\n  %s", id, strings.Join(want, "\n  "), strings.Join(have, "\n  "))
			}
		}
	})

	t.Run("GetTraceMissing", func(t *testing.T) {
		missing := pcommon.TraceID{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
		if _, err := s.GetTrace(ctx, missing); !errors.Is(err, spanstore.ErrNotFound) {
			t.Errorf("GetTrace of a trace never written: err %v, want ErrNotFound", err)
		}
		// An ID sharing the legacy trace's low 64 bits but not its high ones
		// is another trace: the index keys on the suffix, the lookup on the
		// whole ID.
		other := legacyID
		other[0] = 0x77
		if _, err := s.GetTrace(ctx, other); !errors.Is(err, spanstore.ErrNotFound) {
			t.Errorf("GetTrace of an ID differing only in its high bytes: err %v, want ErrNotFound", err)
		}
		td, err := s.GetTraces(ctx, []pcommon.TraceID{missing, homeID})
		if err != nil || td.SpanCount() != 1 {
			t.Errorf("GetTraces(missing, home): %d spans, err %v; want home's 1 span", td.SpanCount(), err)
		}
	})

	search := []struct {
		name string
		q    spanstore.TraceQuery
		want []pcommon.TraceID
	}{
		{"everything", spanstore.TraceQuery{}, ids},
		{"service", spanstore.TraceQuery{Service: "payment"}, []pcommon.TraceID{checkoutID}},
		{"service and operation", spanstore.TraceQuery{Service: "frontend", Operation: "GET /home"}, []pcommon.TraceID{homeID}},
		{"operation of another service", spanstore.TraceQuery{Service: "inventory", Operation: "GET /home"}, nil},
		{"min duration", spanstore.TraceQuery{MinDuration: 200 * time.Millisecond}, []pcommon.TraceID{reserveID}},
		{"max duration", spanstore.TraceQuery{MaxDuration: 10 * time.Millisecond}, []pcommon.TraceID{homeID}},
		{"duration range", spanstore.TraceQuery{MinDuration: 40 * time.Millisecond, MaxDuration: 100 * time.Millisecond}, []pcommon.TraceID{checkoutID, legacyID}},
		{"errors only", spanstore.TraceQuery{ErrorsOnly: true}, []pcommon.TraceID{checkoutID}},
		{"tag error=true", spanstore.TraceQuery{Attributes: map[string]string{"error": "true"}}, []pcommon.TraceID{checkoutID}},
		{"status OK", spanstore.TraceQuery{Attributes: map[string]string{"otel.status_code": "OK"}}, []pcommon.TraceID{homeID}},
		{"status message", spanstore.TraceQuery{Attributes: map[string]string{"otel.status_description": "card declined"}}, []pcommon.TraceID{checkoutID}},
		{"int tag as text", spanstore.TraceQuery{Attributes: map[string]string{"order_id": "1001"}}, []pcommon.TraceID{checkoutID}},
		{"string tag", spanstore.TraceQuery{Attributes: map[string]string{"region": "eu"}}, []pcommon.TraceID{reserveID}},
		{"resource tag", spanstore.TraceQuery{Attributes: map[string]string{"host.name": "web-1"}}, []pcommon.TraceID{checkoutID, homeID}},
		{"span kind", spanstore.TraceQuery{Attributes: map[string]string{"span.kind": "internal"}}, []pcommon.TraceID{reserveID}},
		{"tags on one span", spanstore.TraceQuery{Attributes: map[string]string{"order_id": "1001", "error": "true"}}, nil},
		{"tag with no match", spanstore.TraceQuery{Attributes: map[string]string{"region": "us"}}, nil},
		{"limit", spanstore.TraceQuery{Limit: 2}, []pcommon.TraceID{homeID, legacyID}},
		{"time range before the spans", spanstore.TraceQuery{Start: now.Add(-2 * time.Hour), End: now.Add(-time.Hour)}, nil},
	}
	t.Run("FindTraceIDs", func(t *testing.T) {
		for _, c := range search {
			got, err := s.FindTraceIDs(ctx, c.q)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if !sameIDs(got, c.want) {
				t.Errorf("%s: found %v, want %v", c.name, got, c.want)
			}
		}
	})

	t.Run("FindTracesNewestFirst", func(t *testing.T) {
		got, err := s.FindTraces(ctx, spanstore.TraceQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, sum := range got {
			order = append(order, sum.TraceID)
		}
		// Starts: home now-1m, legacy now-2m, reserve now-3m, checkout now-4m.
		want := []string{homeID.String(), legacyID.String(), reserveID.String(), checkoutID.String()}
		if !slices.Equal(order, want) {
			t.Errorf("FindTraces order %v, want newest first %v", order, want)
		}
	})

	t.Run("FindTracesSummary", func(t *testing.T) {
		got, err := s.FindTraces(ctx, spanstore.TraceQuery{Service: "payment"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("FindTraces(service payment): %d summaries, want 1: %+v", len(got), got)
		}
		sum := got[0]
		want := spanstore.TraceSummary{
			TraceID: checkoutID.String(), RootService: "frontend", RootOperation: "GET /checkout",
			Start: now.Add(-4 * time.Minute).UTC(), Duration: 120 * time.Millisecond, DurationUS: 120_000,
			SpanCount: 2, ErrorCount: 1, Services: []string{"frontend", "payment"}, Error: true,
		}
		// The span that met the search: payment's charge, the only one.
		wantMatched := spanstore.MatchedSpan{SpanID: pcommon.SpanID{checkoutID[15], 0, 0, 0, 0, 0, 0, 2}.String(), Service: "payment", Name: "charge"}
		if sum.Matched == nil || *sum.Matched != wantMatched {
			t.Errorf("summary's matched span = %+v, want %+v", sum.Matched, wantMatched)
		}
		sum.Matched = nil
		if fmt.Sprint(sum) != fmt.Sprint(want) {
			t.Errorf("summary\n got %+v\nwant %+v", sum, want)
		}
	})

	t.Run("BadQuery", func(t *testing.T) {
		for _, attrs := range []map[string]string{{"error": "maybe"}, {"span.kind": "sideways"}, {"http.*": "x"}, {strings.Repeat("k", spanstore.MaxAttributeKeyLen+1): "x"}} {
			if _, err := s.FindTraceIDs(ctx, spanstore.TraceQuery{Attributes: attrs}); !errors.Is(err, spanstore.ErrBadQuery) {
				t.Errorf("FindTraceIDs(%v): err %v, want ErrBadQuery", attrs, err)
			}
		}
	})

	t.Run("Services", func(t *testing.T) {
		got, err := s.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"frontend", "inventory", "legacy", "payment"}; !slices.Equal(got, want) {
			t.Errorf("Services() = %v, want %v", got, want)
		}
	})

	t.Run("Operations", func(t *testing.T) {
		got, err := s.Operations(ctx, "frontend")
		if err != nil {
			t.Fatal(err)
		}
		want := []spanstore.Operation{{Name: "GET /checkout", SpanKind: "server"}, {Name: "GET /home", SpanKind: "server"}}
		if !slices.Equal(got, want) {
			t.Errorf("Operations(frontend) = %v, want %v", got, want)
		}
		if got, err := s.Operations(ctx, "nobody"); err != nil || len(got) != 0 {
			t.Errorf("Operations(nobody) = %v, %v; want none", got, err)
		}
	})

	t.Run("TraceLogs", func(t *testing.T) { traceLogs(t, s, now) })
	t.Run("NewestLogsOfMany", func(t *testing.T) { newestLogsOfMany(t, s, now) })

	t.Run("CancelledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.FindTraceIDs(cctx, spanstore.TraceQuery{}); err == nil {
			t.Error("FindTraceIDs with a cancelled context succeeded; a partial answer must not pass for a whole one")
		}
		if _, err := s.GetTrace(cctx, checkoutID); err == nil {
			t.Error("GetTrace with a cancelled context succeeded")
		}
	})
}

// traceLogs checks that the lines of a trace are found through the log
// index, whatever their time: a trace without spans, lines hours from the
// trace's spans, lines of one trace and minute written in two batches
// (the second finds its index row written), and a trace whose ID shares
// the index's key with another (the lookup matches the whole ID).
func traceLogs(t *testing.T, s Store, now time.Time) {
	ctx := t.Context()
	// orphan has lines but no spans; twin shares checkout's last 8 bytes.
	orphan := pcommon.TraceID{0x7e, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f}
	twin := checkoutID
	twin[0], twin[1] = 0x11, 0x22
	type line struct {
		service string
		trace   pcommon.TraceID
		at      time.Time
		msg     string
	}
	batch := func(lines ...line) pipeline.Logs {
		ld := plog.NewLogs()
		for _, l := range lines {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("service.name", l.service)
			rec := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			rec.SetTimestamp(pcommon.NewTimestampFromTime(l.at))
			rec.Body().SetStr(l.msg)
			rec.SetTraceID(l.trace)
		}
		return pipeline.LogsOf(ld)
	}
	first := []line{
		{"frontend", checkoutID, now.Add(-4 * time.Minute), "checkout started"},
		{"payment", checkoutID, now.Add(-4*time.Minute + 20*time.Millisecond), "card declined"},
		// A shipper's clock two hours behind: far outside the spans' window.
		{"payment", checkoutID, now.Add(-2*time.Hour - 4*time.Minute), "retry scheduled"},
		{"cron", orphan, now.Add(-30 * time.Minute), "nightly job"},
		{"frontend", twin, now.Add(-50 * time.Minute), "another trace, same key"},
		{"frontend", pcommon.TraceID{}, now.Add(-4 * time.Minute), "no trace"},
	}
	second := []line{{"payment", checkoutID, now.Add(-4*time.Minute + 30*time.Millisecond), "refund issued"}}
	for _, b := range []pipeline.Logs{batch(first...), batch(second...)} {
		if err := s.ConsumeLogs(ctx, b); err != nil {
			t.Fatalf("ConsumeLogs: %v", err)
		}
	}
	s.Flush()
	cases := []struct {
		name  string
		trace pcommon.TraceID
		want  []string
	}{
		{"trace with spans", checkoutID, []string{"retry scheduled", "checkout started", "card declined", "refund issued"}},
		{"trace without spans", orphan, []string{"nightly job"}},
		{"trace sharing the key", twin, []string{"another trace, same key"}},
		{"trace without lines", homeID, nil},
	}
	poll.UntilNil(t, 30*time.Second, func() error {
		for _, c := range cases {
			got, err := s.TraceLogs(ctx, []pcommon.TraceID{c.trace}, 100)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			var msgs []string
			for _, e := range got {
				msgs = append(msgs, e.Body)
			}
			if !slices.Equal(msgs, c.want) {
				return fmt.Errorf("%s: TraceLogs = %q, want %q (oldest first)", c.name, msgs, c.want)
			}
		}
		return nil
	})
	got, err := s.TraceLogs(ctx, []pcommon.TraceID{checkoutID}, 2)
	if err != nil || len(got) != 2 || got[0].Body != "retry scheduled" || got[1].Body != "checkout started" {
		t.Errorf("TraceLogs(checkout, limit 2) = %+v, %v; want its 2 oldest lines", got, err)
	}
}

// traces builds the suite's batch, identified as the pipeline would.
func traces(now time.Time) pipeline.Traces {
	td := ptrace.NewTraces()
	var resources []pipeline.Resource
	addResource := func(service string, attrs map[string]any) ptrace.ScopeSpans {
		rs := td.ResourceSpans().AppendEmpty()
		_ = rs.Resource().Attributes().FromRaw(mergeAttrs(map[string]any{"service.name": service}, attrs))
		resources = append(resources, pipeline.Resource{Service: service})
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("spanstoretest")
		ss.Scope().SetVersion("1.0")
		return ss
	}
	span := func(ss ptrace.ScopeSpans, trace pcommon.TraceID, id, parent byte, name string, kind ptrace.SpanKind, start time.Time, d time.Duration) ptrace.Span {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(trace)
		sp.SetSpanID(pcommon.SpanID{trace[15], 0, 0, 0, 0, 0, 0, id})
		if parent != 0 {
			sp.SetParentSpanID(pcommon.SpanID{trace[15], 0, 0, 0, 0, 0, 0, parent})
		}
		sp.SetName(name)
		sp.SetKind(kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(d)))
		return sp
	}

	web := addResource("frontend", map[string]any{"host.name": "web-1", "process.pid": int64(4242)})
	checkout := span(web, checkoutID, 1, 0, "GET /checkout", ptrace.SpanKindServer, now.Add(-4*time.Minute), 120*time.Millisecond)
	checkout.Attributes().PutStr("http.route", "/checkout")
	checkout.Attributes().PutInt("order_id", 1001)
	checkout.Attributes().PutBool("cached", false)
	checkout.Attributes().PutDouble("ratio", 0.25)
	ev := checkout.Events().AppendEmpty()
	ev.SetName("cart loaded")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-4*time.Minute + time.Millisecond)))
	ev.Attributes().PutInt("items", 3)
	home := span(web, homeID, 1, 0, "GET /home", ptrace.SpanKindServer, now.Add(-time.Minute), 5*time.Millisecond)
	home.Status().SetCode(ptrace.StatusCodeOk)

	pay := addResource("payment", nil)
	charge := span(pay, checkoutID, 2, 1, "charge", ptrace.SpanKindClient, now.Add(-4*time.Minute+10*time.Millisecond), 80*time.Millisecond)
	charge.Status().SetCode(ptrace.StatusCodeError)
	charge.Status().SetMessage("card declined")
	charge.Attributes().PutStr("peer.service", "bank")
	charge.Attributes().PutStr("zip", "007") // a string that reads almost as an int

	inv := addResource("inventory", map[string]any{"cloud.region": "eu-west-1"})
	reserve := span(inv, reserveID, 1, 0, "reserve", ptrace.SpanKindInternal, now.Add(-3*time.Minute), 300*time.Millisecond)
	reserve.Attributes().PutStr("region", "eu")

	old := addResource("legacy", nil)
	span(old, legacyID, 1, 0, "poll", ptrace.SpanKindConsumer, now.Add(-2*time.Minute), 50*time.Millisecond)

	return pipeline.Traces{Traces: td, Resources: resources}
}

func mergeAttrs(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// describe lists the spans of one trace in td as comparable lines: every
// field, attribute (with its type), resource attribute, scope and event.
func describe(td ptrace.Traces, id pcommon.TraceID) []string {
	var out []string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource()
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			scope := sss.At(j).Scope()
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if sp.TraceID() != id {
					continue
				}
				var events []string
				for e := 0; e < sp.Events().Len(); e++ {
					ev := sp.Events().At(e)
					events = append(events, fmt.Sprintf("%s@%d%s", ev.Name(), ev.Timestamp(), attrs(ev.Attributes())))
				}
				out = append(out, fmt.Sprintf("span=%s parent=%s name=%q kind=%s start=%d end=%d status=%s/%q attrs=%s resource=%s scope=%s/%s events=%v",
					sp.SpanID(), sp.ParentSpanID(), sp.Name(), sp.Kind(), sp.StartTimestamp(), sp.EndTimestamp(),
					sp.Status().Code(), sp.Status().Message(), attrs(sp.Attributes()), attrs(res.Attributes()), scope.Name(), scope.Version(), events))
			}
		}
	}
	sort.Strings(out)
	return out
}

// attrs prints a map sorted by key, each value with its type.
func attrs(m pcommon.Map) string {
	var kv []string
	m.Range(func(k string, v pcommon.Value) bool {
		kv = append(kv, fmt.Sprintf("%s=%s:%s", k, v.Type(), v.AsString()))
		return true
	})
	sort.Strings(kv)
	return "{" + strings.Join(kv, " ") + "}"
}

// sameIDs compares trace IDs found with those wanted; the order of a
// search's answer is checked apart (FindTracesNewestFirst).
func sameIDs(got, want []pcommon.TraceID) bool {
	if len(got) != len(want) {
		return false
	}
	g := make([]string, len(got))
	w := make([]string, len(want))
	for i := range got {
		g[i] = got[i].String()
	}
	for i := range want {
		w[i] = want[i].String()
	}
	sort.Strings(g)
	sort.Strings(w)
	return slices.Equal(g, w)
}

// newestLogsOfMany: with far more matches than asked for, a search still
// returns exactly the newest (or, ascending, the oldest) lines, in order,
// wherever they lie: a burst in one millisecond, a sparse stretch of
// hours, lines sharing a nanosecond, a range's edges.
func newestLogsOfMany(t *testing.T, s Store, now time.Time) {
	ctx := t.Context()
	now = now.Truncate(time.Second)
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "ledger")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	var times []time.Time
	add := func(at time.Time, n int, step time.Duration) {
		for i := range n {
			ts := at.Add(time.Duration(i) * step)
			rec := recs.AppendEmpty()
			rec.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			rec.Body().SetStr(fmt.Sprintf("entry %d", ts.UnixNano()))
			rec.Attributes().PutStr("kind", "many")
			times = append(times, ts)
		}
	}
	add(now.Add(-20*time.Hour), 40, 30*time.Minute)   // sparse: hours apart
	add(now.Add(-3*time.Hour), 300, time.Microsecond) // a burst
	add(now.Add(-2*time.Hour), 30, 0)                 // one nanosecond
	add(now.Add(-time.Hour), 200, 7*time.Second)      // steady
	add(now.Add(-time.Minute), 150, time.Millisecond) // another burst
	if err := s.ConsumeLogs(ctx, pipeline.LogsOf(ld)); err != nil {
		t.Fatalf("ConsumeLogs: %v", err)
	}
	s.Flush()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	all := spanstore.LogQuery{Service: "ledger", Fields: []spanstore.FieldFilter{{Name: "kind", Value: "many"}}, Limit: spanstore.MaxLogLimit, Start: now.Add(-21 * time.Hour)}
	poll.UntilNil(t, 30*time.Second, func() error {
		got, err := s.Logs(ctx, all)
		if err != nil || len(got) < min(len(times), spanstore.MaxLogLimit) {
			return fmt.Errorf("%d of the lines searchable, %v", len(got), err)
		}
		return nil
	})

	check := func(name string, q spanstore.LogQuery) {
		t.Helper()
		got, err := s.Logs(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var want []time.Time
		for _, ts := range times {
			if !ts.Before(q.Start) && (q.End.IsZero() || !ts.After(q.End)) {
				want = append(want, ts)
			}
		}
		if !q.Ascending {
			slices.Reverse(want)
		}
		want = want[:min(len(want), q.Limit)]
		if len(got) != len(want) {
			t.Fatalf("%s: %d lines, want %d", name, len(got), len(want))
		}
		for i := range got {
			if !got[i].Time.Equal(want[i]) {
				t.Fatalf("%s: line %d at %v, want %v", name, i, got[i].Time, want[i])
			}
		}
	}
	for _, limit := range []int{1, 10, 100, 400, 1000} {
		for _, asc := range []bool{false, true} {
			name := fmt.Sprintf("limit %d ascending %v", limit, asc)
			q := all
			q.Limit, q.Ascending = limit, asc
			check(name, q)
			q.Start, q.End = now.Add(-150*time.Minute), now.Add(-30*time.Minute)
			check(name+", a range", q)
			q.Start, q.End = now.Add(-20*time.Hour), now.Add(-2*time.Hour)
			check(name+", ending in the nanosecond", q)
		}
	}
}
