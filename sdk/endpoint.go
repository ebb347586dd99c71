package sdk

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// target is where the exporter sends spans, resolved from options and the
// environment.
type target struct {
	protocol string
	url      *url.URL // scheme http means no TLS; path only for ProtocolHTTP
}

// resolveTarget applies the OpenTelemetry exporter rules: the signal-specific
// variable over the general one, options over both. A general endpoint is a
// base URL to which HTTP appends /v1/traces; a traces endpoint is used as is.
func resolveTarget(c *config) (target, error) {
	t := target{protocol: c.protocol}
	if t.protocol == "" {
		t.protocol = firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch t.protocol {
	case "":
		t.protocol = ProtocolGRPC
	case ProtocolGRPC, ProtocolHTTP:
	default:
		return t, fmt.Errorf("skytrail sdk: protocol %q is not supported, want %q or %q", t.protocol, ProtocolGRPC, ProtocolHTTP)
	}

	raw, fromBase := c.endpoint, false
	if raw == "" {
		if raw = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); raw == "" {
			raw, fromBase = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), true
		}
	}
	if raw == "" {
		raw = "http://localhost:4317"
		if t.protocol == ProtocolHTTP {
			raw = "http://localhost:4318"
		}
	}
	if !strings.Contains(raw, "://") {
		scheme := "https"
		if c.insecure || envTrue("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE") {
			scheme = "http"
		}
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return t, fmt.Errorf("skytrail sdk: endpoint %q is not a URL or host:port: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return t, fmt.Errorf("skytrail sdk: endpoint %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return t, fmt.Errorf("skytrail sdk: endpoint %q names no host", raw)
	}
	if c.insecure {
		u.Scheme = "http"
	}
	if t.protocol == ProtocolHTTP && (fromBase || u.Path == "" || u.Path == "/") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	if t.protocol == ProtocolGRPC {
		u.Path = ""
	}
	t.url = u
	return t, nil
}

// hostPort is the address the start-up check dials.
func (t target) hostPort() string {
	if t.url.Port() != "" {
		return t.url.Host
	}
	port := "443"
	if t.url.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(t.url.Hostname(), port)
}

func (t target) String() string {
	kind := "OTLP/gRPC"
	if t.protocol == ProtocolHTTP {
		kind = "OTLP/HTTP"
	}
	return t.url.String() + " (" + kind + ")"
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func envTrue(names ...string) bool {
	return strings.EqualFold(strings.TrimSpace(firstEnv(names...)), "true")
}
