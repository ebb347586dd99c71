package server_test

import (
	"bytes"
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
}
