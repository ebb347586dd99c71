// Package sw8 is an OpenTelemetry propagator for SkyWalking's sw8 and
// sw8-correlation headers, so that a trace continues across services
// instrumented with OpenTelemetry and with SkyWalking agents (go2sky,
// skywalking-go, the Java agent) in both directions.
//
// IDs are translated by SkyTrail's mapping contract (TraceIDFromString,
// SpanIDFromSegment): an OpenTelemetry span is injected as trace ID = its
// 32-hex trace ID, parent segment = its 16-hex span ID, parent span = 0, which
// the mapping turns back into exactly that span, so the SkyWalking callee's
// segment reference points at it. sw8-correlation is carried as baggage.
package sw8

import (
	"context"
	"encoding/hex"
	"unicode/utf8"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Canonical forms of the header names, used with http.Header carriers so a
// lookup does not allocate a canonicalised copy of the key on every request.
const (
	canonicalHeader      = "Sw8"
	canonicalCorrelation = "Sw8-Correlation"
)

// Inject limits, in bytes before base64, so that a header stays under
// MaxHeaderLen (4 names of 256 and a trace ID of 128 encode to about 1.6 KB).
const (
	maxNameLen       = 256
	maxResentTraceID = 128
)

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Propagator injects and extracts sw8 and sw8-correlation. The zero value is
// usable: it takes the parent service and instance from the span's resource.
type Propagator struct {
	service  string
	instance string
}

var _ propagation.TextMapPropagator = Propagator{}

// Option configures a Propagator.
type Option func(*Propagator)

// WithService sets the parent service and instance names written on inject.
// Without it they come from the service.name and service.instance.id of the
// current span's resource, or "-" when the span is not an SDK span.
func WithService(service, instance string) Option {
	return func(p *Propagator) { p.service, p.instance = service, instance }
}

// New returns a Propagator.
func New(opts ...Option) Propagator {
	var p Propagator
	for _, o := range opts {
		o(&p)
	}
	return p
}

// Fields returns the header names this propagator writes.
func (Propagator) Fields() []string { return []string{HeaderName, CorrelationHeaderName} }

// Inject writes sw8 for the span in ctx, and sw8-correlation for its baggage.
// Nothing is written for an invalid or unsampled span: SkyWalking agents
// propagate no context from traces they do not record, and a SkyWalking callee
// treats any sw8 as a trace it must record (go2sky ignores the sample flag).
func (p Propagator) Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	span := trace.SpanFromContext(ctx)
	sc := span.SpanContext()
	if !sc.IsValid() || !sc.IsSampled() {
		return
	}
	var traceHex [32]byte
	tid := sc.TraceID()
	hex.Encode(traceHex[:], tid[:])
	traceID := string(traceHex[:])
	if up, ok := ctx.Value(extractedKey{}).(*Header); ok {
		// Keep the caller's own string (skywalking-go's are not hex) so
		// SkyWalking agents downstream show the trace under the ID it began with.
		// An ID too long to resend is replaced by its hex mapping, which
		// maps to the same trace.
		if id, ok := TraceIDFromString(up.TraceID); ok && id == sc.TraceID() && len(up.TraceID) <= maxResentTraceID {
			traceID = up.TraceID
		}
	}
	var spanHex [16]byte
	sid := sc.SpanID()
	hex.Encode(spanHex[:], sid[:])

	h := Header{
		Sampled:               true,
		TraceID:               traceID,
		ParentSegmentID:       string(spanHex[:]),
		ParentService:         p.service,
		ParentServiceInstance: p.instance,
		ParentEndpoint:        stringValue(ctx, endpointKey{}),
		AddressUsedAtClient:   stringValue(ctx, peerKey{}),
	}
	if ro, ok := span.(sdktrace.ReadOnlySpan); ok {
		if h.ParentEndpoint == "" {
			h.ParentEndpoint = ro.Name()
		}
		if h.ParentService == "" || h.ParentServiceInstance == "" {
			attrs := ro.Resource().Set()
			if v, ok := attrs.Value(semconv.ServiceNameKey); ok && h.ParentService == "" {
				h.ParentService = v.AsString()
			}
			if v, ok := attrs.Value(semconv.ServiceInstanceIDKey); ok && h.ParentServiceInstance == "" {
				h.ParentServiceInstance = v.AsString()
			}
		}
	}
	// Keep the header well inside MaxHeaderLen whatever the names are.
	h.ParentService = clip(h.ParentService, maxNameLen)
	h.ParentServiceInstance = clip(h.ParentServiceInstance, maxNameLen)
	h.ParentEndpoint = clip(h.ParentEndpoint, maxNameLen)
	h.AddressUsedAtClient = clip(h.AddressUsedAtClient, maxNameLen)
	var buf [512]byte
	setHeader(carrier, HeaderName, canonicalHeader, string(h.appendTo(buf[:0])))

	if bag := baggage.FromContext(ctx); bag.Len() > 0 {
		members := bag.Members()
		kvs := make([][2]string, 0, len(members))
		for _, m := range members {
			kvs = append(kvs, [2]string{m.Key(), m.Value()})
		}
		if v := FormatCorrelation(kvs); v != "" {
			setHeader(carrier, CorrelationHeaderName, canonicalCorrelation, v)
		}
	}
}

// Extract reads sw8 into a remote span context and sw8-correlation into
// baggage. A malformed sw8 is ignored, leaving ctx as it was: the request then
// starts a new trace rather than failing.
func (Propagator) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	v := getHeader(carrier, HeaderName, canonicalHeader)
	if v == "" {
		// Agents send sw8-correlation only beside sw8, so a request without
		// sw8 costs one header lookup.
		return ctx
	}
	if h, err := Parse(v); err == nil {
		if sc, ok := h.SpanContext(); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			ctx = context.WithValue(ctx, extractedKey{}, &h)
		}
	}
	if v := getHeader(carrier, CorrelationHeaderName, canonicalCorrelation); v != "" {
		bag := baggage.FromContext(ctx)
		for _, kv := range ParseCorrelation(v) {
			m, err := baggage.NewMemberRaw(kv[0], kv[1])
			if err != nil {
				continue // a key OpenTelemetry baggage cannot hold
			}
			if b, err := bag.SetMember(m); err == nil {
				bag = b
			}
		}
		if bag.Len() > 0 {
			ctx = baggage.ContextWithBaggage(ctx, bag)
		}
	}
	return ctx
}

// SpanContext maps h onto the OpenTelemetry span context of the caller's
// span, by the ID mapping contract. It reports false when the IDs map to
// nothing valid.
func (h Header) SpanContext() (trace.SpanContext, bool) {
	tid, ok := TraceIDFromString(h.TraceID)
	if !ok {
		return trace.SpanContext{}, false
	}
	sid := SpanIDFromSegment(h.ParentSegmentID, h.ParentSpanID)
	if !sid.IsValid() {
		return trace.SpanContext{}, false
	}
	var flags trace.TraceFlags
	if h.Sampled {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    tid,
		SpanID:     sid,
		TraceFlags: flags,
		Remote:     true,
	}), true
}

func getHeader(carrier propagation.TextMapCarrier, key, canonical string) string {
	if hc, ok := carrier.(propagation.HeaderCarrier); ok {
		if vs := hc[canonical]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	return carrier.Get(key)
}

func setHeader(carrier propagation.TextMapCarrier, key, canonical, value string) {
	if hc, ok := carrier.(propagation.HeaderCarrier); ok {
		hc[canonical] = []string{value}
		return
	}
	carrier.Set(key, value)
}
