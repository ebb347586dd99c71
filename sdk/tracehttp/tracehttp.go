// Package tracehttp wraps otelhttp so HTTP servers and clients are traced the
// way SkyTrail groups them: server spans are named by route template
// ("GET /orders/{id}"), never by raw path, which would make every order ID its
// own endpoint; outgoing calls carry sw8 as well as traceparent, with the
// caller's endpoint and the address called.
package tracehttp

import (
	"net"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/sdk/sw8"
)

// RouteFunc returns the route template that will serve r, or "" if unknown.
type RouteFunc func(r *http.Request) string

type config struct {
	route RouteFunc
	otel  []otelhttp.Option
}

// Option configures NewHandler or NewTransport.
type Option func(*config)

// WithRoute sets how the route template of a request is found, for routers
// other than http.ServeMux (whose patterns NewHandler reads itself).
func WithRoute(f RouteFunc) Option { return func(c *config) { c.route = f } }

// WithOtelhttpOptions passes options through to otelhttp.
func WithOtelhttpOptions(opts ...otelhttp.Option) Option {
	return func(c *config) { c.otel = append(c.otel, opts...) }
}

// NewHandler traces the requests h serves. Spans are named "METHOD route":
// the route comes from WithRoute, or from h's pattern when h is an
// *http.ServeMux (read before serving, so calls made while serving name it
// in sw8), or from the pattern a ServeMux behind middleware records (known
// only once served); a request no route matches is named by its method alone.
func NewHandler(h http.Handler, opts ...Option) http.Handler {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if mux, ok := h.(*http.ServeMux); ok && c.route == nil {
		c.route = func(r *http.Request) string {
			_, pattern := mux.Handler(r)
			return pattern
		}
	}
	name := func(_ string, r *http.Request) string {
		var route string
		if c.route != nil {
			route = c.route(r)
		}
		if route == "" {
			route = r.Pattern
		}
		switch {
		case route == "":
			return r.Method
		case strings.Contains(route, " "): // a ServeMux pattern naming its method
			return route
		default:
			return r.Method + " " + route
		}
	}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ro, ok := trace.SpanFromContext(r.Context()).(sdktrace.ReadOnlySpan)
		if !ok { // not recording: nothing to name, nothing sw8 would send
			h.ServeHTTP(w, r)
			return
		}
		// Calls made while serving carry this endpoint in sw8, as
		// SkyWalking agents send their entry endpoint.
		r2 := r.WithContext(sw8.ContextWithEndpoint(r.Context(), ro.Name()))
		h.ServeHTTP(w, r2)
		// A ServeMux behind middleware records its pattern on the request
		// it was given: name the span by it when nothing better was known.
		if r2.Pattern != "" && ro.Name() == r.Method {
			trace.SpanFromContext(r.Context()).SetName(name("", r2))
		}
	})
	o := append([]otelhttp.Option{otelhttp.WithSpanNameFormatter(name)}, c.otel...)
	return otelhttp.NewHandler(inner, "", o...)
}

// NewTransport traces requests sent through base (http.DefaultTransport when
// nil): one client span per request, named by its method, with context
// propagated in the request headers.
func NewTransport(base http.RoundTripper, opts ...Option) http.RoundTripper {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if base == nil {
		base = http.DefaultTransport
	}
	o := append([]otelhttp.Option{otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method })}, c.otel...)
	return peerTransport{next: otelhttp.NewTransport(base, o...)}
}

// NewClient returns an http.Client whose requests are traced.
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(nil, opts...)}
}

// peerTransport records the address being called for the sw8 header.
type peerTransport struct{ next http.RoundTripper }

func (t peerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.next.RoundTrip(r.WithContext(sw8.ContextWithPeer(r.Context(), hostPort(r))))
}

func hostPort(r *http.Request) string {
	if r.URL.Port() != "" {
		return r.URL.Host
	}
	port := "80"
	if r.URL.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(r.URL.Hostname(), port)
}
