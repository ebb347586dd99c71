// Package loadgen generates realistic multi-service trace traffic over OTLP
// gRPC or SkyWalking gRPC, at a target rate or as fast as the server takes
// it, cheaply enough that a small machine can run it beside the server it
// measures. `skytrail loadgen` is its command line; Run is the API for
// benchmarks and tests.
package loadgen

import (
	"crypto/tls"
	"fmt"
	"io"
	"time"
)

// Protocol is the wire protocol the load goes out on.
type Protocol string

const (
	// ProtocolOTLP sends ExportTraceServiceRequests to
	// opentelemetry.proto.collector.trace.v1.TraceService/Export.
	ProtocolOTLP Protocol = "otlp"
	// ProtocolSkyWalking sends SegmentCollections to
	// skywalking.v3.TraceSegmentReportService/collectInSync.
	ProtocolSkyWalking Protocol = "skywalking"
)

// DefaultEndpoint is where a protocol's load goes unless told otherwise.
func DefaultEndpoint(p Protocol) string {
	if p == ProtocolSkyWalking {
		return "127.0.0.1:11800"
	}
	return "127.0.0.1:4317"
}

// Config says what load to send. The zero value, with Duration or Spans
// set, sends OTLP to 127.0.0.1:4317 as fast as it is taken.
type Config struct {
	Endpoint string   // host:port; DefaultEndpoint(Protocol) when empty
	Protocol Protocol // ProtocolOTLP when empty
	TLS      bool     // use TLS instead of plaintext
	// TLSConfig is the TLS client configuration when TLS is set (nil: the
	// system's roots): a CA, a client certificate for mutual TLS.
	TLSConfig *tls.Config
	// Token is sent with every request: as "Authorization: Bearer" over
	// OTLP (the server's --ingest-token), as SkyWalking's "Authentication"
	// metadata over SkyWalking (--sw-token).
	Token string

	Rate     float64       // spans per second; 0 sends as fast as the server acknowledges
	Duration time.Duration // stop issuing requests after this long; 0 = no limit
	Spans    int64         // stop once this many spans were issued (whole requests); 0 = no limit

	Concurrency int    // requests in flight at once; default 4
	Batch       int    // spans per request (whole traces, so about); default 1000
	Services    int    // distinct services; default 4 (frontend, order, inventory, payment)
	PoolSize    int    // pre-encoded requests to cycle through; default 64
	Seed        uint64 // 0 = random; a fixed seed repeats the same trace IDs in every run

	RequestTimeout time.Duration // per attempt; default 10s
	MaxRetryTime   time.Duration // give up on a request retried this long; default 30s

	Progress         io.Writer     // progress lines go here; nil for none
	ProgressInterval time.Duration // default 1s
	ProgressTTY      bool          // redraw one line with "\r" instead of printing lines
}

func (c Config) withDefaults() (Config, error) {
	if c.Protocol == "" {
		c.Protocol = ProtocolOTLP
	}
	if c.Protocol != ProtocolOTLP && c.Protocol != ProtocolSkyWalking {
		return c, fmt.Errorf("unknown protocol %q: want %q or %q", c.Protocol, ProtocolOTLP, ProtocolSkyWalking)
	}
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint(c.Protocol)
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.Services == 0 {
		c.Services = 4
	}
	if c.PoolSize == 0 {
		c.PoolSize = 64
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.MaxRetryTime == 0 {
		c.MaxRetryTime = 30 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	switch {
	case c.Rate < 0:
		return c, fmt.Errorf("rate %v spans/s is negative", c.Rate)
	case c.Duration < 0:
		return c, fmt.Errorf("duration %v is negative", c.Duration)
	case c.Spans < 0:
		return c, fmt.Errorf("spans %d is negative", c.Spans)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return c, fmt.Errorf("concurrency %d is outside 1..1024", c.Concurrency)
	case c.Batch < 1 || c.Batch > 100000:
		return c, fmt.Errorf("batch %d spans is outside 1..100000", c.Batch)
	case c.Services < 1 || c.Services > 10000:
		return c, fmt.Errorf("services %d is outside 1..10000", c.Services)
	case c.PoolSize < 1:
		return c, fmt.Errorf("pool size %d is below 1", c.PoolSize)
	}
	// Every worker holds one request; fewer would leave workers idle.
	c.PoolSize = max(c.PoolSize, c.Concurrency)
	return c, nil
}

// Result is what a run achieved.
type Result struct {
	Protocol Protocol `json:"protocol"`
	Endpoint string   `json:"endpoint"`
	// Spans and Requests count what the server acknowledged.
	Spans    int64 `json:"spans"`
	Requests int64 `json:"requests"`
	// RejectedSpans were acknowledged but reported rejected (OTLP partial
	// success); they are included in Spans.
	RejectedSpans int64 `json:"rejected_spans"`
	// Errors counts requests that failed for good, by gRPC code; FailedSpans
	// is the spans they carried.
	Errors      map[string]int `json:"errors"`
	FailedSpans int64          `json:"failed_spans"`
	// UnsentSpans were in requests still waiting to be retried when the run
	// ended; they are neither sent nor failed.
	UnsentSpans int64 `json:"unsent_spans"`
	// Retries counts attempts that failed with a retryable code
	// (Unavailable, ResourceExhausted but for "message larger than max").
	Retries   map[string]int `json:"retries"`
	LastError string         `json:"last_error,omitempty"`

	Duration       time.Duration `json:"duration_ns"`
	SpansPerSecond float64       `json:"spans_per_second"`
	// EncodedBytesPerSpan is the average request size divided by its spans.
	EncodedBytesPerSpan float64 `json:"encoded_bytes_per_span"`
	// LatencyP50 and LatencyP99 are the round trips of acknowledged
	// requests (the attempt that succeeded), send to answer.
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
}
