package server_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// The probes of issue 18 that found defects, kept so they stay fixed: each
// was a 500, an empty answer or a span acknowledged and then lost.
func TestProbesFromIssue18(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]

	t.Run("a 200-byte tag key is the client's mistake", func(t *testing.T) {
		t.Parallel()
		key := strings.Repeat("k", 200)
		for _, path := range []string{
			"/api/v1/traces?" + url.Values{"tag": {key + "=v"}}.Encode(),
			"/jaeger/api/traces?" + url.Values{"service": {"svc"}, "tags": {`{"` + key + `":"v"}`}}.Encode(),
		} {
			res, err := http.Get(api + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("key")) {
				t.Errorf("GET %s: %d %s, want 400 naming the key", path[:20], res.StatusCode, body)
			}
		}
	})

	t.Run("an error about text that is not UTF-8 still has a body", func(t *testing.T) {
		t.Parallel()
		// A decoder's error quotes the bytes it choked on; protobuf will not
		// encode a status whose message is not UTF-8, which left it empty.
		body := "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"\xff\xfe\",\"spanId\":\"01\"}]}]}]}"
		res, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var st spb.Status
		if res.StatusCode != http.StatusBadRequest || protojson.Unmarshal(got, &st) != nil || !strings.Contains(st.GetMessage(), "cannot decode") {
			t.Errorf("HTTP %d, body %q, want 400 with a google.rpc.Status saying why", res.StatusCode, got)
		}
	})

	t.Run("a span ending in 2100 is refused, not stored", func(t *testing.T) {
		t.Parallel()
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "far-future")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetTraceID(pcommon.TraceID{0x21})
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)))
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
		res, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !bytes.Contains(got, []byte("end time 2100-01-01T00:00:00Z is too far in the future")) {
			t.Errorf("HTTP %d %s, want 400: end time too far in the future", res.StatusCode, got)
		}
	})

	t.Run("a gzip bomb is refused after the limit, not inflated", func(t *testing.T) {
		t.Parallel()
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		zeros := make([]byte, 1<<20)
		for range 64 { // 64 MiB of zeros, about 64 KiB zipped
			_, _ = zw.Write(zeros)
		}
		_ = zw.Close()
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", &zipped)
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "gzip")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("64 MiB inflated: HTTP %d, want 413", res.StatusCode)
		}
	})

	t.Run("a 100 MB body is cut off at the limit", func(t *testing.T) {
		t.Parallel()
		res, err := http.Post("http://"+s.Addrs["SkyWalking HTTP"]+"/v3/segments", "application/json", io.LimitReader(zeroReader{}, 100<<20))
		if err != nil {
			// The server may close the connection once it has refused.
			return
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("100 MB body: HTTP %d, want 413", res.StatusCode)
		}
	})

	t.Run("paths do not leave the UI's files", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/../go.mod", "/js/..%2f..%2f..%2fgo.mod", "/%2e%2e/%2e%2e/etc/passwd", "/js/../../../../etc/passwd"} {
			res, err := http.Get(api + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if bytes.Contains(body, []byte("module github.com")) || bytes.Contains(body, []byte("root:")) {
				t.Errorf("GET %s leaked a file", path)
			}
		}
	})

	t.Run("a service name cannot widen a search", func(t *testing.T) {
		t.Parallel()
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "victim")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("op")
		sp.SetTraceID(pcommon.TraceID{0x51})
		sp.SetSpanID(pcommon.SpanID{1})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		sp.SetEndTimestamp(sp.StartTimestamp())
		body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		res, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		poll.Until(t, 30*time.Second, "the victim's trace to be searchable", func() bool {
			var found struct {
				Traces []any `json:"traces"`
			}
			servertest.GetJSON(t, api+"/api/v1/traces?service=victim&lookback=1h", &found)
			return len(found.Traces) == 1
		})
		for _, service := range []string{`x" or service:*`, `x"} or {service!="`, "x | limit 1000", `*`} {
			var found struct {
				Traces []any `json:"traces"`
			}
			servertest.GetJSON(t, api+"/api/v1/traces?"+url.Values{"service": {service}, "lookback": {"1h"}}.Encode(), &found)
			if len(found.Traces) != 0 {
				t.Errorf("service %q found %d traces of other services", service, len(found.Traces))
			}
		}
	})
}

// zeroReader reads zeros without end.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
