package sw8

import "testing"

// The vectors pin the mapping contract shared with the SkyTrail server; the
// hashed ones were computed independently (Python hashlib).
func TestTraceIDFromString(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4736", true},
		{"4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736", true},
		{"6e4a083be8da11f1918c9e2254654e93.28.40073696306070001", "309b4b52ca8beb8d58fe0c183fde5c7d", true},
		{"abc", "ba7816bf8f01cfea414140de5dae2223", true},
		{"0123456789abcdef0123456789ABCDEX", "901909c081a313ae1925360aa9b6dbdd", true},
		{"00000000000000000000000000000000", "00000000000000000000000000000000", false},
		{"", "00000000000000000000000000000000", false},
	} {
		got, ok := TraceIDFromString(tc.in)
		if got.String() != tc.want || ok != tc.ok {
			t.Errorf("TraceIDFromString(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSpanIDFromSegment(t *testing.T) {
	for _, tc := range []struct {
		seg  string
		span int32
		want string
	}{
		{"00f067aa0ba902b7", 0, "00f067aa0ba902b7"},
		{"0000000000000000", 0, "6f387f3e7e12782f"},
		{"a1b2c3d4e5f60718", 1, "63eb5dc4803ce09c"},
		{"6e4a083be8da11f1918c9e2254654e93", 3, "9f340c6cfa4d3f8d"},
		{"zzzzzzzzzzzzzzzz", 0, "de4f5c902feb504b"},
	} {
		if got := SpanIDFromSegment(tc.seg, tc.span).String(); got != tc.want {
			t.Errorf("SpanIDFromSegment(%q, %d) = %s, want %s", tc.seg, tc.span, got, tc.want)
		}
	}
}
