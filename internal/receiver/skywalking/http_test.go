package skywalking

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/traceid"
)

// The bodies below are what agents reporting over HTTP send: the protobuf
// JSON mapping with lowerCamel names and enum names (SkyWalking's HTTP API
// documentation, the Python agent's protocol=http, the Nginx Lua agent).
// Times come as numbers or, from protobuf's JSON printers, as strings.
const (
	segmentJSON = `{
	"traceId": "a12ff60b-5807-463b-a1f8-fb1c8608219e",
	"serviceInstance": "gateway-1",
	"spans": [{
		"operationName": "/ingress/upstream",
		"startTime": 1588664577013,
		"endTime": 1588664577028,
		"spanType": "Exit",
		"spanId": 1,
		"isError": false,
		"parentSpanId": 0,
		"componentId": 6000,
		"peer": "upstream service",
		"spanLayer": "Http"
	}, {
		"operationName": "/ingress",
		"startTime": "1588664577013",
		"tags": [{"key": "http.method", "value": "GET"}, {"key": "http.params", "value": "http://localhost/ingress"}],
		"endTime": "1588664577028",
		"spanType": "Entry",
		"spanId": 0,
		"parentSpanId": -1,
		"isError": false,
		"spanLayer": "Http",
		"componentId": 6000,
		"refs": [{"refType": "CrossProcess", "traceId": "a12ff60b-5807-463b-a1f8-fb1c8608219e", "parentTraceSegmentId": "caller-seg",
			"parentSpanId": 2, "parentService": "web", "parentServiceInstance": "web-1", "parentEndpoint": "/home",
			"networkAddressUsedAtPeer": "gateway:80"}],
		"someFieldANewerAgentAdds": true
	}],
	"service": "gateway",
	"traceSegmentId": "a12ff60b-5807-463b-a1f8-fb1c8608219e"
}`
	propertiesJSON = `{"service": "gateway", "serviceInstance": "gateway-1", "layer": "GENERAL",
		"properties": [{"key": "language", "value": "Lua"}, {"key": "hostname", "value": "gw"}]}`
	keepAliveJSON = `{"service": "gateway", "serviceInstance": "gateway-1"}`
	logsJSON      = `[{"timestamp": 1588664577020, "service": "gateway", "serviceInstance": "gateway-1", "endpoint": "/ingress",
		"body": {"json": {"json": "{\"msg\": \"upstream slow\"}"}},
		"traceContext": {"traceId": "a12ff60b-5807-463b-a1f8-fb1c8608219e", "traceSegmentId": "a12ff60b-5807-463b-a1f8-fb1c8608219e", "spanId": 1},
		"tags": {"data": [{"key": "level", "value": "WARN"}]}}]`
	eventsJSON = `[{"uuid": "e1", "source": {"service": "gateway", "serviceInstance": "gateway-1"}, "name": "Start",
		"type": "Normal", "message": "agent started", "parameters": {"OPTS": "-Xmx1g"}, "startTime": 1588664577000}]`
)

func post(t *testing.T, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpointsTakeTheAgentsJSON(t *testing.T) {
	s := &sink{}
	url := startHTTP(t, s.door(), Options{})

	for _, req := range [][2]string{
		{"/v3/segment", segmentJSON},
		{"/v3/segments", "[" + strings.ReplaceAll(segmentJSON, "gateway", "gw2") + "]"},
		{"/v3/management/reportProperties", propertiesJSON},
		{"/v3/management/keepAlive", keepAliveJSON},
		{"/v3/logs", logsJSON},
		{"/v3/events", eventsJSON},
	} {
		path, body := req[0], req[1]
		code, resp := post(t, url+path, body)
		if code != http.StatusOK || resp != "{}" {
			t.Errorf("POST %s = %d %q, want 200 {}", path, code, resp)
		}
	}

	spans := s.spans()
	if len(spans) != 4 {
		t.Fatalf("stored %d spans, want 2 from /v3/segment and 2 from /v3/segments", len(spans))
	}
	wantTrace, _ := traceid.FromString("a12ff60b-5807-463b-a1f8-fb1c8608219e")
	var entry, exit ptrace.Span
	for _, sp := range spans {
		if sp.TraceID() != wantTrace {
			t.Errorf("span %q trace %v, want %v", sp.Name(), sp.TraceID(), wantTrace)
		}
		switch sp.Name() {
		case "/ingress":
			entry = sp
		case "/ingress/upstream":
			exit = sp
		}
	}
	if entry.ParentSpanID() != traceid.SpanIDFromSegment("caller-seg", 2) || exit.ParentSpanID() != entry.SpanID() {
		t.Errorf("parents: entry %v, exit %v (entry %v)", entry.ParentSpanID(), exit.ParentSpanID(), entry.SpanID())
	}
	if entry.StartTimestamp().AsTime().UnixMilli() != 1588664577013 || entry.Kind() != ptrace.SpanKindServer {
		t.Errorf("entry start %v kind %v", entry.StartTimestamp(), entry.Kind())
	}
	if c, _ := exit.Attributes().Get("sw.component"); c.Str() != "Nginx" {
		t.Errorf("exit component = %q, want Nginx", c.Str())
	}

	hbs := s.heartbeatList()
	if len(hbs) != 2 || hbs[0].Properties["language"] != "Lua" || hbs[0].Layer != "GENERAL" || hbs[1].Properties != nil {
		t.Errorf("heartbeats = %+v", hbs)
	}
	if len(s.logs) != 2 {
		t.Fatalf("log batches = %d, want logs and events", len(s.logs))
	}
	rec := s.logs[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	// The JSON body's message is the line's text (logs correlate on the way in).
	if rec.Body().Str() != "upstream slow" || rec.TraceID() != wantTrace || rec.SeverityText() != "WARN" {
		t.Errorf("log = %q trace %v severity %q", rec.Body().Str(), rec.TraceID(), rec.SeverityText())
	}
	ev := s.logs[1].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if name, _ := ev.Attributes().Get("sw.event.name"); name.Str() != "Start" || ev.Body().Str() != "agent started" {
		t.Errorf("event = %v %q", ev.Attributes().AsRaw(), ev.Body().Str())
	}
}

func TestHTTPErrors(t *testing.T) {
	s := &sink{}
	url := startHTTP(t, s.door(), Options{MaxRecvMsgSize: 4096})

	for name, tc := range map[string]struct {
		path, body string
		code       int
		msg        string
	}{
		"not JSON":          {"/v3/segment", "{", http.StatusBadRequest, "decoding SegmentObject JSON"},
		"wrong type":        {"/v3/segment", `{"spans": 5}`, http.StatusBadRequest, "decoding SegmentObject JSON"},
		"object for array":  {"/v3/segments", segmentJSON, http.StatusBadRequest, "decoding JSON array of SegmentObject"},
		"bad element":       {"/v3/logs", `[{"timestamp": "soon"}]`, http.StatusBadRequest, "element 0 of the LogData array"},
		"no service":        {"/v3/segment", strings.Replace(segmentJSON, `"service": "gateway",`, "", 1), http.StatusBadRequest, "has no service"},
		"unknown enum":      {"/v3/segment", strings.Replace(segmentJSON, `"Exit"`, `"Sideways"`, 1), http.StatusBadRequest, "Sideways"},
		"keepAlive no inst": {"/v3/management/keepAlive", `{"service": "a"}`, http.StatusBadRequest, "has no serviceInstance"},
		"too large":         {"/v3/segments", "[" + strings.Repeat(segmentJSON+",", 5) + segmentJSON + "]", http.StatusRequestEntityTooLarge, "over the limit of 4096 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			code, msg := post(t, url+tc.path, tc.body)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("= %d %q, want %d containing %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	if resp, err := http.Get(url + "/v3/segment"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v3/segment = %v, %v; want 405", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	if n := len(s.spans()); n != 0 {
		t.Errorf("stored %d spans from bad requests", n)
	}

	// Numeric enum values outside the known set are kept, not refused.
	code, msg := post(t, url+"/v3/segment", strings.Replace(segmentJSON, `"spanLayer": "Http"`, `"spanLayer": 17`, 1))
	if code != http.StatusOK {
		t.Fatalf("unknown numeric layer = %d %q", code, msg)
	}

	s.setFull(true)
	req, _ := http.NewRequest(http.MethodPost, url+"/v3/segment", strings.NewReader(segmentJSON))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("overloaded = %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// A body whose decoding would take more than the whole in-flight budget is
// refused before it is decoded: 3 MB of empty segments would take 200 MB as
// messages (/v3/segments once took the server to 5.1 GB).
func TestHTTPChargesDecodingBeforeIt(t *testing.T) {
	s := &sink{}
	url := startHTTP(t, s.door(), Options{})
	code, msg := post(t, url+"/v3/segments", "["+strings.Repeat("{},", 1<<20)+"{}]")
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "in-flight budget") {
		t.Fatalf("= %d %q, want 413: more than the in-flight budget", code, msg)
	}
}

func TestHTTPGzipAndAuthentication(t *testing.T) {
	s := &sink{}
	url := startHTTP(t, s.door(), Options{Token: "s3cret"})

	for _, header := range [][]string{nil, {"Authentication", "wrong"}} {
		if code, _ := post(t, url+"/v3/segment", segmentJSON, header...); code != http.StatusUnauthorized {
			t.Errorf("token %v: status %d, want 401", header, code)
		}
	}
	if code, _ := post(t, url+"/v3/management/keepAlive", keepAliveJSON); code != http.StatusUnauthorized {
		t.Errorf("keepAlive without token: %d, want 401", code)
	}
	if len(s.spans()) != 0 || len(s.heartbeatList()) != 0 {
		t.Fatal("data stored without the token")
	}

	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(segmentJSON))
	_ = zw.Close()
	code, msg := post(t, url+"/v3/segment", zipped.String(), "Authentication", "s3cret", "Content-Encoding", "gzip")
	if code != http.StatusOK {
		t.Fatalf("gzipped with token = %d %q", code, msg)
	}
	if n := len(s.spans()); n != 2 {
		t.Errorf("stored %d spans, want 2", n)
	}
	if code, _ := post(t, url+"/v3/segment", "not gzip", "Authentication", "s3cret", "Content-Encoding", "gzip"); code != http.StatusBadRequest {
		t.Errorf("corrupt gzip = %d, want 400", code)
	}
}

func FuzzHTTPSegments(f *testing.F) {
	f.Add("/v3/segment", segmentJSON)
	f.Add("/v3/segments", "["+segmentJSON+"]")
	f.Add("/v3/logs", logsJSON)
	f.Add("/v3/events", eventsJSON)
	f.Add("/v3/management/reportProperties", propertiesJSON)
	f.Add("/v3/segment", `{"traceId":"t","traceSegmentId":"s","service":"a","spans":[{"spanId":-4,"parentSpanId":9,"startTime":"-9","endTime":"-20","spanType":7,"refs":[{"refType":3}]}]}`)
	h := NewHTTPHandler((&sink{}).door(), Options{MaxRecvMsgSize: 1 << 16})
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/v3/segment", "/v3/segments", "/v3/logs", "/v3/events", "/v3/management/reportProperties", "/v3/management/keepAlive":
		default:
			path = "/v3/segments"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("POST %s = %d %q", path, rec.Code, rec.Body.String())
		}
	})
}
