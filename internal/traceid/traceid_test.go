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

func TestCandidates(t *testing.T) {
	ids, err := Candidates("00F067AA0BA902B7")
	if err != nil || len(ids) != 2 || hex.EncodeToString(ids[0][:]) != "000000000000000000f067aa0ba902b7" {
		t.Errorf("64-bit hex: %x, %v", ids, err)
	}
	sw := "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001"
	if ids, err := Candidates(sw); err != nil || len(ids) != 1 {
		t.Errorf("SkyWalking ID: %x, %v", ids, err)
	} else if want, _ := FromString(sw); ids[0] != want {
		t.Errorf("SkyWalking ID maps to %x, want %x", ids[0], want)
	}
	upper := "AbC.1.2"
	if ids, _ := Candidates(upper); len(ids) != 1 {
		t.Errorf("mixed-case SkyWalking ID: %x", ids)
	} else if lower, _ := FromString("abc.1.2"); ids[0] == lower {
		t.Error("a SkyWalking ID was case-folded")
	}
	for _, bad := range []string{"", "00000000000000000000000000000000", string(make([]byte, 300))} {
		if _, err := Candidates(bad); err == nil {
			t.Errorf("Candidates(%.20q) accepted", bad)
		}
	}
}
