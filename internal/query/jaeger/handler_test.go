package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/traceid"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// swTraceID is a trace ID as skywalking-go logs it.
const swTraceID = "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001"

// handOverSpan is one span in its own trace, as a receiver would hand it to
// the store (SkyWalking conversion is not this package's; only its ID
// mapping matters here).
func handOverSpan(id pcommon.TraceID, service, name string, start time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetTraceID(id)
	s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	s.SetName(name)
	s.SetKind(ptrace.SpanKindServer)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	return td
}

type fixture struct {
	srv    *httptest.Server
	api    http.Handler // what srv serves
	sc     scenario
	legacy pcommon.TraceID // a 64-bit Jaeger-style ID
}

// newFixture stores the SDK scenario, a SkyWalking-ID trace and a 64-bit-ID
// trace in a real embedded span store and serves the API over it the way
// the server mounts it, under /jaeger.
func newFixture(t *testing.T, deps DependenciesReader) fixture {
	t.Helper()
	store, err := spanstore.Open(spanstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := fixture{sc: sdkScenario(t, time.Now().Add(-10*time.Minute)), legacy: pcommon.TraceID{8: 0xde, 9: 0xad, 15: 1}}
	swID, _ := traceid.FromString(swTraceID)
	for _, td := range []ptrace.Traces{
		f.sc.td,
		handOverSpan(swID, "team a/billing", "/charge", time.Now().Add(-5*time.Minute)),
		handOverSpan(f.legacy, "legacy", "poll", time.Now().Add(-5*time.Minute)),
	} {
		if err := store.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
	}
	store.Flush()
	f.api = http.StripPrefix("/jaeger", NewHandler(store, deps))
	f.srv = httptest.NewServer(f.api)
	t.Cleanup(f.srv.Close)
	return f
}

// get fetches path and decodes the envelope.
func (f fixture) get(t *testing.T, path string) (int, obj, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	var env obj
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("GET %s: %d %s: not JSON: %v", path, resp.StatusCode, body, err)
	}
	for _, k := range []string{"data", "total", "limit", "offset", "errors"} {
		if _, ok := env[k]; !ok {
			t.Errorf("GET %s: envelope lacks %q: %s", path, k, body)
		}
	}
	return resp.StatusCode, env, string(body)
}

func (f fixture) traceIDs(t *testing.T, path string) []string {
	t.Helper()
	code, env, body := f.get(t, path)
	if code != http.StatusOK || env["errors"] != nil {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	data, ok := env["data"].([]any)
	if !ok {
		t.Fatalf("GET %s: data is %T, want an array: %s", path, env["data"], body)
	}
	ids := []string{}
	for _, tr := range data {
		ids = append(ids, tr.(obj)["traceID"].(string))
	}
	return ids
}

func TestHandlerServicesAndOperations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)

	code, env, body := f.get(t, "/jaeger/api/services")
	want := []any{"checkout", "inventory", "legacy", "team a/billing"}
	if code != 200 || !reflect.DeepEqual(env["data"], want) || env["total"] != float64(4) || env["errors"] != nil {
		t.Errorf("services: %d %s", code, body)
	}

	code, env, body = f.get(t, "/jaeger/api/services/checkout/operations")
	if want := []any{"GET /orders", "SELECT orders", "retry"}; code != 200 || !reflect.DeepEqual(env["data"], want) || env["total"] != float64(3) {
		t.Errorf("service operations: %d %s", code, body)
	}
	// Grafana escapes the service name into the path.
	code, env, body = f.get(t, "/jaeger/api/services/"+url.PathEscape("team a/billing")+"/operations")
	if code != 200 || !reflect.DeepEqual(env["data"], []any{"/charge"}) {
		t.Errorf("escaped service operations: %d %s", code, body)
	}

	code, env, body = f.get(t, "/jaeger/api/operations?service=checkout")
	wantOps := []any{
		obj{"name": "GET /orders", "spanKind": "server"},
		obj{"name": "SELECT orders", "spanKind": "client"},
		obj{"name": "retry", "spanKind": "internal"},
	}
	if code != 200 || !reflect.DeepEqual(env["data"], wantOps) || env["total"] != float64(3) {
		t.Errorf("operations: %d %s", code, body)
	}
	code, env, body = f.get(t, "/jaeger/api/operations?service=checkout&spanKind=client")
	if code != 200 || !reflect.DeepEqual(env["data"], wantOps[1:2]) || env["total"] != float64(1) {
		t.Errorf("client operations: %d %s", code, body)
	}
	code, env, body = f.get(t, "/jaeger/api/operations?service=nobody")
	if code != 200 || !reflect.DeepEqual(env["data"], []any{}) {
		t.Errorf("operations of an unknown service: %d %s, want data []", code, body)
	}
}

func TestHandlerSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := f.sc.root.TraceID().String()
	window := fmt.Sprintf("&start=%d&end=%d", f.sc.base.Add(-time.Minute).UnixMicro(), time.Now().UnixMicro())

	// Grafana's search, then its variations.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"service=checkout&limit=20" + window, []string{id}},
		{"service=checkout&lookback=1h", []string{id}},
		{"service=checkout", []string{id}},
		{"service=checkout&operation=SELECT+orders" + window, []string{id}},
		{"service=checkout&operation=nothing" + window, []string{}},
		{"service=inventory&tags=" + url.QueryEscape(`{"process.pid":42}`) + window, []string{id}},
		{"service=checkout&tags=" + url.QueryEscape(`{"error":"true"}`) + window, []string{id}},
		{"service=checkout&tags=" + url.QueryEscape(`{"http.method":"POST"}`) + window, []string{}},
		{"service=checkout&tag=http.method:GET&tag=order.count:3" + window, []string{id}},
		{"service=checkout&minDuration=200ms&maxDuration=1s" + window, []string{id}},
		{"service=checkout&minDuration=1s" + window, []string{}},
		{"service=checkout" + fmt.Sprintf("&start=%d&end=%d", f.sc.base.Add(-time.Hour).UnixMicro(), f.sc.base.Add(-30*time.Minute).UnixMicro()), []string{}},
		{"service=legacy", []string{traceIDHex(f.legacy)}},
	} {
		if got := f.traceIDs(t, "/jaeger/api/traces?"+tc.query); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("search %s: got %v, want %v", tc.query, got, tc.want)
		}
	}

	// A found trace is the whole trace in Jaeger's envelope, total left 0.
	_, env, body := f.get(t, "/jaeger/api/traces?service=inventory"+window)
	data := env["data"].([]any)
	if len(data) != 1 || len(data[0].(obj)["spans"].([]any)) != 4 || env["total"] != float64(0) || env["limit"] != float64(0) || env["offset"] != float64(0) {
		t.Errorf("search answer: %s", body)
	}

	// traceID parameters fetch those traces and ignore the rest; unknown
	// ones come back as errors naming them.
	unknown := strings.Repeat("f", 32)
	code, env, body := f.get(t, "/jaeger/api/traces?traceID="+id+"&traceID="+unknown+"&traceID="+url.QueryEscape(swTraceID))
	if code != 200 || len(env["data"].([]any)) != 2 {
		t.Fatalf("search by traceID: %d %s", code, body)
	}
	if want := []any{obj{"msg": "trace not found", "traceID": unknown}}; !reflect.DeepEqual(env["errors"], want) {
		t.Errorf("search by traceID errors = %v, want %v", env["errors"], want)
	}
}

// Searches over times far outside the retention (issue 18: start=1 and end
// in the year 3000 kept a core busy for good) answer promptly, as searches
// over the part the store holds.
func TestHandlerSearchFarOutsideRetention(t *testing.T) {
	f := newFixture(t, nil)
	id := f.sc.root.TraceID().String()
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"service=checkout&start=1&end=32503680000000000", []string{id}},  // 1970 to 3000
		{"service=checkout&start=1&end=253402300799999999", []string{id}}, // to the last µs of 9999
		{"service=checkout&lookback=36500d", []string{id}},
		{"service=checkout&lookback=876000h&end=32503680000000000", []string{}}, // 2900 to 3000
		{"service=checkout&start=1&end=2", []string{}},
		{"service=checkout&start=32503680000000000", []string{}}, // start after now, the end's default
	} {
		req := httptest.NewRequest(http.MethodGet, "/jaeger/api/traces?"+tc.query, nil)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.api.ServeHTTP(rec, req)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("search %s: no answer after 5 s", tc.query)
		}
		var env struct {
			Data []struct {
				TraceID string `json:"traceID"`
			} `json:"data"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || rec.Code != http.StatusOK {
			t.Errorf("search %s: %d %s", tc.query, rec.Code, rec.Body)
			continue
		}
		got := []string{}
		for _, tr := range env.Data {
			got = append(got, tr.TraceID)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("search %s: got %v, want %v", tc.query, got, tc.want)
		}
	}
}

// TestHandlerSearchManyTraces reads more traces than fetchConcurrency and
// checks they come back whole, newest first, cut at the limit.
func TestHandlerSearchManyTraces(t *testing.T) {
	t.Parallel()
	store, err := spanstore.Open(spanstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	base := time.Now().Add(-30 * time.Minute)
	var newestFirst []string
	for i := range 30 {
		id := pcommon.TraceID{0x7e, byte(i), 15: 1}
		if err := store.ConsumeTraces(context.Background(), pipeline.TracesOf(handOverSpan(id, "many", "op", base.Add(time.Duration(i)*time.Second)))); err != nil {
			t.Fatal(err)
		}
		newestFirst = append([]string{traceIDHex(id)}, newestFirst...)
	}
	store.Flush()
	srv := httptest.NewServer(NewHandler(store, nil))
	defer srv.Close()
	f := fixture{srv: srv}
	for _, limit := range []int{1, 20, 100} {
		got := f.traceIDs(t, fmt.Sprintf("/api/traces?service=many&lookback=1h&limit=%d", limit))
		want := newestFirst[:min(limit, len(newestFirst))]
		if !reflect.DeepEqual(got, want) {
			t.Errorf("limit %d: got %v\nwant %v", limit, got, want)
		}
	}
}

func TestHandlerGetTrace(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := f.sc.root.TraceID().String()
	swID, _ := traceid.FromString(swTraceID)
	for _, tc := range []struct{ path, want string }{
		{id, id},
		{strings.ToUpper(id), id},
		{url.PathEscape(swTraceID), traceIDHex(swID)},
		{"dead000000000001", traceIDHex(f.legacy)}, // 64-bit form, left-padded
		{"0000000000000000dead000000000001", traceIDHex(f.legacy)},
	} {
		code, env, body := f.get(t, "/jaeger/api/traces/"+tc.path)
		if code != 200 || env["errors"] != nil {
			t.Errorf("GET trace %s: %d %s", tc.path, code, body)
			continue
		}
		data := env["data"].([]any)
		if len(data) != 1 || data[0].(obj)["traceID"] != tc.want {
			t.Errorf("GET trace %s: %s, want trace %s", tc.path, body, tc.want)
		}
	}

	// Through the store, the trace reads exactly as translated straight from
	// what the SDK sent.
	_, env, _ := f.get(t, "/jaeger/api/traces/"+id)
	if got, want := env["data"].([]any)[0], asJSON(t, FromTraces(f.sc.td)[0]); !reflect.DeepEqual(got, want) {
		gotJSON, _ := json.MarshalIndent(got, "", " ")
		wantJSON, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("stored trace differs from the SDK's:\n%s\nwant\n%s", gotJSON, wantJSON)
	}

	code, _, body := f.get(t, "/jaeger/api/traces/"+strings.Repeat("1", 32))
	if want := `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}`; code != 404 || body != want {
		t.Errorf("unknown trace: %d %s\nwant 404 %s", code, body, want)
	}
	code, env, body = f.get(t, "/jaeger/api/traces/"+strings.Repeat("0", 32))
	if code != 400 || !strings.Contains(env["errors"].([]any)[0].(obj)["msg"].(string), "all zeros") {
		t.Errorf("zero trace ID: %d %s", code, body)
	}
}

func TestHandlerBadParameters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct{ path, msg string }{
		{"/jaeger/api/traces", "parameter 'service' is required"},
		{"/jaeger/api/traces?service=a&start=yesterday", "unable to parse param 'start'"},
		{"/jaeger/api/traces?service=a&end=-5", "unable to parse param 'end'"},
		{"/jaeger/api/traces?service=a&start=2000&end=1000", "'start' must not be after 'end'"},
		{"/jaeger/api/traces?service=a&start=-1", "unable to parse param 'start'"},
		{"/jaeger/api/traces?service=a&start=0", "unable to parse param 'start'"},
		{"/jaeger/api/traces?service=a&end=253402300800000000", "unable to parse param 'end': 253402300800000000 µs since the epoch is after the year 9999"},
		{"/jaeger/api/traces?service=a&start=1&end=9223372036854775807", "unable to parse param 'end'"},
		{"/jaeger/api/traces?service=a&start=9223372036854775807", "unable to parse param 'start'"},
		{"/jaeger/api/traces?service=a&end=9223372036854775808", "unable to parse param 'end'"},
		{"/jaeger/api/traces?service=a&lookback=876001h", "unable to parse param 'lookback': 876001h is longer than 36500 days"},
		{"/jaeger/api/traces?service=a&lookback=36501d", "unable to parse param 'lookback'"},
		{"/jaeger/api/traces?service=a&lookback=99999999999h", "unable to parse param 'lookback'"},
		{"/jaeger/api/traces?service=a&lookback=-1h", "unable to parse param 'lookback'"},
		{"/jaeger/api/traces?service=a&lookback=forever", "unable to parse param 'lookback'"},
		{"/jaeger/api/traces?service=a&minDuration=fast", "unable to parse param 'minDuration'"},
		{"/jaeger/api/traces?service=a&minDuration=2s&maxDuration=1s", "'maxDuration' should be greater than 'minDuration'"},
		{"/jaeger/api/traces?service=a&limit=many", "unable to parse param 'limit'"},
		{"/jaeger/api/traces?service=a&limit=100000", "outside 0..1500"},
		{"/jaeger/api/traces?service=a&tags=" + url.QueryEscape(`["x"]`), "malformed 'tags' parameter"},
		{"/jaeger/api/traces?service=a&tags=" + url.QueryEscape(`{"k":{"x":1}}`), `value of "k"`},
		{"/jaeger/api/traces?service=a&tag=novalue", "malformed 'tag' parameter"},
		{"/jaeger/api/traces?service=a&tag=" + strings.Repeat("k", 200) + ":v", "tag key"},
		{"/jaeger/api/traces?traceID=", "empty trace ID"},
		{"/jaeger/api/traces?" + strings.Repeat("traceID=1&", 1501), "1501 traceID parameters, at most 1500"},
		{"/jaeger/api/traces/" + strings.Repeat("x", 300), "longer than 256"},
		{"/jaeger/api/operations", "parameter 'service' is required"},
		{"/jaeger/api/operations?service=a&spanKind=sideways", "unsupported span kind"},
		{"/jaeger/api/dependencies?endTs=now", "unable to parse param 'endTs'"},
		{"/jaeger/api/dependencies?lookback=0", "unable to parse param 'lookback'"},
		{"/jaeger/api/dependencies?endTs=253402300800000", "unable to parse param 'endTs': 253402300800000 ms since the epoch is after the year 9999"},
		{"/jaeger/api/dependencies?endTs=-1", "unable to parse param 'endTs'"},
	} {
		code, env, body := f.get(t, tc.path)
		errs, _ := env["errors"].([]any)
		if code != 400 || env["data"] != nil || len(errs) != 1 {
			t.Errorf("GET %s: %d %s, want 400 with one error", tc.path, code, body)
			continue
		}
		e := errs[0].(obj)
		if e["code"] != float64(400) || !strings.Contains(e["msg"].(string), tc.msg) {
			t.Errorf("GET %s: error %v, want code 400 and a msg containing %q", tc.path, e, tc.msg)
		}
	}
}

// staticDependencies is a DependenciesReader with fixed links, recording the
// window it was asked for.
type staticDependencies struct {
	links    []Dependency
	end      time.Time
	lookback time.Duration
	err      error
}

func (s *staticDependencies) Dependencies(_ context.Context, end time.Time, lookback time.Duration) ([]Dependency, error) {
	s.end, s.lookback = end, lookback
	return s.links, s.err
}

func TestHandlerDependencies(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code, env, body := f.get(t, "/jaeger/api/dependencies?endTs=1700000000000&lookback=3600000")
	if code != 200 || !reflect.DeepEqual(env["data"], []any{}) {
		t.Errorf("dependencies without a reader: %d %s, want data []", code, body)
	}

	deps := &staticDependencies{links: []Dependency{
		{Parent: "checkout", Child: "inventory", CallCount: 3},
		{Parent: "checkout", Child: "payment", CallCount: 1},
		{Parent: "checkout", Child: "inventory", CallCount: 2},
	}}
	f = newFixture(t, deps)
	code, env, body = f.get(t, "/jaeger/api/dependencies?endTs=1700000000000&lookback=3600000")
	want := []any{
		obj{"parent": "checkout", "child": "inventory", "callCount": float64(5)},
		obj{"parent": "checkout", "child": "payment", "callCount": float64(1)},
	}
	if code != 200 || !reflect.DeepEqual(env["data"], want) {
		t.Errorf("dependencies: %d %s", code, body)
	}
	if !deps.end.Equal(time.UnixMilli(1700000000000)) || deps.lookback != time.Hour {
		t.Errorf("asked for end %v lookback %v, want %v and 1h", deps.end, deps.lookback, time.UnixMilli(1700000000000))
	}
	_, env, _ = f.get(t, "/jaeger/api/dependencies?service=payment")
	if !reflect.DeepEqual(env["data"], want[1:]) {
		t.Errorf("dependencies of payment: %v", env["data"])
	}
	if time.Since(deps.end) > time.Minute || deps.lookback != 24*time.Hour {
		t.Errorf("defaults: end %v lookback %v, want now and 24h", deps.end, deps.lookback)
	}

	deps.err = errors.New("metric store unavailable")
	code, env, body = f.get(t, "/jaeger/api/dependencies")
	if code != 500 || !strings.Contains(body, "reading dependencies: metric store unavailable") || env["errors"].([]any)[0].(obj)["code"] != float64(500) {
		t.Errorf("failing dependencies: %d %s", code, body)
	}
}

// brokenReader fails every call, as a store that lost its disk would.
type brokenReader struct{}

var errBroken = errors.New("disk gone")

func (brokenReader) Services(context.Context) ([]string, error) { return nil, errBroken }
func (brokenReader) Operations(context.Context, string) ([]spanstore.Operation, error) {
	return nil, errBroken
}
func (brokenReader) GetTrace(context.Context, pcommon.TraceID) (ptrace.Traces, error) {
	return ptrace.Traces{}, errBroken
}
func (brokenReader) GetTraces(context.Context, []pcommon.TraceID) (ptrace.Traces, error) {
	return ptrace.Traces{}, errBroken
}
func (brokenReader) FindTraceIDs(context.Context, spanstore.TraceQuery) ([]pcommon.TraceID, error) {
	return nil, errBroken
}
func (brokenReader) FindTraces(context.Context, spanstore.TraceQuery) ([]spanstore.TraceSummary, error) {
	return nil, errBroken
}
func (brokenReader) SlowestSpans(context.Context, spanstore.SpanQuery) ([]spanstore.RankedSpan, error) {
	return nil, errBroken
}

func TestHandlerStoreErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler(brokenReader{}, nil))
	defer srv.Close()
	for _, path := range []string{
		"/api/services",
		"/api/services/a/operations",
		"/api/operations?service=a",
		"/api/traces?service=a",
		"/api/traces?traceID=" + strings.Repeat("1", 32),
		"/api/traces/" + strings.Repeat("1", 32),
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || !strings.Contains(string(body), `"code":500`) || !strings.Contains(string(body), "disk gone") {
			t.Errorf("GET %s: %d %s, want 500 naming the cause", path, resp.StatusCode, body)
		}
	}
}

func TestHandlerUnknownEndpoint(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler(brokenReader{}, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/nothing")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"code":404`) {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(srv.URL+"/api/services", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(string(body), `"code":405`) {
		t.Errorf("POST: %d %s", resp.StatusCode, body)
	}
}

func TestHandlerPrettyPrint(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler(brokenReader{}, nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/dependencies?prettyPrint=true")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "{\n    \"data\": [],\n    \"total\": 0,"; !strings.HasPrefix(string(body), want) {
		t.Errorf("pretty body %q, want prefix %q", body, want)
	}
}
