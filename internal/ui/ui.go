// Package ui serves SkyTrail's web UI: plain ES modules, hand-written CSS
// and SVG, embedded in the binary. Running SkyTrail needs no Node.js: the
// modules under static/js (and the vendored dagre they import) are bundled
// into one file by esbuild's Go library when the server starts, in tens of
// milliseconds, so what is in static/ is the source the browser runs.
//
// static/js/app.js is the shell: the router (History API; every view's
// state is in its URL), the time range and auto-refresh every page shares,
// and the themes. Each page in static/js/pages renders from the JSON APIs
// (docs/api.md) and PromQL (docs/metrics.md); a page whose API answers 404
// says what is missing and shows the rest.
//
// browser_test.go feeds a real server with the OpenTelemetry SDK and go2sky
// and drives Debian's chromium through every page with playwright-core
// (testdata/browser; npm ci there first). UI_DEV=20m go test -run
// TestBrowser keeps the fed server up instead, printing its URLs; rebuild
// (rerun) after editing static/, which is embedded at compile time.
package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed static
var embedded embed.FS

// assetExt are the extensions of files the UI loads.
var assetExt = map[string]bool{".js": true, ".mjs": true, ".css": true, ".svg": true, ".png": true, ".ico": true, ".map": true, ".woff2": true, ".html": true, ".json": true, ".txt": true}

// asset is one file the handler serves, built once at start.
type asset struct {
	name        string // its path, without the leading slash
	body        []byte
	contentType string
	etag        string
	// immutable assets are named by their content's hash: a browser keeps
	// them without asking again, and a new binary's UI has new names.
	immutable bool
	// sourceMap is the URL of the source map of a bundle.
	sourceMap string
	// gzipped is body compressed once at start, for browsers that take
	// gzip (a third of the bundle's bytes over a slow link); nil for small
	// files.
	gzipped     []byte
	gzippedETag string
}

// Handler serves the UI. Mount it at "/" below the API routes: a path
// naming an asset serves it; any other path without a file extension (a
// client-side route such as /traces/{traceID}) serves index.html, so every
// view's URL can be shared and reloaded. A missing asset (a path ending in
// .js, .css, ...) is a 404, not index.html, so a broken reference fails
// loudly; other dots are not assets (a SkyWalking trace ID in
// /traces/{traceID} has several).
//
// index.html is revalidated on every load (a cheap 304 by its ETag); what
// it loads, the script bundle, the stylesheet and the icon, is named by its
// hash and cached for good, so a page load is one request for index.html
// and nothing else before the first API call.
func Handler() http.Handler {
	assets, err := embeddedAssets()
	if err != nil {
		// The files are compiled in; failing to bundle them is a build bug,
		// which TestIndexLoadsOneImmutableBundle reports first.
		panic("ui: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// No inline script or style anywhere (the browser test fails on a CSP
		// violation); never framed, so no clickjacking.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "the UI answers GET and HEAD only", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		a, ok := assets[name]
		if !ok {
			if assetExt[path.Ext(name)] {
				http.NotFound(w, r)
				return
			}
			a = assets["index.html"]
		}
		h.Set("Content-Type", a.contentType)
		if a.immutable {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			// Revalidate every time: the ETag makes that a cheap 304, and a
			// new binary's index.html names its own assets.
			h.Set("Cache-Control", "no-cache")
		}
		if a.sourceMap != "" {
			h.Set("SourceMap", a.sourceMap)
		}
		body, etag := a.body, a.etag
		if a.gzipped != nil {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r.Header.Get("Accept-Encoding")) {
				h.Set("Content-Encoding", "gzip")
				body, etag = a.gzipped, a.gzippedETag
			}
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// embeddedAssets are the assets built from the embedded files, once a
// process: they cannot change, and every handler (a server's, each test
// server's) serves the same.
var embeddedAssets = sync.OnceValues(func() (map[string]asset, error) { return build(embedded) })

// build makes the assets the handler serves from the files under static/:
// the modules bundled into js/app.HASH.js (with its source map), the
// stylesheet and icon under hashed names, and index.html loading them.
func build(files fs.FS) (map[string]asset, error) {
	root, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		return nil, err
	}
	assets := map[string]asset{}
	js, sourceMap, err := bundle(root, "js/app.js")
	if err != nil {
		return nil, fmt.Errorf("bundling static/js/app.js: %w", err)
	}
	bundled := newAsset("js/app.js", js, true)
	// Only a browser's developer tools ask for the source map: it is not
	// compressed, which would cost every start more than the bundle does.
	sourceMapName := bundled.name + ".map"
	assets[sourceMapName] = asset{name: sourceMapName, body: sourceMap, contentType: "application/json", etag: `"` + contentHash(sourceMap) + `"`}
	bundled.sourceMap = "/" + sourceMapName
	assets[bundled.name] = bundled
	if index, err = swap(index, "/js/app.js", "/"+bundled.name); err != nil {
		return nil, err
	}
	for _, name := range []string{"app.css", "favicon.svg"} {
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return nil, err
		}
		a := newAsset(name, body, true)
		assets[a.name] = a
		if index, err = swap(index, "/"+name, "/"+a.name); err != nil {
			return nil, err
		}
	}
	assets["index.html"] = newAsset("index.html", index, false)
	return assets, nil
}

// swap replaces index.html's one reference to url (in a src or href
// attribute) with to.
func swap(index []byte, url, to string) ([]byte, error) {
	old := []byte(`"` + url + `"`)
	if n := bytes.Count(index, old); n != 1 {
		return nil, fmt.Errorf("index.html names %s %d times, want once", url, n)
	}
	return bytes.Replace(index, old, []byte(`"`+to+`"`), 1), nil
}

// newAsset serves body under name, or when immutable under name with its
// content's hash before the extension (app.css becomes
// app.0123456789abcdef.css), gzipped too when that saves a packet.
func newAsset(name string, body []byte, immutable bool) asset {
	ext := path.Ext(name)
	ct := mime.TypeByExtension(ext)
	if ct == "" {
		ct = "application/octet-stream"
	}
	hash := contentHash(body)
	if immutable {
		name = strings.TrimSuffix(name, ext) + "." + hash + ext
	}
	a := asset{name: name, body: body, contentType: ct, etag: `"` + hash + `"`, immutable: immutable}
	if len(body) >= minGzip {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
		zw.Write(body)                                           // a bytes.Buffer does not fail
		zw.Close()
		a.gzipped = buf.Bytes()
		a.gzippedETag = `"` + hash + `-gzip"`
	}
	return a
}

// minGzip is the size below which compressing saves less than a packet.
const minGzip = 1400

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and
// does not refuse it with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q, err := strconv.ParseFloat(v, 64)
			return err == nil && q > 0
		}
		return true
	}
	return false
}

func contentHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:8])
}
