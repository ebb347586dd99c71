package sdk

import (
	"crypto/tls"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Protocols the exporter speaks, as OTEL_EXPORTER_OTLP_PROTOCOL names them.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Defaults applied when neither an option nor the environment says otherwise.
const (
	DefaultTracesPerSecond = 100
	DefaultStartupCheck    = time.Second
)

type config struct {
	serviceName    string
	serviceVersion string
	instanceID     string
	attributes     []attribute.KeyValue

	protocol  string
	endpoint  string
	insecure  bool
	tlsConfig *tls.Config
	headers   map[string]string
	timeout   time.Duration

	tracesPerSecond float64
	sampler         sdktrace.Sampler
	propagator      propagation.TextMapPropagator
	batchTimeout    time.Duration
	processors      []sdktrace.SpanProcessor
	exporter        sdktrace.SpanExporter

	startupCheck time.Duration
	logger       *slog.Logger

	logs bool // WithLogs
}

// Option configures Start. Options win over the OTEL_* environment variables.
type Option func(*config)

// WithServiceName sets service.name (else OTEL_SERVICE_NAME, else
// service.name in OTEL_RESOURCE_ATTRIBUTES, else unknown_service:<executable>).
func WithServiceName(name string) Option { return func(c *config) { c.serviceName = name } }

// WithServiceVersion sets service.version.
func WithServiceVersion(version string) Option {
	return func(c *config) { c.serviceVersion = version }
}

// WithServiceInstanceID sets service.instance.id (else the one in
// OTEL_RESOURCE_ATTRIBUTES, else one derived from the host and process, stable
// across restarts of the same deployment slot).
func WithServiceInstanceID(id string) Option { return func(c *config) { c.instanceID = id } }

// WithResourceAttributes adds resource attributes, over those detected and
// those in OTEL_RESOURCE_ATTRIBUTES.
func WithResourceAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attributes = append(c.attributes, attrs...) }
}

// WithProtocol selects ProtocolGRPC (the default) or ProtocolHTTP
// (else OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL).
func WithProtocol(protocol string) Option { return func(c *config) { c.protocol = protocol } }

// WithEndpoint sets where spans go: a URL ("http://collector:4317",
// "https://collector:4318/v1/traces") or host:port, which uses TLS unless
// WithInsecure is given (else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
// OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4317 for gRPC and
// http://localhost:4318 for HTTP). An http:// URL means no TLS.
func WithEndpoint(endpoint string) Option { return func(c *config) { c.endpoint = endpoint } }

// WithInsecure sends spans without TLS.
func WithInsecure() Option { return func(c *config) { c.insecure = true } }

// WithTLSConfig sets the TLS client configuration (else the system roots, or
// OTEL_EXPORTER_OTLP_CERTIFICATE and friends).
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tlsConfig = cfg } }

// WithHeaders sets headers (gRPC metadata) sent with every export, e.g. an
// authorisation token (else OTEL_EXPORTER_OTLP_HEADERS).
func WithHeaders(headers map[string]string) Option {
	return func(c *config) { c.headers = headers }
}

// WithTimeout bounds each export (else OTEL_EXPORTER_OTLP_TIMEOUT, else 10 s).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithTracesPerSecond sets how many new traces per second the adaptive head
// sampler keeps at most (default DefaultTracesPerSecond).
func WithTracesPerSecond(n float64) Option { return func(c *config) { c.tracesPerSecond = n } }

// WithSampler replaces the parent-based adaptive sampler altogether.
func WithSampler(s sdktrace.Sampler) Option { return func(c *config) { c.sampler = s } }

// WithPropagator replaces the default propagation (extract sw8 or W3C
// tracecontext, inject both, plus W3C baggage and sw8-correlation).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithBatchTimeout sets the longest a finished span waits before it is sent
// (else OTEL_BSP_SCHEDULE_DELAY, else 5 s). Tests use a few milliseconds.
func WithBatchTimeout(d time.Duration) Option { return func(c *config) { c.batchTimeout = d } }

// WithSpanProcessor adds a span processor beside the exporting one.
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(c *config) { c.processors = append(c.processors, p) }
}

// WithExporter replaces the OTLP exporter, e.g. with a stdout one while
// developing; the endpoint options and the start-up check then do not apply.
func WithExporter(e sdktrace.SpanExporter) Option { return func(c *config) { c.exporter = e } }

// WithStartupCheck bounds how long Start waits to learn whether the endpoint
// is reachable (default DefaultStartupCheck); 0 or less skips the check.
func WithStartupCheck(d time.Duration) Option { return func(c *config) { c.startupCheck = d } }

// WithLogger sets where Start logs its one line about the endpoint (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }
