package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// TestQueryInjection: tag, service and operation filters carrying LogsQL's
// and the APIs' own syntax (quotes, pipes, colons, wildcards, newlines,
// braces) either match their text literally or are refused with a 400;
// none is ever widened into another query. Each stored value is on a trace
// of its own, and a "secret" trace carries none of them: a probe that
// finds a trace its text does not literally name has escaped.
func TestQueryInjection(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := provider(t, exp, "inject")
	values := []string{
		"plain", `a"b`, `x | y`, "*", "a:b", "line1\nline2", `{k="v"}`, `\`, "pl*", `" or "1"="1`, `*" | delete | "`, "a b", "_msg:foo",
	}
	byValue := map[string]string{}
	now := time.Now()
	for i, v := range values {
		_, sp := tp.Tracer("t").Start(context.Background(), "op "+v, trace.WithTimestamp(now.Add(time.Duration(i)*time.Millisecond)),
			trace.WithAttributes(attribute.String("k", v)))
		sp.End(trace.WithTimestamp(now.Add(time.Duration(i)*time.Millisecond + time.Millisecond)))
		byValue[v] = sp.SpanContext().TraceID().String()
	}
	_, secret := tp.Tracer("t").Start(context.Background(), "secret op", trace.WithAttributes(attribute.String("team", "secret"), attribute.String("k2", "v2")))
	secret.End()
	secretID := secret.SpanContext().TraceID().String()
	poll.Until(t, waitTimeout, "every trace stored", func() bool {
		return len(search(t, api, url.Values{"service": {"inject"}, "limit": {"100"}, "lookback": {"1h"}})) == len(values)+1
	})

	// Every stored value is found by exactly its own trace.
	for _, v := range values {
		got := search(t, api, url.Values{"service": {"inject"}, "tag": {"k=" + v}, "lookback": {"1h"}, "limit": {"100"}})
		if !slices.Equal(got, []string{byValue[v]}) {
			t.Errorf("tag k=%q found %v, want only its own trace %s", v, got, byValue[v])
		}
		// The Jaeger API's tags, as Grafana sends them.
		tags, _ := json.Marshal(map[string]string{"k": v})
		got = jaegerSearch(t, api, url.Values{"service": {"inject"}, "tags": {string(tags)}, "lookback": {"1h"}, "limit": {"100"}})
		if !slices.Equal(got, []string{byValue[v]}) {
			t.Errorf("jaeger tags %s found %v, want only %s", tags, got, byValue[v])
		}
	}

	// Probes that name nothing stored literally find nothing, or are refused.
	for _, probe := range []url.Values{
		{"tag": {`k=" or team:secret`}},
		{"tag": {`k=plain" OR team:="secret`}},
		{"tag": {`k=plain | team:secret`}},
		{"tag": {`k=*secret*`}},
		{"tag": {`k=pl`}}, // a prefix is not the value
		{"tag": {"k=line1"}},
		{"tag": {`team:secret" | k:"plain`}},
		{"tag": {`k" or "1"="1=plain`}},
		{"tag": {"k\n|team=secret"}},
		{"tag": {`*=secret`}},
		{"tag": {`team=secre*`}},
		{"tag": {`team=~"sec.*"`}},
		{"tag": {`k=plain`}, "service": {`inject" OR "1`}},
		{"tag": {`k=plain`}, "service": {`*`}},
		{"tag": {`k=plain`}, "operation": {`op plain" | * | "`}},
		{"operation": {`*`}, "service": {"inject"}},
		{"operation": {`secret*`}, "service": {"inject"}},
		{"tags": {`{"team":"*"}`}},
		{"tags": {`{"team\" or \"1":"secret"}`}},
	} {
		probe.Set("lookback", "1h")
		probe.Set("limit", "100")
		if !probe.Has("service") {
			probe.Set("service", "inject")
		}
		code, got := searchStatus(t, api, probe)
		switch {
		case code == http.StatusBadRequest:
		case code != http.StatusOK:
			t.Errorf("%v: HTTP %d, want 200 or 400", probe, code)
		case slices.Contains(got, secretID):
			t.Errorf("%v escaped into another query: it found the secret trace", probe)
		case len(got) > 0:
			t.Errorf("%v found %v, which its text does not literally name", probe, got)
		}
	}
}

func search(t *testing.T, api string, q url.Values) []string {
	t.Helper()
	code, ids := searchStatus(t, api, q)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/traces?%s: HTTP %d", q.Encode(), code)
	}
	return ids
}

// searchStatus runs a trace search and returns its status and trace IDs,
// sorted.
func searchStatus(t *testing.T, api string, q url.Values) (int, []string) {
	t.Helper()
	var body struct {
		Traces []struct {
			TraceID string `json:"traceID"`
		} `json:"traces"`
	}
	code := servertest.GetJSON(t, api+"/api/v1/traces?"+q.Encode(), &body)
	var ids []string
	for _, tr := range body.Traces {
		ids = append(ids, tr.TraceID)
	}
	sort.Strings(ids)
	return code, ids
}

func jaegerSearch(t *testing.T, api string, q url.Values) []string {
	t.Helper()
	resp, err := http.Get(api + "/jaeger/api/traces?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jaeger search %s: HTTP %d %s", q.Encode(), resp.StatusCode, b)
	}
	var body struct {
		Data []struct {
			TraceID string `json:"traceID"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tr := range body.Data {
		ids = append(ids, tr.TraceID)
	}
	sort.Strings(ids)
	return ids
}
