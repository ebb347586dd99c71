package ui

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
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

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loads is what index.html loads: its script, stylesheet and icon URLs.
type loads struct{ scripts, styles, icons []string }

func indexLoads(t *testing.T, index string) loads {
	t.Helper()
	var l loads
	for _, m := range regexp.MustCompile(`<script[^>]* src="([^"]+)"`).FindAllStringSubmatch(index, -1) {
		l.scripts = append(l.scripts, m[1])
	}
	for _, m := range regexp.MustCompile(`<link rel="stylesheet" href="([^"]+)"`).FindAllStringSubmatch(index, -1) {
		l.styles = append(l.styles, m[1])
	}
	for _, m := range regexp.MustCompile(`<link rel="icon" href="([^"]+)"`).FindAllStringSubmatch(index, -1) {
		l.icons = append(l.icons, m[1])
	}
	return l
}

func TestHandlerServesIndexForClientRoutes(t *testing.T) {
	h := Handler()
	for _, path := range []string{
		"/", "/index.html", "/services", "/services/checkout%2Fv2",
		"/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		"/traces/6e4a083be8da11f1918c9e2254654e93.28.40073696306070001",
		"/map?node=frontend",
	} {
		resp := get(t, h, http.MethodGet, path, nil)
		b := body(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: status %d, Content-Type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if !strings.Contains(b, "<title>SkyTrail</title>") || len(indexLoads(t, b).scripts) != 1 {
			t.Errorf("GET %s: not index.html with its script:\n%s", path, b)
		}
	}
}

// A page load is index.html (revalidated) and three files named by their
// content, cached for good: one script holding every module, the
// stylesheet and the icon.
func TestIndexLoadsOneImmutableBundle(t *testing.T) {
	h := Handler()
	index := get(t, h, http.MethodGet, "/", nil)
	if cc := index.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index.html: Cache-Control %q, want no-cache", cc)
	}
	l := indexLoads(t, body(t, index))
	if len(l.scripts) != 1 || len(l.styles) != 1 || len(l.icons) != 1 {
		t.Fatalf("index.html loads scripts %v, stylesheets %v, icons %v; want one of each", l.scripts, l.styles, l.icons)
	}
	hashed := regexp.MustCompile(`^/(js/app|app|favicon)\.[0-9a-f]{16}\.(js|css|svg)$`)
	for _, tc := range []struct{ url, contentType, contains string }{
		{l.scripts[0], "text/javascript", "skytrail:painted"},
		{l.styles[0], "text/css", "--accent"},
		{l.icons[0], "image/svg+xml", "<svg"},
	} {
		if !hashed.MatchString(tc.url) {
			t.Errorf("%s is not named by its content's hash", tc.url)
		}
		resp := get(t, h, http.MethodGet, tc.url, nil)
		b := body(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
			t.Errorf("GET %s: status %d, Content-Type %q", tc.url, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q, want immutable", tc.url, cc)
		}
		if !strings.Contains(b, tc.contains) {
			t.Errorf("GET %s: lacks %q", tc.url, tc.contains)
		}
	}

	// The bundle imports nothing: every module and dagre are inside.
	resp := get(t, h, http.MethodGet, l.scripts[0], nil)
	js := body(t, resp)
	if m := regexp.MustCompile(`(?:from|import)\s*["'][./]`).FindString(js); m != "" {
		t.Errorf("the bundle still imports a file: %q", m)
	}
	// The vendored layout library's licence notice travels with it.
	if !strings.Contains(js, "Copyright (c) 2012-2014 Chris Pettitt") {
		t.Error("the bundle lacks dagre's licence notice")
	}
	// Its source map names every module, so a browser's developer tools
	// show the sources.
	mapURL := resp.Header.Get("SourceMap")
	var sm struct{ Sources []string }
	if err := json.Unmarshal([]byte(body(t, get(t, h, http.MethodGet, mapURL, nil))), &sm); err != nil {
		t.Fatalf("source map %q: %v", mapURL, err)
	}
	joined := strings.Join(sm.Sources, " ")
	for _, module := range []string{"js/app.js", "js/pages/trace.js", "js/pages/map.js", "vendor/dagre/dagre.esm.js"} {
		if !strings.Contains(joined, module) {
			t.Errorf("the source map's sources %v lack %s", sm.Sources, module)
		}
	}
}

func copyFS(t *testing.T) fstest.MapFS {
	t.Helper()
	files := fstest.MapFS{}
	err := fs.WalkDir(embedded, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(embedded, p)
		files[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func scriptAndStyle(t *testing.T, files fs.FS) (script, style string) {
	t.Helper()
	assets, err := build(files)
	if err != nil {
		t.Fatal(err)
	}
	l := indexLoads(t, string(assets["index.html"].body))
	return l.scripts[0], l.styles[0]
}

// A new binary's changed module is a new URL, so no browser runs a cached
// old bundle against a new server; what did not change keeps its URL and
// stays cached.
func TestChangedAssetGetsNewURL(t *testing.T) {
	files := copyFS(t)
	script, style := scriptAndStyle(t, files)
	trace := files["static/js/pages/trace.js"]
	trace.Data = append(bytes.Clone(trace.Data), []byte("\nexport const changed = 1;\nconsole.log(changed);\n")...)
	script2, style2 := scriptAndStyle(t, files)
	if script2 == script {
		t.Errorf("a changed module kept the bundle's URL %s", script)
	}
	if style2 != style {
		t.Errorf("an unchanged stylesheet moved from %s to %s", style, style2)
	}
}

func TestBundleSaysWhatItCannotImport(t *testing.T) {
	for _, tc := range []struct{ name, source, want string }{
		{"missing file", "import {x} from './nope.js';\nconsole.log(x);\n", `js/pages/logs.js imports "./nope.js": no such file in static/`},
		{"bare package", "import _ from 'lodash';\nconsole.log(_);\n", `js/pages/logs.js imports "lodash": only relative imports`},
		{"outside static", "import x from '../../../go.mod';\nconsole.log(x);\n", `outside static/`},
		{"syntax error", "export function (\n", "js/pages/logs.js"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := copyFS(t)
			logs := files["static/js/pages/logs.js"]
			logs.Data = append([]byte(tc.source), logs.Data...)
			_, err := build(files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("build: %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestHandlerGzipsForBrowsersThatTakeIt(t *testing.T) {
	h := Handler()
	script := indexLoads(t, body(t, get(t, h, http.MethodGet, "/", nil))).scripts[0]
	plain := get(t, h, http.MethodGet, script, nil)
	plainBody := body(t, plain)
	if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("without Accept-Encoding: Content-Encoding %q, Vary %q", plain.Header.Get("Content-Encoding"), plain.Header.Get("Vary"))
	}
	zipped := get(t, h, http.MethodGet, script, http.Header{"Accept-Encoding": {"gzip, deflate, br"}})
	if zipped.Header.Get("Content-Encoding") != "gzip" || zipped.Header.Get("ETag") == plain.Header.Get("ETag") {
		t.Fatalf("with gzip: Content-Encoding %q, ETag %q (plain %q)", zipped.Header.Get("Content-Encoding"), zipped.Header.Get("ETag"), plain.Header.Get("ETag"))
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || string(unzipped) != plainBody {
		t.Fatalf("the gzipped bundle is not the bundle: %v", err)
	}
	for header, want := range map[string]string{"gzip;q=0, identity": "", "gzip; q=0.000": "", "br, gzip;q=0.5": "gzip", "GZIP": "gzip", "deflate": ""} {
		if got := get(t, h, http.MethodGet, script, http.Header{"Accept-Encoding": {header}}).Header.Get("Content-Encoding"); got != want {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", header, got, want)
		}
	}
}

func TestHandlerMissingAssetIs404(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/js/app.js", "/js/pages/trace.js", "/app.css", "/favicon.svg", "/js/nope.js", "/nope.css", "/static/app.css", "/../../etc/passwd.txt"} {
		resp := get(t, h, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, resp.StatusCode)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: a 404 without the security headers", p)
		}
	}
}

func TestHandlerRevalidatesIndexWithETag(t *testing.T) {
	h := Handler()
	first := get(t, h, http.MethodGet, "/services", nil)
	etag := first.Header.Get("ETag")
	if etag == "" || first.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, first.Header.Get("Cache-Control"))
	}
	again := get(t, h, http.MethodGet, "/traces/abc", http.Header{"If-None-Match": {etag}})
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

// BenchmarkBuild is what the UI costs a server's start: bundling the
// modules and compressing the assets (docs/benchmarks.md).
func BenchmarkBuild(b *testing.B) {
	for b.Loop() {
		if _, err := build(embedded); err != nil {
			b.Fatal(err)
		}
	}
}
