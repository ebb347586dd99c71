package sw8

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"go.opentelemetry.io/otel/trace"
)

// The mapping below is SkyTrail's ID contract, the same one the server
// applies to every SkyWalking segment it receives (internal/traceid in the
// server module; this module must not import it, so it is restated here and
// pinned by tests against fixed vectors). A trace crossing OpenTelemetry and
// SkyWalking agents only joins into one when both sides map alike.

// TraceIDFromString returns the OpenTelemetry trace ID for a SkyWalking
// trace ID: the bytes themselves when s is 32 hex characters (OpenTelemetry's
// own form, and go2sky's), otherwise the first 16 bytes of SHA-256(s). It
// reports false for an empty or all-zero result.
func TraceIDFromString(s string) (trace.TraceID, bool) {
	var id trace.TraceID
	if len(s) == 32 {
		if _, err := hex.Decode(id[:], []byte(s)); err == nil {
			return id, id.IsValid()
		}
	}
	if s == "" {
		return id, false
	}
	sum := sha256.Sum256([]byte(s))
	copy(id[:], sum[:16])
	return id, true
}

// SpanIDFromSegment returns the OpenTelemetry span ID for span number spanID
// of SkyWalking segment segmentID. Span 0 of a segment ID of 16 hex
// characters decodes to those bytes: that is how an OpenTelemetry span
// travels in sw8 (its span ID as the parent segment, span 0), so the reference
// a SkyWalking child records points back at it. Any other pair hashes: the
// first 8 bytes of SHA-256(segmentID + "-" + decimal spanID).
func SpanIDFromSegment(segmentID string, spanID int32) trace.SpanID {
	var id trace.SpanID
	if spanID == 0 && len(segmentID) == 16 {
		if _, err := hex.Decode(id[:], []byte(segmentID)); err == nil && id.IsValid() {
			return id
		}
		id = trace.SpanID{}
	}
	buf := make([]byte, 0, len(segmentID)+12)
	buf = append(buf, segmentID...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, int64(spanID), 10)
	sum := sha256.Sum256(buf)
	copy(id[:], sum[:8])
	return id
}
