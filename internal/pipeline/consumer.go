// Package pipeline is the front door every piece of telemetry goes through,
// whichever receiver decoded it: admission within an in-flight budget (so
// overload is a retryable answer, never unbounded memory), validation
// against what storage can keep, the service and instance of each resource
// worked out once, counting by receiver, signal and reason, refusals
// published to subscribers, the batch made durable in the journal (the
// write-ahead log) when there is one, and fan-out to the consumers that
// store and analyse. A receiver acknowledges a request only after Ingest
// returned without error: what it acknowledged is in the journal and in
// every consumer.
package pipeline

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Signal names a kind of telemetry; it is the unit the receivers' counters
// count in.
type Signal string

// Signals.
const (
	SignalSpans      Signal = "spans"
	SignalLogs       Signal = "log_records"
	SignalMetrics    Signal = "metric_points"
	SignalHeartbeats Signal = "heartbeats"
)

// Resource is who sent a batch's resource: worked out once, here, so that
// storage, figures and integrity name it alike.
type Resource struct {
	// Service is service.name, or UnknownService without one.
	Service string
	// Instance is service.instance.id, else host.name:process.pid, else
	// host.name; "" when the resource names none of them.
	Instance string
	// Probe marks `skytrail doctor`'s probe spans: they are stored, so the
	// probe can be looked up, but they are no service's traffic and the
	// analysis and the service lists leave them out.
	Probe bool
}

// ProbeService is the service probe spans are stored under, and
// ProbeAttribute the resource attribute (true) that marks a probe whatever
// its service.name; a SkyWalking segment, which has no resource
// attributes, is a probe by this service name alone.
const (
	ProbeService   = "skytrail-doctor"
	ProbeAttribute = "skytrail.probe"
)

// UnknownService is the service of a resource without service.name, as
// OpenTelemetry SDKs name it.
const UnknownService = "unknown_service"

// Traces is a batch of spans. Receivers fill Traces; the pipeline fills
// Resources, one for each ResourceSpans, before any consumer sees it.
type Traces struct {
	ptrace.Traces
	Resources []Resource
	// Refused is what the receiver's decoder already turned away from the
	// same request (SkyWalking segments it could not convert).
	Refused Refused
	// Raw is the request's OTLP protobuf as received, when the receiver has
	// it: the journal writes it rather than marshalling the batch again,
	// when validation removed nothing and identification rewrote nothing
	// (an Export request and TracesData share their wire format). The
	// caller keeps it unchanged until Ingest returns.
	Raw []byte
	// RawRoom, when set, is Raw with RecordHeaderSize bytes of room in
	// front (Raw == RawRoom[RecordHeaderSize:]): the journal writes its
	// header there and the request needs no copy.
	RawRoom []byte
	rawOK   bool
}

// RecordHeaderSize is the bytes a journal record puts in front of a
// batch's OTLP protobuf (see Traces.RawRoom).
const RecordHeaderSize = 2

// Logs is a batch of log records, as Traces is of spans.
type Logs struct {
	plog.Logs
	Resources []Resource
	Refused   Refused
	Raw       []byte
	RawRoom   []byte
	// Checked says the receiver passed every record through
	// Pipeline.CheckLog, which normalised it: Ingest does not again.
	Checked bool
	rawOK   bool
}

// Metrics is a batch of agent-reported metrics.
type Metrics struct {
	pmetric.Metrics
	Resources []Resource
	Refused   Refused
	Raw       []byte
	RawRoom   []byte
	rawOK     bool
}

// Refused counts the items of a request a receiver turned away while
// decoding it, keeping the rest.
type Refused struct {
	Items int
	// First says why the first was refused.
	First string
}

// Heartbeat is one sign of life from a service instance: a SkyWalking
// keepAlive or reportInstanceProperties, or an OTLP resource seen in a batch.
type Heartbeat struct {
	Service  string
	Instance string
	Layer    string
	// Properties is nil for a bare keep-alive; otherwise the instance's
	// reported properties (SkyWalking's "Process No.", "hostname", ...; OTLP
	// resource attributes).
	Properties map[string]string
	// Protocol names the receiver: "otlp" or "skywalking".
	Protocol string
	At       time.Time
}

// TracesConsumer takes spans. ConsumeTraces returns only after the spans are
// accepted (for a store: written to its buffers, flushed on graceful
// shutdown); the caller may reuse the batch afterwards, so a consumer copies
// what it keeps.
type TracesConsumer interface {
	ConsumeTraces(ctx context.Context, td Traces) error
}

// LogsConsumer takes log records.
type LogsConsumer interface {
	ConsumeLogs(ctx context.Context, ld Logs) error
}

// MetricsConsumer takes agent-reported metrics (SkyWalking's meters).
type MetricsConsumer interface {
	ConsumeMetrics(ctx context.Context, md Metrics) error
}

// HeartbeatConsumer takes heartbeats (the instance registry).
type HeartbeatConsumer interface {
	ConsumeHeartbeat(ctx context.Context, hb Heartbeat) error
}

// Consumers are where admitted data goes, each kind in the order given: put
// storage first, so a consumer that only aggregates in memory never sees
// data storage refused.
type Consumers struct {
	Traces     []TracesConsumer
	Logs       []LogsConsumer
	Metrics    []MetricsConsumer
	Heartbeats []HeartbeatConsumer
}

// TracesOf wraps td with its resources worked out, for code that hands
// spans to a consumer without the pipeline (benchmarks, tests, tools).
func TracesOf(td ptrace.Traces) Traces {
	t := Traces{Traces: td}
	t.Resources, _ = identify(t.Resources, td.ResourceSpans().Len(), func(i int) pcommon.Map {
		return td.ResourceSpans().At(i).Resource().Attributes()
	})
	return t
}

// LogsOf wraps ld as TracesOf does td.
func LogsOf(ld plog.Logs) Logs {
	l := Logs{Logs: ld}
	l.Resources, _ = identify(l.Resources, ld.ResourceLogs().Len(), func(i int) pcommon.Map {
		return ld.ResourceLogs().At(i).Resource().Attributes()
	})
	return l
}

// MetricsOf wraps md as TracesOf does td.
func MetricsOf(md pmetric.Metrics) Metrics {
	m := Metrics{Metrics: md}
	m.Resources, _ = identify(m.Resources, md.ResourceMetrics().Len(), func(i int) pcommon.Map {
		return md.ResourceMetrics().At(i).Resource().Attributes()
	})
	return m
}

// identify works out each of n resources' service and instance into dst,
// and names the service of a resource without one UnknownService in the
// resource itself, so that what is stored says what the figures say. It
// reports whether it rewrote a resource.
func identify(dst []Resource, n int, attrs func(i int) pcommon.Map) ([]Resource, bool) {
	dst = dst[:0]
	rewrote := false
	for i := range n {
		r, rw := identifyResource(attrs(i))
		dst = append(dst, r)
		rewrote = rewrote || rw
	}
	return dst, rewrote
}

func identifyResource(attrs pcommon.Map) (Resource, bool) {
	var r Resource
	rewrote := false
	v, ok := attrs.Get("service.name")
	switch {
	case ok && v.Type() == pcommon.ValueTypeStr && v.Str() != "":
		r.Service = v.Str()
	case ok && v.Type() != pcommon.ValueTypeStr && v.AsString() != "":
		// A name sent as a number is still the name, stored as text.
		r.Service = v.AsString()
		attrs.PutStr("service.name", r.Service)
		rewrote = true
	default:
		r.Service = UnknownService
		attrs.PutStr("service.name", UnknownService)
		rewrote = true
	}
	if v, ok := attrs.Get(ProbeAttribute); ok && v.Type() == pcommon.ValueTypeBool && v.Bool() {
		r.Service = ProbeService
		attrs.PutStr("service.name", ProbeService)
	}
	r.Probe = r.Service == ProbeService
	if v, ok := attrs.Get("service.instance.id"); ok {
		r.Instance = v.AsString()
	}
	if r.Instance == "" {
		var host, pid string
		if v, ok := attrs.Get("host.name"); ok {
			host = v.AsString()
		}
		if v, ok := attrs.Get("process.pid"); ok {
			pid = v.AsString()
		}
		switch {
		case host != "" && pid != "":
			r.Instance = host + ":" + pid
		case host != "":
			r.Instance = host
		}
	}
	return r, rewrote
}
