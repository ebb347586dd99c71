package tracehttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/skytrail/skytrail/sdk/sw8"
)

func setup(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(sw8.New(), propagation.TraceContext{}))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	return rec
}

func names(rec *tracetest.SpanRecorder) []string {
	var out []string
	for _, s := range rec.Ended() {
		out = append(out, s.Name())
	}
	return out
}

func get(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

func TestServerSpansNamedByRouteTemplate(t *testing.T) {
	rec := setup(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/orders/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /carts/{id}/items", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(NewHandler(mux))
	t.Cleanup(srv.Close)

	get(t, srv.URL+"/orders/42")
	resp, err := http.Post(srv.URL+"/carts/7/items", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	get(t, srv.URL+"/no/such/path/123")

	got := names(rec)
	want := []string{"GET /orders/{id}", "POST /carts/{id}/items", "GET"}
	if len(got) != len(want) {
		t.Fatalf("spans %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span %d named %q, want %q", i, got[i], want[i])
		}
	}
}

func TestServerMuxBehindMiddleware(t *testing.T) {
	rec := setup(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(http.ResponseWriter, *http.Request) {})
	logging := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mux.ServeHTTP(w, r) })
	srv := httptest.NewServer(NewHandler(logging))
	t.Cleanup(srv.Close)
	get(t, srv.URL+"/items/5")
	if got := names(rec); len(got) != 1 || got[0] != "GET /items/{id}" {
		t.Errorf("spans %q", got)
	}
}

func TestServerWithRouteFunc(t *testing.T) {
	rec := setup(t)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(NewHandler(h, WithRoute(func(*http.Request) string { return "/users/:id" })))
	t.Cleanup(srv.Close)
	get(t, srv.URL+"/users/99")
	if got := names(rec); len(got) != 1 || got[0] != "GET /users/:id" {
		t.Errorf("spans %q", got)
	}
}

// TestClientSendsSW8WithEndpointAndPeer serves a traced route that calls a
// second server, and checks the sw8 header that arrives there.
func TestClientSendsSW8WithEndpointAndPeer(t *testing.T) {
	setup(t)
	got := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	t.Cleanup(backend.Close)
	client := NewClient()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /front/{x}", func(_ http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, backend.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		_ = resp.Body.Close()
	})
	front := httptest.NewServer(NewHandler(mux))
	t.Cleanup(front.Close)
	get(t, front.URL+"/front/1")

	h := <-got
	if h.Get("traceparent") == "" {
		t.Error("no traceparent sent")
	}
	sw, err := sw8.Parse(h.Get("sw8"))
	if err != nil {
		t.Fatalf("sw8 %q: %v", h.Get("sw8"), err)
	}
	if sw.ParentEndpoint != "GET /front/{x}" || sw.AddressUsedAtClient != backend.Listener.Addr().String() {
		t.Errorf("sw8 %+v", sw)
	}
}
