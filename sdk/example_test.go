package sdk_test

import (
	"context"
	"log"
	"net/http"

	"github.com/skytrail/skytrail/sdk"
	"github.com/skytrail/skytrail/sdk/tracehttp"
)

func ExampleStart() {
	shutdown, err := sdk.Start(context.Background(), sdk.WithServiceName("checkout"), sdk.WithEndpoint("http://skytrail:4317"))
	if err != nil {
		log.Fatal(err)
	}
	defer shutdown(context.Background()) // flushes the spans still buffered

	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		// Calls made with the request's context continue its trace.
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://inventory:8080/stock", nil)
		if resp, err := tracehttp.NewClient().Do(req); err == nil {
			_ = resp.Body.Close()
		}
	})
	log.Fatal(http.ListenAndServe(":8080", tracehttp.NewHandler(mux)))
}
