package analysis

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/query/promapi"
	"github.com/skytrail/skytrail/internal/receiver/otlp"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
)

// harness is an analyser on a real store behind the real front door and
// OTLP gRPC receiver, with the PromQL API served over HTTP.
type harness struct {
	t        *testing.T
	analyser *Analyser
	store    *metricstore.Store
	otlpAddr string
	api      *httptest.Server
	stop     func() // shuts the analyser down and closes the store, once

	providers map[trace.Tracer]*sdktrace.TracerProvider
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessIn(t, cfg, t.TempDir())
}

// newHarnessIn is newHarness on the metric store in dir: started again on
// the directory of a stopped harness, it is that analysis restarted.
func newHarnessIn(t *testing.T, cfg Config, dir string) *harness {
	t.Helper()
	store, err := metricstore.Open(metricstore.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, store)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := a.Shutdown(context.Background()); err != nil {
				t.Errorf("shutting the analysis down: %v", err)
			}
			if err := store.Close(); err != nil {
				t.Errorf("closing the metric store: %v", err)
			}
		})
	}
	t.Cleanup(stop)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(pipeline.Config{}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{a}, Heartbeats: []pipeline.HeartbeatConsumer{a}})
	srv := otlp.New(p, otlp.Config{}).NewGRPCServer()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	mux := http.NewServeMux()
	mux.Handle("/prometheus/", http.StripPrefix("/prometheus", promapi.NewHandler(store)))
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	return &harness{t: t, analyser: a, store: store, otlpAddr: lis.Addr().String(), api: api, stop: stop,
		providers: map[trace.Tracer]*sdktrace.TracerProvider{}}
}

// tracer returns a tracer for one service instance exporting over OTLP
// gRPC, and a function that flushes and shuts it down.
func (h *harness) tracer(service string, attrs ...attribute.KeyValue) (trace.Tracer, func()) {
	h.t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(h.otlpAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		h.t.Fatal(err)
	}
	res := resource.NewSchemaless(append([]attribute.KeyValue{attribute.String("service.name", service)}, attrs...)...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	done := false
	finish := func() {
		if done {
			return
		}
		done = true
		if err := tp.Shutdown(ctx); err != nil {
			h.t.Errorf("exporting %s's spans: %v", service, err)
		}
	}
	h.t.Cleanup(finish)
	tr := tp.Tracer("skytrail-test")
	h.providers[tr] = tp
	return tr, finish
}

// flushTracer exports what tr recorded so far.
func (h *harness) flushTracer(tr trace.Tracer) error {
	return h.providers[tr].ForceFlush(context.Background())
}

// flush writes everything the analyser holds into the store.
func (h *harness) flush() {
	h.t.Helper()
	if err := h.analyser.Flush(context.Background()); err != nil {
		h.t.Fatalf("flushing the analysis: %v", err)
	}
}

// instances is what the analysis tells of service's instances over the
// last 15 minutes, up to the end of the current one.
func (h *harness) instances(service string) *Instances {
	h.t.Helper()
	got, err := h.analyser.Instances(context.Background(), service, time.Now().Add(-15*time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// topology is the service map over the ten minutes around now.
func (h *harness) topology() *Topology {
	h.t.Helper()
	got, err := h.analyser.Topology(context.Background(), time.Now().Add(-8*time.Minute), time.Now().Add(2*time.Minute))
	if err != nil {
		h.t.Fatal(err)
	}
	return got
}

// get fetches path from the API and decodes the JSON answer into v.
func (h *harness) get(path string, v any) {
	h.t.Helper()
	resp, err := http.Get(h.api.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	// A zero value to decode into: encoding/json would decode a polled
	// slice's elements into the old ones, keeping what the new JSON omits.
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal(body, v); err != nil {
		h.t.Fatalf("GET %s: decoding %s: %v", path, body, err)
	}
}

// promResponse is the Prometheus API's answer to an instant query.
type promResponse struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric    map[string]string `json:"metric"`
			Value     []any             `json:"value"`
			Histogram []any             `json:"histogram"`
		} `json:"result"`
	} `json:"data"`
}

// scalar runs an instant PromQL query through the HTTP API and returns its
// single value.
func (h *harness) scalar(query string) float64 {
	h.t.Helper()
	return h.scalarAt(query, time.Now())
}

// scalarAt is scalar evaluated at ts.
func (h *harness) scalarAt(query string, ts time.Time) float64 {
	h.t.Helper()
	var r promResponse
	h.get("/prometheus/api/v1/query?"+url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', 3, 64)}}.Encode(), &r)
	if r.Status != "success" || len(r.Data.Result) != 1 || len(r.Data.Result[0].Value) != 2 {
		h.t.Fatalf("query %s: want one float result, got %+v", query, r)
	}
	v, err := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
	if err != nil {
		h.t.Fatalf("query %s: %v", query, err)
	}
	return v
}

// pastMinute is the start of a whole minute that has ended, so spans put
// in it are counted together.
func pastMinute() time.Time { return time.Now().Truncate(time.Minute).Add(-2 * time.Minute) }

func within(t *testing.T, what string, got, want, relTol float64) {
	t.Helper()
	if got < want*(1-relTol) || got > want*(1+relTol) {
		t.Errorf("%s = %g, want %g within %.0f%%", what, got, want, relTol*100)
	}
}

func ms(d float64) time.Duration { return time.Duration(d * float64(time.Millisecond)) }
