// Package traceid maps the identifiers of every protocol SkyTrail accepts onto
// OpenTelemetry's 16-byte trace IDs and 8-byte span IDs.
//
// OpenTelemetry IDs are fixed-size bytes; SkyWalking's are strings (go2sky sends
// 32 hex characters, skywalking-go sends forms such as
// "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001") and its spans are
// numbered within a segment. The mapping below is a contract: the receivers,
// the query API and the sw8 propagator in sdk/ all apply it, so a trace that
// crosses both kinds of agent joins into one and a SkyWalking trace stays
// findable by the exact string its agent logged. docs/api.md states it.
package traceid

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// FromString returns the trace ID for s: the bytes themselves when s is 32 hex
// characters (OpenTelemetry's own form, and go2sky's), otherwise the first 16
// bytes of SHA-256(s). It reports false for an empty or all-zero result.
func FromString(s string) (pcommon.TraceID, bool) {
	var id pcommon.TraceID
	if len(s) == 32 {
		if _, err := hex.Decode(id[:], []byte(s)); err == nil {
			return id, !id.IsEmpty()
		}
	}
	if s == "" {
		return id, false
	}
	sum := sha256.Sum256([]byte(s))
	copy(id[:], sum[:16])
	return id, true
}

// SpanIDFromSegment returns the span ID for span number spanID of the
// SkyWalking segment segmentID. A segment ID of 16 hex characters with span 0
// decodes to those bytes: that is how an OpenTelemetry span travels in an sw8
// header (its span ID as the parent segment, span 0), so a SkyWalking child
// links back to it. Any other pair hashes: the first 8 bytes of
// SHA-256(segmentID + "-" + decimal spanID).
func SpanIDFromSegment(segmentID string, spanID int32) pcommon.SpanID {
	var id pcommon.SpanID
	if spanID == 0 && len(segmentID) == 16 {
		if _, err := hex.Decode(id[:], []byte(segmentID)); err == nil && !id.IsEmpty() {
			return id
		}
		id = pcommon.SpanID{}
	}
	var stack [96]byte // segment IDs are short: hash without a heap allocation
	buf := append(stack[:0], segmentID...)
	buf = append(buf, '-')
	buf = strconv.AppendInt(buf, int64(spanID), 10)
	sum := sha256.Sum256(buf)
	copy(id[:], sum[:8])
	return id
}

// MaxInputLen bounds a trace ID string a user may ask for; SkyWalking's
// longest forms are well under it.
const MaxInputLen = 256

// Candidates maps a trace ID as a user gives it to the IDs it may be
// stored under, most likely first. Hex up to 32 digits is an OpenTelemetry
// or Jaeger ID, left-padded with zeros as Jaeger does for 64-bit IDs;
// anything else is a SkyWalking trace ID, mapped as FromString maps it on
// ingest. Short hex may also be a SkyWalking ID, so its mapped form comes
// second. There is no case folding: hex decodes in either case, and a
// SkyWalking ID must hash exactly as its agent reported it.
func Candidates(s string) ([]pcommon.TraceID, error) {
	switch {
	case s == "":
		return nil, errors.New("empty trace ID")
	case len(s) > MaxInputLen:
		return nil, fmt.Errorf("trace ID of %d characters is longer than %d", len(s), MaxInputLen)
	}
	var out []pcommon.TraceID
	if len(s) <= 32 && isHex(s) {
		id, ok := FromString(strings.Repeat("0", 32-len(s)) + s)
		if !ok {
			return nil, errors.New("trace ID is all zeros")
		}
		out = append(out, id)
		if len(s) == 32 {
			return out, nil
		}
	}
	if id, ok := FromString(s); ok {
		out = append(out, id)
	}
	return out, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
