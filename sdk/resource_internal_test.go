package sdk

import "testing"

func TestDerivedInstanceIDIsStable(t *testing.T) {
	a, b := deriveInstanceID("checkout"), deriveInstanceID("checkout")
	if a != b {
		t.Errorf("two derivations differ: %s, %s", a, b)
	}
	if deriveInstanceID("payments") == a {
		t.Error("two services on one host share an instance ID")
	}
	// RFC 9562 appendix A.4 example: DNS namespace, "www.example.com".
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got := uuidV5(dns, "www.example.com"); got != "2ed6657d-e927-568b-95e1-2665a8aea6a2" {
		t.Errorf("uuidV5 = %s", got)
	}
}
