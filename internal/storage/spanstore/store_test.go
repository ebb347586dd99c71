package spanstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sampleTrace builds a two-service trace with every kind of value the OTLP
// model has.
func sampleTrace(traceByte byte, start time.Time, failing bool) ptrace.Traces {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{traceByte, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	rs.Resource().Attributes().PutStr("host.name", "web-1")
	rs.Resource().Attributes().PutInt("process.pid", 4242)
	rs.Resource().Attributes().PutStr("deployment.environment", "")
	rs.Resource().Attributes().PutStr("build.number", "1234") // a string that reads as an int
	rs.Resource().Attributes().PutBool("container.privileged", false)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otelhttp")
	ss.Scope().SetVersion("0.72.0")
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(tid)
	root.SetSpanID(pcommon.SpanID{traceByte, 0, 0, 0, 0, 0, 0, 1})
	root.SetName("GET /checkout")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(120 * time.Millisecond)))
	a := root.Attributes()
	a.PutStr("http.route", "/checkout")
	a.PutInt("order_id", 1001)
	a.PutBool("cached", false)
	a.PutDouble("ratio", 0.25)
	a.PutEmptyBytes("blob").FromRaw([]byte{0, 1, 2})
	_ = a.PutEmptySlice("tags").FromRaw([]any{"a", "b"})
	a.PutStr("empty", "")
	// Strings that read as integers stay strings; integers of any sign stay ints.
	a.PutStr("http.status_text", "200")
	a.PutStr("zip", "007")
	a.PutInt("delta", -7)
	ev := root.Events().AppendEmpty()
	ev.SetName("cart loaded")
	ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	ev.Attributes().PutInt("items", 3)
	// An event stamped before its span's start (clock skew) keeps its time.
	early := root.Events().AppendEmpty()
	early.SetName("queued")
	early.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(-time.Second)))
	link := root.Links().AppendEmpty()
	link.SetTraceID(pcommon.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	link.SetSpanID(pcommon.SpanID{8, 8, 8, 8, 8, 8, 8, 8})
	root.TraceState().FromRaw("th=8")

	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "payment")
	child := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	child.SetTraceID(tid)
	child.SetSpanID(pcommon.SpanID{traceByte, 0, 0, 0, 0, 0, 0, 2})
	child.SetParentSpanID(root.SpanID())
	child.SetName("charge")
	child.SetKind(ptrace.SpanKindServer)
	child.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
	child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(60 * time.Millisecond)))
	if failing {
		child.Status().SetCode(ptrace.StatusCodeError)
		child.Status().SetMessage("card declined")
	}
	return td
}

func TestRoundTripKeepsEverything(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	want := sampleTrace(1, start, true)
	if err := s.ConsumeTraces(ctx, pipeline.TracesOf(want)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	got, err := s.GetTrace(ctx, pcommon.TraceID{1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if err != nil {
		t.Fatal(err)
	}
	if got.SpanCount() != 2 {
		t.Fatalf("got %d spans, want 2", got.SpanCount())
	}
	for i := 0; i < want.ResourceSpans().Len(); i++ {
		w := want.ResourceSpans().At(i)
		svc, _ := w.Resource().Attributes().Get("service.name")
		var g ptrace.ResourceSpans
		for j := 0; j < got.ResourceSpans().Len(); j++ {
			if v, _ := got.ResourceSpans().At(j).Resource().Attributes().Get("service.name"); v.Str() == svc.Str() {
				g = got.ResourceSpans().At(j)
			}
		}
		if g == (ptrace.ResourceSpans{}) {
			t.Fatalf("service %s missing", svc.Str())
		}
		if !w.Resource().Attributes().Equal(g.Resource().Attributes()) {
			t.Errorf("%s resource: got %v want %v", svc.Str(), g.Resource().Attributes().AsRaw(), w.Resource().Attributes().AsRaw())
		}
		ws, gs := w.ScopeSpans().At(0), g.ScopeSpans().At(0)
		if ws.Scope().Name() != gs.Scope().Name() || ws.Scope().Version() != gs.Scope().Version() {
			t.Errorf("scope: got %s/%s", gs.Scope().Name(), gs.Scope().Version())
		}
		wsp, gsp := ws.Spans().At(0), gs.Spans().At(0)
		if !wsp.Attributes().Equal(gsp.Attributes()) {
			t.Errorf("attributes: got %v want %v", gsp.Attributes().AsRaw(), wsp.Attributes().AsRaw())
		}
		// Compare the rest field by field via a copy with equal attributes.
		cp := ptrace.NewSpan()
		gsp.CopyTo(cp)
		wsp.Attributes().CopyTo(cp.Attributes())
		wcp := ptrace.NewSpan()
		wsp.CopyTo(wcp)
		if !spanEqual(wcp, cp) {
			t.Errorf("span %s differs after the round trip", wsp.Name())
		}
	}
}

func eventsEqual(a, b ptrace.SpanEventSlice) bool {
	for i := 0; i < a.Len(); i++ {
		if a.At(i).Name() != b.At(i).Name() || a.At(i).Timestamp() != b.At(i).Timestamp() ||
			!a.At(i).Attributes().Equal(b.At(i).Attributes()) {
			return false
		}
	}
	return true
}

func spanEqual(a, b ptrace.Span) bool {
	return a.TraceID() == b.TraceID() && a.SpanID() == b.SpanID() && a.ParentSpanID() == b.ParentSpanID() &&
		a.Name() == b.Name() && a.Kind() == b.Kind() && a.StartTimestamp() == b.StartTimestamp() &&
		a.EndTimestamp() == b.EndTimestamp() && a.Status().Code() == b.Status().Code() &&
		a.Status().Message() == b.Status().Message() && a.TraceState().AsRaw() == b.TraceState().AsRaw() &&
		a.Events().Len() == b.Events().Len() && a.Links().Len() == b.Links().Len() &&
		eventsEqual(a.Events(), b.Events()) &&
		(a.Links().Len() == 0 || a.Links().At(0).TraceID() == b.Links().At(0).TraceID())
}

func TestSearch(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now().Add(-time.Minute)
	for i := byte(1); i <= 5; i++ {
		if err := s.ConsumeTraces(ctx, pipeline.TracesOf(sampleTrace(i, now.Add(time.Duration(i)*time.Second), i == 3))); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()

	sums, err := s.FindTraces(ctx, TraceQuery{Service: "frontend", Attributes: map[string]string{"order_id": "1001"}, Start: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 5 {
		t.Fatalf("attribute search found %d traces, want 5", len(sums))
	}
	if sums[0].TraceID[:2] != "05" || sums[0].RootService != "frontend" || sums[0].RootOperation != "GET /checkout" ||
		sums[0].SpanCount != 2 || len(sums[0].Services) != 2 || sums[0].DurationUS != 120_000 {
		t.Errorf("newest summary = %+v", sums[0])
	}

	// A resource attribute, typed int, matches as text; a wrong value does not.
	sums, err = s.FindTraces(ctx, TraceQuery{Attributes: map[string]string{"process.pid": "4242", "host.name": "web-1"}, Start: now.Add(-time.Hour)})
	if err != nil || len(sums) != 5 {
		t.Fatalf("resource attribute search found %d traces (%v), want 5", len(sums), err)
	}
	sums, err = s.FindTraces(ctx, TraceQuery{Attributes: map[string]string{"host.name": "web-"}, Start: now.Add(-time.Hour)})
	if err != nil || len(sums) != 0 {
		t.Fatalf("a prefix of a resource attribute value matched %d traces (%v)", len(sums), err)
	}

	sums, err = s.FindTraces(ctx, TraceQuery{ErrorsOnly: true, Start: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].TraceID[:2] != "03" || !sums[0].Error {
		t.Fatalf("errors-only search = %+v", sums)
	}

	sums, err = s.FindTraces(ctx, TraceQuery{MinDuration: 100 * time.Millisecond, Limit: 2, Start: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].TraceID[:2] != "05" || sums[1].TraceID[:2] != "04" {
		t.Fatalf("duration search with limit 2 = %+v", sums)
	}
	sums, err = s.FindTraces(ctx, TraceQuery{Service: "payment", MaxDuration: 10 * time.Millisecond, Start: now.Add(-time.Hour)})
	if err != nil || len(sums) != 0 {
		t.Fatalf("max duration search = %+v, %v", sums, err)
	}

	svcs, err := s.Services(ctx)
	if err != nil || len(svcs) != 2 || svcs[0] != "frontend" || svcs[1] != "payment" {
		t.Fatalf("services = %v, %v", svcs, err)
	}
	ops, err := s.Operations(ctx, "frontend")
	if err != nil || len(ops) != 1 || ops[0] != (Operation{Name: "GET /checkout", SpanKind: "server"}) {
		t.Fatalf("operations = %v, %v", ops, err)
	}
	if _, err := s.GetTrace(ctx, pcommon.TraceID{0xee}); err != ErrNotFound {
		t.Fatalf("unknown trace: err = %v, want ErrNotFound", err)
	}
}

func TestSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(sampleTrace(7, time.Now().Add(-time.Minute), false))); err != nil {
		t.Fatal(err)
	}
	_ = s.Close() // no explicit flush: Close must persist what was acknowledged
	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // the store open when the test ends
	td, err := s.GetTrace(context.Background(), pcommon.TraceID{7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if err != nil || td.SpanCount() != 2 {
		t.Fatalf("after restart: %d spans, %v", td.SpanCount(), err)
	}
	// Several traces at once, from different streams of the trace-ID index.
	other := sampleTrace(8, time.Now().Add(-time.Minute), false)
	otherID := other.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()
	otherID[10] = 0xf0 // another index stream than trace 7's (suffix 0a...)
	for i := 0; i < other.ResourceSpans().Len(); i++ {
		spans := other.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			spans.At(j).SetTraceID(otherID)
		}
	}
	if err := s.ConsumeTraces(context.Background(), pipeline.TracesOf(other)); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	td, err = s.GetTraces(context.Background(), []pcommon.TraceID{{7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, otherID})
	if err != nil || td.SpanCount() != 4 {
		t.Fatalf("two traces after restart: %d spans, want 4 (%v)", td.SpanCount(), err)
	}
}

// A service whose attribute keys never repeat (IDs in keys) must not push
// logstorage past its column limit, where it would drop rows: the keys over
// the budget are kept in the overflow field and read back like any other.
func TestAttributeKeyExplosionLosesNothing(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)
	const spans = 3000
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "exploding")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < spans; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xab, byte(i >> 8), byte(i)})
		sp.SetSpanID(pcommon.SpanID{1, byte(i >> 8), byte(i)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		sp.Attributes().PutInt("request."+strconv.Itoa(i), int64(i))
	}
	if err := s.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	for _, i := range []int{0, 899, 900, 2999} {
		got, err := s.GetTrace(ctx, pcommon.TraceID{0xab, byte(i >> 8), byte(i)})
		if err != nil {
			t.Fatalf("span %d lost: %v", i, err)
		}
		v, ok := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get("request." + strconv.Itoa(i))
		if !ok || v.Int() != int64(i) {
			t.Errorf("span %d: attribute = %v (%v)", i, v.AsRaw(), ok)
		}
	}
}

// A search that the newest window cannot satisfy goes on into older data,
// keeping newest-first order across windows.
func TestSearchWidensIntoOlderData(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	for i, age := range []time.Duration{3 * time.Hour, 2 * time.Hour, 30 * time.Minute, time.Minute} {
		if err := s.ConsumeTraces(ctx, pipeline.TracesOf(sampleTrace(byte(i+1), now.Add(-age), false))); err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
	sums, err := s.FindTraces(ctx, TraceQuery{Service: "frontend", Start: now.Add(-4 * time.Hour), Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sum := range sums {
		got = append(got, sum.TraceID[:2])
	}
	if strings.Join(got, ",") != "04,03,02" {
		t.Fatalf("found %v, want the three newest traces 04,03,02", got)
	}
}

// Only the text strconv.FormatInt writes reads back as an int; any other
// text stays the string it was.
func TestParseCanonicalInt(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"0": true, "7": true, "-7": true, "200": true, "9223372036854775807": true, "-9223372036854775808": true,
		"": false, "-": false, "-0": false, "007": false, "+7": false, "1_000": false, " 7": false,
		"9223372036854775808": false, "7a": false,
	} {
		if n, ok := parseCanonicalInt(s); ok != want || ok && strconv.FormatInt(n, 10) != s {
			t.Errorf("parseCanonicalInt(%q) = %d, %v; want ok %v", s, n, ok, want)
		}
	}
}

// TestSlowestSpansAndMatched: a service's spans ranked by duration as
// numbers (9 ms after 100 ms, which text order would swap), the error's
// message kept; a search with conditions names the span that matched.
func TestSlowestSpansAndMatched(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := context.Background()
	now := time.Now().Add(-time.Minute)
	for i, d := range []time.Duration{9 * time.Millisecond, 100 * time.Millisecond, 1500 * time.Microsecond, 20 * time.Millisecond} {
		td := sampleTrace(byte(i+1), now.Add(time.Duration(i)*time.Second), i == 1)
		charge := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0)
		charge.SetEndTimestamp(charge.StartTimestamp() + pcommon.Timestamp(d))
		if err := s.ConsumeTraces(ctx, pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
	}
	// A probe is stored but is no service.
	probe := sampleTrace(9, now, false)
	for i := range probe.ResourceSpans().Len() {
		probe.ResourceSpans().At(i).Resource().Attributes().PutStr("service.name", pipeline.ProbeService)
	}
	if err := s.ConsumeTraces(ctx, pipeline.TracesOf(probe)); err != nil {
		t.Fatal(err)
	}
	s.Flush()

	ranked, err := s.SlowestSpans(ctx, SpanQuery{Service: "payment", Start: now.Add(-time.Hour), Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range ranked {
		got = append(got, r.DurationUS)
	}
	if !slices.Equal(got, []int64{100_000, 20_000, 9_000}) {
		t.Fatalf("slowest payment spans: %v, want 100000, 20000, 9000 µs", got)
	}
	if r := ranked[0]; r.Name != "charge" || r.Kind != "server" || !r.Error || r.StatusMessage != "card declined" || r.SpanID != "0200000000000002" || r.TraceID[:2] != "02" {
		t.Errorf("slowest span: %+v", r)
	}
	if _, err := s.SlowestSpans(ctx, SpanQuery{}); !errors.Is(err, ErrBadQuery) {
		t.Errorf("no service: %v", err)
	}

	sums, err := s.FindTraces(ctx, TraceQuery{Service: "payment", MinDuration: 50 * time.Millisecond, Start: now.Add(-time.Hour)})
	if err != nil || len(sums) != 1 {
		t.Fatalf("search: %+v, %v", sums, err)
	}
	if m := sums[0].Matched; m == nil || *m != (MatchedSpan{SpanID: "0200000000000002", Service: "payment", Name: "charge"}) {
		t.Errorf("matched span: %+v", m)
	}
	if sums, _ := s.FindTraces(ctx, TraceQuery{Start: now.Add(-time.Hour)}); len(sums) == 0 || sums[0].Matched != nil {
		t.Errorf("a search by time alone names a matched span: %+v", sums)
	}
	if svcs, _ := s.Services(ctx); slices.Contains(svcs, pipeline.ProbeService) {
		t.Errorf("the probe is listed as a service: %v", svcs)
	}
}
