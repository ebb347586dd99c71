package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

func TestOpenTelemetrySDKToBothAPIs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := servertest.StartIn(t, dir)
	ctx := context.Background()
	api := "http://" + s.Addrs["query API"]

	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.Addrs["OTLP HTTP"]), otlptracehttp.WithInsecure(),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	overGRPC := checkoutTrace(t, provider(t, grpcExp, "frontend"), provider(t, grpcExp, "payment"), 1001)
	overHTTP := checkoutTrace(t, provider(t, httpExp, "frontend"), provider(t, httpExp, "payment"), 1002)

	for _, id := range []trace.TraceID{overGRPC, overHTTP} {
		var tr nativeTrace
		poll.Until(t, waitTimeout, "trace "+id.String(), func() bool {
			return servertest.GetJSON(t, api+"/api/v1/traces/"+id.String(), &tr) == http.StatusOK && len(tr.Spans) == 3
		})
		root, call, charge := tr.Spans[0], tr.Spans[1], tr.Spans[2]
		if root.ParentSpanID != "" || call.ParentSpanID != root.SpanID || charge.ParentSpanID != call.SpanID {
			t.Errorf("parent links broken: %+v", tr.Spans)
		}
		if charge.Service != "payment" || charge.Kind != "server" || charge.StatusCode != "ERROR" || charge.StatusMessage != "card declined" {
			t.Errorf("charge span = %+v", charge)
		}
		if charge.Attributes["retry"] != false || charge.Attributes["amount"] != 12.5 {
			t.Errorf("charge attributes = %v", charge.Attributes)
		}
		if len(charge.Events) != 1 || charge.Events[0].Name != "card checked" {
			t.Errorf("charge events = %+v", charge.Events)
		}
		if tr.Summary.RootService != "frontend" || tr.Summary.SpanCount != 3 || !tr.Summary.Error || len(tr.Summary.Services) != 2 {
			t.Errorf("summary = %+v", tr.Summary)
		}
	}

	// Search through the native API.
	search := func(q url.Values) []string {
		var out struct {
			Traces []struct{ TraceID string } `json:"traces"`
		}
		if code := servertest.GetJSON(t, api+"/api/v1/traces?"+q.Encode(), &out); code != http.StatusOK {
			t.Fatalf("search %v: HTTP %d", q, code)
		}
		var ids []string
		for _, tr := range out.Traces {
			ids = append(ids, tr.TraceID)
		}
		return ids
	}
	if ids := search(url.Values{"service": {"frontend"}, "tag": {"order_id=1001"}}); len(ids) != 1 || ids[0] != overGRPC.String() {
		t.Errorf("tag search found %v, want [%s]", ids, overGRPC)
	}
	if ids := search(url.Values{"service": {"payment"}, "minDuration": {"25ms"}, "errors": {"true"}}); len(ids) != 2 {
		t.Errorf("duration+error search found %v, want both traces", ids)
	}
	if ids := search(url.Values{"service": {"payment"}, "minDuration": {"10s"}}); len(ids) != 0 {
		t.Errorf("minDuration=10s found %v", ids)
	}

	// The same trace through the Jaeger API, as Grafana reads it.
	var jt struct {
		Data []struct {
			TraceID string
			Spans   []struct {
				SpanID, OperationName, ProcessID string
				References                       []struct{ RefType, SpanID string }
				Tags                             []struct {
					Key, Type string
					Value     any
				}
			}
			Processes map[string]struct{ ServiceName string }
		}
	}
	if code := servertest.GetJSON(t, api+"/jaeger/api/traces/"+overGRPC.String(), &jt); code != http.StatusOK || len(jt.Data) != 1 {
		t.Fatalf("jaeger trace: HTTP %d, %d traces", code, len(jt.Data))
	}
	var sawError, sawChild bool
	for _, sp := range jt.Data[0].Spans {
		for _, r := range sp.References {
			sawChild = sawChild || r.RefType == "CHILD_OF"
		}
		for _, tag := range sp.Tags {
			if tag.Key == "error" && tag.Value == true && sp.OperationName == "charge" {
				sawError = true
			}
		}
	}
	if !sawError || !sawChild || len(jt.Data[0].Processes) != 2 {
		t.Errorf("jaeger trace lacks error tag (%v), CHILD_OF refs (%v) or 2 processes (%v)", sawError, sawChild, jt.Data[0].Processes)
	}
	var found struct{ Data []struct{ TraceID string } }
	q := url.Values{"service": {"frontend"}, "tags": {`{"order_id":"1002"}`}, "lookback": {"1h"}}
	if code := servertest.GetJSON(t, api+"/jaeger/api/traces?"+q.Encode(), &found); code != http.StatusOK || len(found.Data) != 1 || found.Data[0].TraceID != overHTTP.String() {
		t.Errorf("jaeger tag search: HTTP %d, %+v", code, found.Data)
	}

	// Everything acknowledged survives a graceful restart.
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := servertest.StartIn(t, dir)
	var tr nativeTrace
	if code := servertest.GetJSON(t, "http://"+s2.Addrs["query API"]+"/api/v1/traces/"+overHTTP.String(), &tr); code != http.StatusOK || len(tr.Spans) != 3 {
		t.Fatalf("after restart: HTTP %d, %d spans", code, len(tr.Spans))
	}
}

func TestOTLPHTTPBadInput(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	base := "http://" + s.Addrs["OTLP HTTP"] + "/v1/traces"
	now := time.Now().UnixNano()
	span := func(traceID, spanID string) string {
		return fmt.Sprintf(`{"traceId":%q,"spanId":%q,"name":"op","startTimeUnixNano":"%d","endTimeUnixNano":"%d"}`, traceID, spanID, now, now+1000)
	}
	body := func(spans ...string) string {
		var b bytes.Buffer
		b.WriteString(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[`)
		for i, s := range spans {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s)
		}
		b.WriteString(`]}]}]}`)
		return b.String()
	}
	cases := []struct {
		name, contentType, body string
		status                  int
		inBody                  string
	}{
		{"malformed protobuf", "application/x-protobuf", "\xff\xff\xff", 400, "cannot decode"},
		{"malformed JSON", "application/json", `{"resourceSpans":[`, 400, "cannot decode"},
		{"wrong content type", "text/plain", "hello", 415, "unsupported Content-Type"},
		{"all-zero trace ID", "application/json", body(span("00000000000000000000000000000000", "0102030405060708")), 400, "trace ID is missing or all zero"},
		{"short trace ID", "application/json", body(span("0102", "0102030405060708")), 400, "cannot decode"},
		{"partial success", "application/json", body(span("0102030405060708090a0b0c0d0e0f10", "0102030405060708"), span("0102030405060708090a0b0c0d0e0f10", "0000000000000000")), 200, `"rejectedSpans":"1"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Post(base, c.contentType, bytes.NewBufferString(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || !bytes.Contains(got, []byte(c.inBody)) {
				t.Errorf("HTTP %d %s; want %d containing %q", resp.StatusCode, got, c.status, c.inBody)
			}
		})
	}
}
