package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesAssetsAndClientRoutes(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html", `<script type="module" src="/js/app.js">`},
		{"/index.html", "text/html", "<title>SkyTrail</title>"},
		{"/services", "text/html", "/js/app.js"},
		{"/services/checkout%2Fv2", "text/html", "/js/app.js"},
		{"/traces/4bf92f3577b34da6a3ce929d0e0e4736", "text/html", "/js/app.js"},
		{"/traces/6e4a083be8da11f1918c9e2254654e93.28.40073696306070001", "text/html", "/js/app.js"},
		{"/map?node=frontend", "text/html", "/js/app.js"},
		{"/js/app.js", "text/javascript", "export function navigate"},
		{"/js/links.js", "text/javascript", "export function link"},
		{"/js/pages/trace.js", "text/javascript", "export function buildTree"},
		{"/app.css", "text/css", "--accent"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp := get(t, h, http.MethodGet, tc.path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.contentType)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}
}

// Every module the app imports is announced in index.html, so the browser
// fetches them at once instead of one import level at a time; each link
// names a module the handler serves.
func TestIndexPreloadsEveryModule(t *testing.T) {
	h := Handler()
	body, _ := io.ReadAll(get(t, h, http.MethodGet, "/", nil).Body)
	for _, m := range []string{"/js/app.js", "/js/dom.js", "/js/pages/services.js", "/js/pages/instance.js"} {
		if !strings.Contains(string(body), `<link rel="modulepreload" href="`+m+`">`) {
			t.Errorf("index.html does not preload %s:\n%s", m, body)
		}
	}
	for _, l := range strings.Split(string(body), "\n") {
		_, href, ok := strings.Cut(l, `rel="modulepreload" href="`)
		if !ok {
			continue
		}
		href, _, _ = strings.Cut(href, `"`)
		if resp := get(t, h, http.MethodGet, href, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("preloaded %s: HTTP %d, %s", href, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

func TestHandlerMissingAssetIs404(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/js/nope.js", "/nope.css", "/static/app.css", "/../../etc/passwd.txt"} {
		if resp := get(t, h, http.MethodGet, p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestHandlerRevalidatesWithETag(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/js/app.js", nil)
	etag := first.Header.Get("ETag")
	if etag == "" || first.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, first.Header.Get("Cache-Control"))
	}
	again := get(t, h, http.MethodGet, "/js/app.js", http.Header{"If-None-Match": {etag}})
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: status %d, want 304", again.StatusCode)
	}
}

func TestHandlerRefusesWrites(t *testing.T) {
	resp := get(t, Handler(), http.MethodPost, "/services", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
