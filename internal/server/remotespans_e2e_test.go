package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

// A server started with --spans-url keeps spans in a real VictoriaLogs:
// a trace sent with the OpenTelemetry SDK is in VictoriaLogs' own answer,
// nothing of it in the data directory, and the native and Jaeger APIs
// serve it. With VictoriaLogs down, ingest answers 503 with Retry-After
// and queries fail naming the server.
func TestRemoteSpanStore(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	dir := t.TempDir()
	s := servertest.StartIn(t, dir, func(c *server.Config) { c.Spans = server.RemoteSpans{URL: vl.URL, Timeout: 2 * time.Second} })
	api := "http://" + s.Addrs["query API"]
	ctx := context.Background()

	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	id := checkoutTrace(t, provider(t, exp, "frontend"), provider(t, exp, "payment"), 1001)

	var tr nativeTrace
	poll.Until(t, waitTimeout, "trace "+id.String()+" on /api/v1", func() bool {
		return servertest.GetJSON(t, api+"/api/v1/traces/"+id.String(), &tr) == http.StatusOK && len(tr.Spans) == 3
	})
	if charge := tr.Spans[2]; charge.Service != "payment" || charge.StatusMessage != "card declined" || charge.Attributes["amount"] != 12.5 || len(charge.Events) != 1 {
		t.Errorf("charge span read back = %+v", charge)
	}
	if tr.Summary.RootService != "frontend" || tr.Summary.SpanCount != 3 || !tr.Summary.Error {
		t.Errorf("summary = %+v", tr.Summary)
	}

	// The rows are VictoriaLogs' own: its LogsQL API finds the three spans
	// (eventually: VictoriaLogs makes rows searchable a second or so after
	// taking them, the rows of separate requests not all at once).
	poll.Until(t, waitTimeout, "VictoriaLogs' own answer to hold the trace's 3 rows", func() bool {
		return countRows(t, vl.URL, "trace_id:="+id.String()) == 3
	})
	if _, err := os.Stat(filepath.Join(dir, "spans")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data directory has a local span store (%v); spans should only be remote", err)
	}

	var jt struct {
		Data []struct {
			TraceID string
			Spans   []struct{ OperationName string }
		}
	}
	if code := servertest.GetJSON(t, api+"/jaeger/api/traces/"+id.String(), &jt); code != http.StatusOK || len(jt.Data) != 1 || len(jt.Data[0].Spans) != 3 {
		t.Errorf("Jaeger trace: HTTP %d, %+v", code, jt.Data)
	}
	// A new service's stream reaches VictoriaLogs' stream index a little
	// after its rows are searchable by trace ID: searches by service wait
	// for it, as on the embedded store (its flush interval).
	var found struct{ Data []struct{ TraceID string } }
	q := url.Values{"service": {"frontend"}, "tags": {`{"order_id":"1001"}`}, "lookback": {"1h"}}
	poll.Until(t, waitTimeout, "the Jaeger tag search to find the trace", func() bool {
		return servertest.GetJSON(t, api+"/jaeger/api/traces?"+q.Encode(), &found) == http.StatusOK && len(found.Data) == 1 && found.Data[0].TraceID == id.String()
	})
	var services struct{ Data []string }
	poll.Until(t, waitTimeout, "Jaeger services to list frontend and payment", func() bool {
		return servertest.GetJSON(t, api+"/jaeger/api/services", &services) == http.StatusOK && strings.Join(services.Data, ",") == "frontend,payment"
	})

	// VictoriaLogs down: retryable refusals, errors that name it.
	vl.Stop()
	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[`+
		`{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"op","startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`, now, now+1000)
	resp, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("OTLP/HTTP with VictoriaLogs down: HTTP %d, Retry-After %q, %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), msg)
	}
	resp, err = http.Get(api + "/api/v1/traces/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	msg, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(msg), vl.URL) {
		t.Errorf("trace lookup with VictoriaLogs down: HTTP %d (Retry-After %q) %s; want 503 with Retry-After naming %s", resp.StatusCode, resp.Header.Get("Retry-After"), msg, vl.URL)
	}
	// Grafana's LogsQL endpoint the same way: retryable, not a 500.
	resp, err = http.PostForm(api+"/select/logsql/query", url.Values{"query": {"*"}})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("/select/logsql/query with VictoriaLogs down: HTTP %d (Retry-After %q) %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), msg)
	}

	// Back up: the same request is taken, and is searchable.
	vl.Restart(t)
	resp, err = http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP after VictoriaLogs restarted: HTTP %d", resp.StatusCode)
	}
	poll.Until(t, waitTimeout, "the retried span", func() bool {
		return servertest.GetJSON(t, api+"/api/v1/traces/0102030405060708090a0b0c0d0e0f10", &tr) == http.StatusOK && len(tr.Spans) == 1
	})
}

// countRows asks VictoriaLogs itself how many span rows match a LogsQL filter.
func countRows(t *testing.T, base, filter string) int {
	t.Helper()
	// With a pipe: VictoriaLogs v1.52.1 was seen answering a query without
	// one with fewer rows for up to a second after the same query with a
	// pipe found them all. SkyTrail's own queries always end in a pipe.
	resp, err := http.PostForm(base+"/select/logsql/query", url.Values{"query": {filter + " | fields _time"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("VictoriaLogs query %q: HTTP %d %s", filter, resp.StatusCode, b)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("VictoriaLogs query %q: reading the answer: %v", filter, err)
	}
	return n
}
