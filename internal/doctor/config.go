// Package doctor checks, from where a service runs, the path its traces take
// to SkyTrail: the settings its SDK reads, the endpoints (DNS, TCP, TLS,
// gRPC health, the agent token), a probe trace sent through the real OTLP
// exporter (and SkyWalking's protocol) and waited for on the query API, and
// the server's findings about the service.
package doctor

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Protocols, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config is what doctor checks. FromEnv fills it the way SDKs read their
// environment; flags override it.
type Config struct {
	// OTLPEndpoint is the exporter's endpoint as configured: a base URL
	// (OTEL_EXPORTER_OTLP_ENDPOINT), a full traces URL
	// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, TracesEndpoint true), or
	// host:port. Empty means the SDK default, localhost:4317 (gRPC) or
	// localhost:4318 (HTTP).
	OTLPEndpoint   string
	TracesEndpoint bool
	OTLPProtocol   string // ProtocolGRPC (default, as SkyTrail's SDK) or ProtocolHTTP
	OTLPInsecure   bool   // OTEL_EXPORTER_OTLP_INSECURE, for an endpoint without scheme
	OTLPHeaders    map[string]string
	// TLS of the exporter (and of doctor's own calls to the query API):
	// CAFile is OTEL_EXPORTER_OTLP_CERTIFICATE, ClientCert and ClientKey
	// OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and _KEY (mutual TLS).
	CAFile, ClientCert, ClientKey string
	// InsecureSkipVerify accepts any server certificate (a test server's).
	InsecureSkipVerify bool
	// SkipOTLP leaves the OTLP path out (a SkyWalking-only service).
	SkipOTLP bool

	ServiceName string // OTEL_SERVICE_NAME, else SW_AGENT_NAME
	Sampler     string // OTEL_TRACES_SAMPLER
	SamplerArg  string // OTEL_TRACES_SAMPLER_ARG

	// SWBackend is SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE (host:port);
	// empty skips the SkyWalking checks.
	SWBackend string
	SWToken   string // SW_AGENT_AUTHENTICATION
	// SWTLS dials the SkyWalking backend over TLS
	// (SW_AGENT_REPORTER_GRPC_TLS_ENABLE).
	SWTLS bool

	// Server is the query API's base URL; empty means port 8080 on the
	// OTLP endpoint's host.
	Server string
	// APIToken is sent as Authorization: Bearer to the query API, when the
	// server asks for one (SKYTRAIL_API_TOKEN; a read-only token will do).
	APIToken string
	// Service names the service whose findings to print ("" for
	// ServiceName).
	Service string
	// Wait bounds the wait for a probe trace to be searchable (default 30 s).
	Wait time.Duration
	// DialTimeout bounds each connection check (default 5 s).
	DialTimeout time.Duration
}

// FromEnv reads the variables OpenTelemetry SDKs and SkyWalking agents read.
func FromEnv(getenv func(string) string) Config {
	c := Config{
		OTLPProtocol: first(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), getenv("OTEL_EXPORTER_OTLP_PROTOCOL")),
		ServiceName:  first(getenv("OTEL_SERVICE_NAME"), getenv("SW_AGENT_NAME")),
		Sampler:      getenv("OTEL_TRACES_SAMPLER"),
		SamplerArg:   getenv("OTEL_TRACES_SAMPLER_ARG"),
		SWBackend:    getenv("SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE"),
		SWToken:      getenv("SW_AGENT_AUTHENTICATION"),
		SWTLS:        strings.EqualFold(getenv("SW_AGENT_REPORTER_GRPC_TLS_ENABLE"), "true"),
		CAFile:       first(getenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"), getenv("OTEL_EXPORTER_OTLP_CERTIFICATE")),
		ClientCert:   first(getenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"), getenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")),
		ClientKey:    first(getenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"), getenv("OTEL_EXPORTER_OTLP_CLIENT_KEY")),
		APIToken:     getenv("SKYTRAIL_API_TOKEN"),
	}
	if v := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		c.OTLPEndpoint, c.TracesEndpoint = v, true
	} else {
		c.OTLPEndpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	c.OTLPInsecure = strings.EqualFold(first(getenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE"), getenv("OTEL_EXPORTER_OTLP_INSECURE")), "true")
	if h := first(getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS"), getenv("OTEL_EXPORTER_OTLP_HEADERS")); h != "" {
		c.OTLPHeaders = map[string]string{}
		for _, kv := range strings.Split(h, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			k, _ = url.QueryUnescape(strings.TrimSpace(k))
			v, _ = url.QueryUnescape(strings.TrimSpace(v))
			c.OTLPHeaders[k] = v
		}
	}
	return c
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// otlpTarget is the resolved OTLP endpoint: the URL the exporter posts to
// (HTTP) or dials (gRPC; no path), scheme http meaning no TLS.
type otlpTarget struct {
	protocol string
	url      *url.URL
}

// resolveOTLP applies the exporters' rules: a base endpoint gets /v1/traces
// appended for HTTP, a traces endpoint is used as is; without a scheme, TLS
// unless insecure.
func (c *Config) resolveOTLP() (otlpTarget, error) {
	t := otlpTarget{protocol: c.OTLPProtocol}
	switch t.protocol {
	case "":
		t.protocol = ProtocolGRPC
	case ProtocolGRPC, ProtocolHTTP:
	case "http/json":
		return t, fmt.Errorf("OTLP protocol %q: Go's exporters speak only %q and %q", t.protocol, ProtocolGRPC, ProtocolHTTP)
	default:
		return t, fmt.Errorf("OTLP protocol %q is not one of %q, %q", t.protocol, ProtocolGRPC, ProtocolHTTP)
	}
	raw := c.OTLPEndpoint
	if raw == "" {
		raw = "http://localhost:4317"
		if t.protocol == ProtocolHTTP {
			raw = "http://localhost:4318"
		}
	}
	if !strings.Contains(raw, "://") {
		scheme := "https"
		if c.OTLPInsecure {
			scheme = "http"
		}
		raw = scheme + "://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return t, fmt.Errorf("OTLP endpoint %q is not a URL or host:port: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return t, fmt.Errorf("OTLP endpoint %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return t, fmt.Errorf("OTLP endpoint %q names no host", raw)
	}
	if t.protocol == ProtocolHTTP && (!c.TracesEndpoint || u.Path == "" || u.Path == "/") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	if t.protocol == ProtocolGRPC {
		u.Path = ""
	}
	t.url = u
	return t, nil
}

// hostPort is the address dialled for url.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// serverURL is the query API's base URL.
func (c *Config) serverURL(otlp *url.URL) string {
	if c.Server != "" {
		s := c.Server
		if !strings.Contains(s, "://") {
			s = "http://" + s
		}
		return strings.TrimSuffix(s, "/")
	}
	host, scheme := "localhost", "http"
	if otlp != nil {
		host = otlp.Hostname()
		if otlp.Scheme == "https" {
			scheme = "https" // a server with TLS has it on every port
		}
	} else if h, _, err := net.SplitHostPort(c.SWBackend); err == nil && h != "" {
		host = h
		if c.SWTLS {
			scheme = "https"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, "8080")
}

// samplerProblem says what is wrong with the sampler settings, if
// anything: severity "fail" when nothing would be sampled.
func (c *Config) samplerProblem() (status Status, detail string) {
	ratio := func() (float64, bool) {
		if c.SamplerArg == "" {
			return 1, true
		}
		r, err := strconv.ParseFloat(c.SamplerArg, 64)
		return r, err == nil
	}
	switch c.Sampler {
	case "", "always_on", "parentbased_always_on":
		return StatusOK, "sampler " + first(c.Sampler, "parentbased_always_on (default)")
	case "always_off", "parentbased_always_off":
		return StatusFail, fmt.Sprintf("OTEL_TRACES_SAMPLER=%s: the SDK records no span at all", c.Sampler)
	case "traceidratio", "parentbased_traceidratio":
		r, ok := ratio()
		switch {
		case !ok:
			return StatusFail, fmt.Sprintf("OTEL_TRACES_SAMPLER_ARG=%q is not a number: the SDK falls back to its default", c.SamplerArg)
		case r <= 0:
			return StatusFail, fmt.Sprintf("OTEL_TRACES_SAMPLER=%s with OTEL_TRACES_SAMPLER_ARG=%s: a ratio of 0 records no span", c.Sampler, c.SamplerArg)
		case r < 0.01:
			return StatusWarn, fmt.Sprintf("sampler %s at %s: fewer than 1 trace in 100 is kept", c.Sampler, c.SamplerArg)
		}
		return StatusOK, fmt.Sprintf("sampler %s at %s", c.Sampler, first(c.SamplerArg, "1"))
	}
	return StatusWarn, fmt.Sprintf("OTEL_TRACES_SAMPLER=%q is not a standard sampler: the SDK may ignore it", c.Sampler)
}
