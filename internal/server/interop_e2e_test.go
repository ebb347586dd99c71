package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/sdk"
	"github.com/skytrail/skytrail/sdk/tracehttp"
)

// go2skyServer serves path with a go2sky entry span, calling next (if any)
// with a go2sky exit span that injects sw8.
func go2skyServer(t *testing.T, tr *go2sky.Tracer, path, next string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry, ctx, err := tr.CreateEntrySpan(r.Context(), "GET "+path, func(k string) (string, error) { return r.Header.Get(k), nil })
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		entry.SetSpanLayer(agentv3.SpanLayer_Http)
		defer entry.End()
		if next == "" {
			return
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		exit, err := tr.CreateExitSpan(ctx, "GET "+next, req.URL.Host, func(k, v string) error { req.Header.Set(k, v); return nil })
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		exit.SetSpanLayer(agentv3.SpanLayer_Http)
		defer exit.End()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A go2sky service calls a service instrumented with SkyTrail's SDK, which
// calls another go2sky service, over real loopback HTTP: SkyTrail shows one
// trace, found by go2sky's own trace ID, with every parent link in place.
//
// Not parallel: sdk.Start sets OpenTelemetry's global tracer provider and
// propagator, as it does in a service.
func TestGo2skyAndSDKMakeOneTrace(t *testing.T) {
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	ctx := context.Background()

	ledger := go2skyServer(t, servertest.Go2sky(t, s, "ledger"), "/entries", "")

	shutdown, err := sdk.Start(ctx, sdk.WithServiceName("billing"), sdk.WithEndpoint("http://"+s.Addrs["OTLP gRPC"]),
		sdk.WithBatchTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	client := tracehttp.NewClient()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /invoices/{id}", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, ledger.URL+"/entries", nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	})
	billing := httptest.NewServer(tracehttp.NewHandler(mux))
	defer billing.Close()

	// The caller is go2sky; its trace ID is what a user has in hand.
	shop := servertest.Go2sky(t, s, "shop")
	entry, sctx, err := shop.CreateEntrySpan(ctx, "GET /buy", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, billing.URL+"/invoices/7", nil)
	exit, err := shop.CreateExitSpan(sctx, "GET /invoices/{id}", req.URL.Host, func(k, v string) error { req.Header.Set(k, v); return nil })
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("billing answered %d", resp.StatusCode)
	}
	exit.End()
	entry.End()
	swTraceID := go2sky.TraceID(sctx)
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	var tr nativeTrace
	defer func() {
		if t.Failed() {
			for _, sp := range tr.Spans {
				t.Logf("span %s parent %s %s %s %s", sp.SpanID, sp.ParentSpanID, sp.Service, sp.Kind, sp.Name)
			}
			var all struct {
				Traces []struct {
					TraceID   string
					Services  []string
					SpanCount int
				}
			}
			servertest.GetJSON(t, api+"/api/v1/traces?lookback=1h", &all)
			t.Logf("traces stored: %+v (go2sky ID %s)", all.Traces, swTraceID)
		}
	}()
	poll.Until(t, waitTimeout, "one trace across go2sky and the SDK", func() bool {
		return servertest.GetJSON(t, api+"/api/v1/traces/"+url.PathEscape(swTraceID), &tr) == http.StatusOK && len(tr.Spans) == 5
	})
	byID := map[string]string{}
	names := map[string]string{}
	for _, sp := range tr.Spans {
		byID[sp.SpanID] = sp.Service + " " + sp.Kind + " " + sp.Name
		names[sp.Service+" "+sp.Kind] = sp.SpanID
	}
	var chain []string
	for _, sp := range tr.Spans {
		chain = append(chain, fmt.Sprintf("%s <- %s", byID[sp.SpanID], byID[sp.ParentSpanID]))
	}
	// Every span but the root has its parent in the trace.
	for _, sp := range tr.Spans {
		if sp.ParentSpanID != "" && byID[sp.ParentSpanID] == "" {
			t.Errorf("span %s has a parent missing from the trace; chain:\n%v", byID[sp.SpanID], chain)
		}
	}
	for _, want := range []string{"shop server", "shop client", "billing server", "billing client", "ledger server"} {
		if names[want] == "" {
			t.Errorf("no %s span in the trace; chain:\n%v", want, chain)
		}
	}
	if tr.Summary.RootService != "shop" || len(tr.Summary.Services) != 3 {
		t.Errorf("summary = %+v; chain:\n%v", tr.Summary, chain)
	}
}
