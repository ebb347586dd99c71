package traceid

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// The mapping is a contract shared with sdk/sw8: these vectors pin it.
func TestFromString(t *testing.T) {
	id, ok := FromString("4bf92f3577b34da6a3ce929d0e0e4736")
	if !ok || hex.EncodeToString(id[:]) != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("32 hex chars: got %x, %v", id, ok)
	}
	sw := "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001"
	sum := sha256.Sum256([]byte(sw))
	if id, ok := FromString(sw); !ok || hex.EncodeToString(id[:]) != hex.EncodeToString(sum[:16]) {
		t.Errorf("skywalking-go ID: got %x", id)
	}
	if _, ok := FromString(""); ok {
		t.Error("empty string maps")
	}
	if _, ok := FromString("00000000000000000000000000000000"); ok {
		t.Error("all-zero hex maps")
	}
}

func TestSpanIDFromSegment(t *testing.T) {
	if id := SpanIDFromSegment("00f067aa0ba902b7", 0); hex.EncodeToString(id[:]) != "00f067aa0ba902b7" {
		t.Errorf("OpenTelemetry span as sw8 parent: got %x", id)
	}
	sum := sha256.Sum256([]byte("a1b2c3d4e5f60718293a4b5c6d7e8f90-3"))
	if id := SpanIDFromSegment("a1b2c3d4e5f60718293a4b5c6d7e8f90", 3); hex.EncodeToString(id[:]) != hex.EncodeToString(sum[:8]) {
		t.Errorf("segment span: got %x", id)
	}
	if a, b := SpanIDFromSegment("00f067aa0ba902b7", 1), SpanIDFromSegment("00f067aa0ba902b7", 0); a == b {
		t.Error("span 1 of a 16-hex segment collides with span 0")
	}
}
