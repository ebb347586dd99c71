package sw8

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header names as SkyWalking agents write them.
const (
	HeaderName            = "sw8"
	CorrelationHeaderName = "sw8-correlation"
)

// MaxHeaderLen bounds the sw8 value accepted on extract. The protocol keeps
// the header under 2 KB; anything longer is not from a SkyWalking agent and
// is ignored rather than decoded.
const MaxHeaderLen = 2048

// Correlation limits, the SkyWalking agents' defaults (keys and value bytes):
// the agents drop what goes beyond, so sending more only costs header bytes.
const (
	MaxCorrelationKeys     = 3
	MaxCorrelationValueLen = 128
)

// Header is one decoded sw8 value: the SkyWalking caller's position in its
// trace, the way the callee records it as a segment reference.
type Header struct {
	Sampled               bool
	TraceID               string
	ParentSegmentID       string
	ParentSpanID          int32
	ParentService         string
	ParentServiceInstance string
	ParentEndpoint        string
	// AddressUsedAtClient is the host:port the caller used to reach the callee.
	AddressUsedAtClient string
}

// Parse decodes an sw8 value: eight '-'-separated fields, sample flag (0/1),
// base64 trace ID, base64 parent segment ID, decimal parent span ID, then
// base64 parent service, instance, endpoint and target address. Fields past
// the eighth are ignored, as go2sky does, so a future extension still parses.
// Every field is checked, so a value that parses is safe to map to IDs.
func Parse(v string) (Header, error) {
	var h Header
	if v == "" {
		return h, errors.New("sw8: empty header")
	}
	if len(v) > MaxHeaderLen {
		return h, fmt.Errorf("sw8: header is %d bytes, more than the %d allowed", len(v), MaxHeaderLen)
	}
	// Field boundaries: field i is v[bounds[i]:bounds[i+1]-1].
	var bounds [9]int
	n := 1
	for i := 0; i < len(v) && n < 8; i++ {
		if v[i] == '-' {
			bounds[n] = i + 1
			n++
		}
	}
	if n < 8 {
		return h, fmt.Errorf("sw8: %d fields, want 8", n)
	}
	bounds[8] = len(v) + 1
	if j := strings.IndexByte(v[bounds[7]:], '-'); j >= 0 {
		bounds[8] = bounds[7] + j + 1 // fields past the eighth are ignored
	}
	field := func(i int) string { return v[bounds[i] : bounds[i+1]-1] }

	switch field(0) {
	case "1":
		h.Sampled = true
	case "0":
	default:
		return h, fmt.Errorf("sw8: sample flag %q is neither 0 nor 1", field(0))
	}
	span, err := strconv.ParseInt(field(3), 10, 32)
	if err != nil || span < 0 {
		return h, fmt.Errorf("sw8: parent span ID %q is not a non-negative 32-bit decimal", field(3))
	}
	h.ParentSpanID = int32(span)

	// Decode the six text fields into one buffer and make one string of it,
	// which the fields then share: two allocations instead of a dozen.
	names := [...]string{1: "trace ID", 2: "parent segment ID", 4: "parent service", 5: "parent service instance", 6: "parent endpoint", 7: "target address"}
	raw := []byte(v)
	buf := make([]byte, 0, len(v))
	var ends [8]int
	for _, i := range [...]int{1, 2, 4, 5, 6, 7} {
		if buf, err = appendDecoded(buf, names[i], raw[bounds[i]:bounds[i+1]-1]); err != nil {
			return h, err
		}
		ends[i] = len(buf)
	}
	all := string(buf)
	h.TraceID = all[:ends[1]]
	h.ParentSegmentID = all[ends[1]:ends[2]]
	h.ParentService = all[ends[2]:ends[4]]
	h.ParentServiceInstance = all[ends[4]:ends[5]]
	h.ParentEndpoint = all[ends[5]:ends[6]]
	h.AddressUsedAtClient = all[ends[6]:ends[7]]
	if h.TraceID == "" {
		return h, errors.New("sw8: trace ID is empty")
	}
	if h.ParentSegmentID == "" {
		return h, errors.New("sw8: parent segment ID is empty")
	}
	return h, nil
}

// appendDecoded appends the base64 field s to buf. Agents pad (standard
// encoding); an unpadded value is accepted too since it is unambiguous.
func appendDecoded(buf []byte, name string, s []byte) ([]byte, error) {
	n := len(buf)
	out, err := base64.StdEncoding.AppendDecode(buf, s)
	if err != nil {
		if out, err = base64.RawStdEncoding.AppendDecode(buf[:n], s); err != nil {
			return buf[:n], fmt.Errorf("sw8: %s %q is not base64", name, s)
		}
	}
	return out, nil
}

// decodeField decodes one base64 field. Agents pad (standard encoding); an
// unpadded value is accepted too since it is unambiguous.
func decodeField(name, s string, required bool) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return "", fmt.Errorf("sw8: %s %q is not base64", name, s)
		}
	}
	if required && len(b) == 0 {
		return "", fmt.Errorf("sw8: %s is empty", name)
	}
	return string(b), nil
}

// String encodes h as an sw8 value. Empty text fields are written as "-"
// because the Java agent splits with String.split, which drops a trailing
// empty field, and rejects a header with any empty field.
func (h Header) String() string {
	var buf [512]byte
	return string(h.appendTo(buf[:0]))
}

func (h Header) appendTo(b []byte) []byte {
	if h.Sampled {
		b = append(b, '1', '-')
	} else {
		b = append(b, '0', '-')
	}
	b = appendBase64(b, h.TraceID)
	b = append(b, '-')
	b = appendBase64(b, h.ParentSegmentID)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(h.ParentSpanID), 10)
	for _, s := range [...]string{h.ParentService, h.ParentServiceInstance, h.ParentEndpoint, h.AddressUsedAtClient} {
		b = append(b, '-')
		if s == "" {
			s = "-"
		}
		b = appendBase64(b, s)
	}
	return b
}

func appendBase64(b []byte, s string) []byte {
	return base64.StdEncoding.AppendEncode(b, []byte(s))
}

// ParseCorrelation decodes an sw8-correlation value, base64(key):base64(value)
// pairs joined by ','. Malformed pairs are skipped, as the agents do, so one
// bad entry does not lose the others; at most MaxCorrelationKeys are kept.
func ParseCorrelation(v string) [][2]string {
	if v == "" || len(v) > MaxHeaderLen {
		return nil
	}
	var out [][2]string
	for pair := range strings.SplitSeq(v, ",") {
		if len(out) == MaxCorrelationKeys {
			break
		}
		k64, v64, ok := strings.Cut(pair, ":")
		if !ok {
			continue
		}
		k, err := decodeField("correlation key", k64, true)
		if err != nil {
			continue
		}
		val, err := decodeField("correlation value", v64, false)
		if err != nil || len(val) > MaxCorrelationValueLen {
			continue
		}
		out = append(out, [2]string{k, val})
	}
	return out
}

// FormatCorrelation encodes key/value pairs as an sw8-correlation value,
// keeping at most MaxCorrelationKeys pairs and skipping values longer than
// MaxCorrelationValueLen, which the agents would drop anyway.
func FormatCorrelation(kvs [][2]string) string {
	var b []byte
	n := 0
	for _, kv := range kvs {
		if n == MaxCorrelationKeys {
			break
		}
		if kv[0] == "" || len(kv[1]) > MaxCorrelationValueLen {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = appendBase64(b, kv[0])
		b = append(b, ':')
		b = appendBase64(b, kv[1])
		n++
	}
	return string(b)
}
