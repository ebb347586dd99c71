package shop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// postJSON sends in as JSON to url and decodes a 2xx answer into out. The
// request is made with ctx, so the traced client injects the trace context
// of the span in it: a request made with context.Background() here would
// start a new trace at the callee.
func postJSON(ctx context.Context, client *http.Client, url string, in, out any) (status int, err error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, fmt.Errorf("encoding the request to %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building the request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	return send(client, req, out)
}

// send sends req and decodes a 2xx answer into out.
func send(client *http.Client, req *http.Request, out any) (status int, err error) {
	url := req.URL.String()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the answer of %s: %w", url, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
	return resp.StatusCode, nil
}

// getJSON fetches url and decodes a 200 answer into out; like postJSON, it
// is made with ctx so the trace goes along.
func getJSON(ctx context.Context, client *http.Client, url string, out any) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("building the request to %s: %w", url, err)
	}
	return send(client, req, out)
}

// readJSON decodes r's body into v, answering 400 when it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
