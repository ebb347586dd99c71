package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// Spans sent to the server are counted: the services list carries figures,
// the service map has the call, and the PromQL and Jaeger dependency APIs
// answer from the same analysis. Agent meters land in the metric store.
func TestAnalysisThroughTheServer(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	ctx := context.Background()
	api := "http://" + s.Addrs["query API"]
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	frontend, payment := provider(t, exp, "frontend"), provider(t, exp, "payment")
	for i := 0; i < 5; i++ {
		checkoutTrace(t, frontend, payment, 3000+i)
	}
	if err := s.Analyser.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	var svcs struct {
		Services []struct {
			Name    string
			Figures *struct {
				Calls, Errors uint64
				SuccessRate   float64
			}
		}
	}
	figures := map[string]uint64{}
	// Services are listed once their spans are searchable (within a second).
	poll.Until(t, waitTimeout, "services with figures", func() bool {
		if code := servertest.GetJSON(t, api+"/api/v1/services?lookback=1h", &svcs); code != http.StatusOK {
			t.Fatalf("services: HTTP %d", code)
		}
		for _, sv := range svcs.Services {
			if sv.Figures != nil {
				figures[sv.Name] = sv.Figures.Calls
			}
		}
		return len(svcs.Services) == 2
	})
	if figures["frontend"] != 5 || figures["payment"] != 5 {
		t.Errorf("calls per service = %v, want 5 each (%+v)", figures, svcs)
	}
	// A service picker asks for the names alone.
	servertest.GetJSON(t, api+"/api/v1/services?lookback=1h&figures=false", &svcs)
	if len(svcs.Services) != 2 || svcs.Services[0].Figures != nil || svcs.Services[1].Figures != nil {
		t.Errorf("services?figures=false = %+v, want the two names without figures", svcs)
	}
	// The service page asks for its own service's figures alone.
	servertest.GetJSON(t, api+"/api/v1/services?lookback=1h&service=payment", &svcs)
	if len(svcs.Services) != 1 || svcs.Services[0].Name != "payment" || svcs.Services[0].Figures == nil || svcs.Services[0].Figures.Calls != 5 {
		t.Errorf("services?service=payment = %+v, want payment with its 5 calls", svcs)
	}
	servertest.GetJSON(t, api+"/api/v1/services?lookback=1h&service=paymnt", &svcs)
	if len(svcs.Services) != 0 {
		t.Errorf("services?service=paymnt = %+v, want none", svcs)
	}
	if code := servertest.GetJSON(t, api+"/api/v1/services?figures=some", nil); code != http.StatusBadRequest {
		t.Errorf("services?figures=some: HTTP %d, want 400", code)
	}

	var topo struct {
		Edges []struct{ Client, Server string }
	}
	// Each minute's figures are stamped at the minute's end.
	end := time.Now().Truncate(time.Minute).Add(time.Minute)
	servertest.GetJSON(t, api+"/api/v1/topology?start="+url.QueryEscape(end.Add(-time.Hour).Format(time.RFC3339))+"&end="+url.QueryEscape(end.Format(time.RFC3339)), &topo)
	found := false
	for _, e := range topo.Edges {
		found = found || (e.Client == "frontend" && e.Server == "payment")
	}
	if !found {
		t.Errorf("topology lacks frontend -> payment: %+v", topo.Edges)
	}

	var deps struct {
		Data []struct{ Parent, Child string }
	}
	servertest.GetJSON(t, api+"/jaeger/api/dependencies?lookback=3600000&endTs="+strconv.FormatInt(end.UnixMilli(), 10), &deps)
	if len(deps.Data) == 0 {
		t.Errorf("jaeger dependencies empty")
	}

	// A skywalking-go style meter batch.
	conn, err := grpc.NewClient(s.Addrs["SkyWalking gRPC"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := agentv3.NewMeterReportServiceClient(conn).CollectBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&agentv3.MeterDataCollection{MeterData: []*agentv3.MeterData{{
		Service: "stock", ServiceInstance: "stock-1", Timestamp: time.Now().UnixMilli(),
		Metric: &agentv3.MeterData_SingleValue{SingleValue: &agentv3.MeterSingleValue{Name: "instance_golang_heap_alloc", Value: 4096}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	var prom struct {
		Data struct {
			Result []struct{ Value []any }
		}
	}
	servertest.GetJSON(t, api+"/prometheus/api/v1/query?query="+url.QueryEscape(`agent_instance_golang_heap_alloc{service="stock",instance="stock-1"}`), &prom)
	if len(prom.Data.Result) != 1 || prom.Data.Result[0].Value[1] != "4096" {
		t.Errorf("agent meter through PromQL = %+v", prom.Data.Result)
	}
}
