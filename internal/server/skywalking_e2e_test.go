package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// A go2sky trace across two services, reported to the server's SkyWalking
// port, is one tree found by go2sky's own trace ID through both APIs, and a
// log the agent reports for it is found by the same ID.
func TestGo2skyTraceThroughTheServer(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	gw, stock := servertest.Go2sky(t, s, "gateway"), servertest.Go2sky(t, s, "stock")

	headers := map[string]string{}
	entry, ctx, err := gw.CreateEntrySpan(context.Background(), "GET /buy", func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	entry.Tag("order_id", "2002")
	exit, err := gw.CreateExitSpan(ctx, "GET /reserve", "stock:8080", func(k, v string) error { headers[k] = v; return nil })
	if err != nil {
		t.Fatal(err)
	}
	exit.SetSpanLayer(agentv3.SpanLayer_Http)
	sEntry, sctx, err := stock.CreateEntrySpan(context.Background(), "GET /reserve", func(k string) (string, error) { return headers[k], nil })
	if err != nil {
		t.Fatal(err)
	}
	db, err := stock.CreateExitSpan(sctx, "UPDATE stock", "mysql:3306", func(string, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	db.SetSpanLayer(agentv3.SpanLayer_Database)
	db.Error(time.Now(), "message", "lock wait timeout")
	db.End()
	sEntry.End()
	exit.End()
	entry.End()
	swTraceID := go2sky.TraceID(ctx)

	var tr nativeTrace
	poll.Until(t, waitTimeout, "the go2sky trace", func() bool {
		return servertest.GetJSON(t, api+"/api/v1/traces/"+url.PathEscape(swTraceID), &tr) == http.StatusOK && len(tr.Spans) == 4
	})
	ids := map[string]string{} // name+kind -> span ID
	parents := map[string]string{}
	for _, sp := range tr.Spans {
		ids[sp.Name+"/"+sp.Kind] = sp.SpanID
		parents[sp.Name+"/"+sp.Kind] = sp.ParentSpanID
	}
	if parents["GET /reserve/client"] != ids["GET /buy/server"] ||
		parents["GET /reserve/server"] != ids["GET /reserve/client"] ||
		parents["UPDATE stock/client"] != ids["GET /reserve/server"] || parents["GET /buy/server"] != "" {
		t.Errorf("tree broken: ids %v parents %v", ids, parents)
	}
	if !tr.Summary.Error || tr.Summary.RootService != "gateway" {
		t.Errorf("summary = %+v", tr.Summary)
	}
	var jt struct{ Data []struct{ Spans []any } }
	if code := servertest.GetJSON(t, api+"/jaeger/api/traces/"+url.PathEscape(swTraceID), &jt); code != http.StatusOK || len(jt.Data) != 1 || len(jt.Data[0].Spans) != 4 {
		t.Errorf("jaeger lookup by go2sky trace ID: HTTP %d, %+v", code, jt)
	}
	var found struct{ Traces []struct{ TraceID string } }
	servertest.GetJSON(t, api+"/api/v1/traces?service=gateway&tag=order_id=2002", &found)
	if len(found.Traces) != 1 {
		t.Errorf("search by tag on a SkyWalking span found %+v", found.Traces)
	}

	// A log line tied to the trace, as the agents post it to /v3/logs.
	logJSON := fmt.Sprintf(`[{"timestamp": %d, "service": "stock", "serviceInstance": "stock-1", "endpoint": "GET /reserve",
		"body": {"text": {"text": "reserve failed"}}, "traceContext": {"traceId": %q, "spanId": 1}}]`, time.Now().UnixMilli(), swTraceID)
	resp, err := http.Post("http://"+s.Addrs["SkyWalking HTTP"]+"/v3/logs", "application/json", bytes.NewBufferString(logJSON))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v3/logs: HTTP %d", resp.StatusCode)
	}
	var logs struct {
		Logs []struct{ Body, Service string }
	}
	poll.Until(t, waitTimeout, "the agent log", func() bool {
		servertest.GetJSON(t, api+"/api/v1/logs?traceID="+url.QueryEscape(swTraceID), &logs)
		return len(logs.Logs) == 1
	})
	if logs.Logs[0].Body != "reserve failed" || logs.Logs[0].Service != "stock" {
		t.Errorf("log = %+v", logs.Logs[0])
	}
}

// With an agent token set, probes and load balancers still get the SkyWalking
// port's gRPC health without it, while agents without it are refused.
func TestSkyWalkingHealthCheckNeedsNoToken(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) { c.SWToken = "s3cret" })
	conn, err := grpc.NewClient(s.Addrs["SkyWalking gRPC"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check without the token: %v, %v", resp.GetStatus(), err)
	}
	_, err = agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(ctx, &agentv3.SegmentCollection{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("segments without the token: %v, want Unauthenticated", err)
	}
}
