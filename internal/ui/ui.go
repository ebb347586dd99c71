// Package ui serves SkyTrail's web UI: plain ES modules, hand-written CSS
// and SVG, embedded in the binary. There is no build step, so what is in
// static/ is exactly what the browser runs, and running SkyTrail needs no
// Node.js.
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
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// assetExt are the extensions of files the UI loads.
var assetExt = map[string]bool{".js": true, ".mjs": true, ".css": true, ".svg": true, ".png": true, ".ico": true, ".map": true, ".woff2": true, ".html": true, ".json": true, ".txt": true}

// asset is one embedded file, read once at start.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the UI. Mount it at "/" below the API routes: a path
// naming an embedded file serves that file; any other path without a file
// extension (a client-side route such as /traces/{traceID}) serves
// index.html, so every view's URL can be shared and reloaded. A missing
// asset (a path ending in .js, .css, ...) is a 404, not index.html, so a
// broken reference fails loudly; other dots are not assets (a SkyWalking
// trace ID in /traces/{traceID} has several).
func Handler() http.Handler {
	assets, err := load()
	if err != nil {
		// The files are compiled in; failing to read them is a build bug.
		panic("ui: reading embedded assets: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
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
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		// Revalidate every time: the ETag makes that a cheap 304, and a new
		// binary's UI is never mixed with the old one's cached modules.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		// No inline script or style anywhere (the browser test fails on a CSP
		// violation); never framed, so no clickjacking.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

func load() (map[string]asset, error) {
	root, err := fs.Sub(embedded, "static")
	if err != nil {
		return nil, err
	}
	assets := map[string]asset{}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[p] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return assets, preloadModules(assets)
}

// preloadModules lists every module under js/ in index.html as a
// modulepreload link, where it says <!--modulepreload-->. Without them the
// browser learns of a module only when it has parsed the one importing it:
// app.js, then the pages, then what they import, three round trips of
// revalidation before the first page can draw. With them all are fetched
// at once, while index.html is still being read.
func preloadModules(assets map[string]asset) error {
	index, ok := assets["index.html"]
	if !ok {
		return errors.New("no index.html")
	}
	var links []string
	for name := range assets {
		if strings.HasPrefix(name, "js/") && path.Ext(name) == ".js" {
			links = append(links, `<link rel="modulepreload" href="/`+name+`">`)
		}
	}
	slices.Sort(links)
	const mark = "<!--modulepreload-->"
	if !bytes.Contains(index.body, []byte(mark)) {
		return errors.New("index.html lacks " + mark)
	}
	index.body = bytes.Replace(index.body, []byte(mark), []byte(strings.Join(links, "\n")), 1)
	sum := sha256.Sum256(index.body)
	index.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	assets["index.html"] = index
	return nil
}
