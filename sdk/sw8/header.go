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
	var f [8]string
	rest := v
	for i := 0; i < 8; i++ {
		j := strings.IndexByte(rest, '-')
		if j < 0 {
			if i < 7 {
				return h, fmt.Errorf("sw8: %d fields, want 8", i+1)
			}
			f[i] = rest
			break
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	switch f[0] {
	case "1":
		h.Sampled = true
	case "0":
	default:
		return h, fmt.Errorf("sw8: sample flag %q is neither 0 nor 1", f[0])
	}
	var err error
	if h.TraceID, err = decodeField("trace ID", f[1], true); err != nil {
		return h, err
	}
	if h.ParentSegmentID, err = decodeField("parent segment ID", f[2], true); err != nil {
		return h, err
	}
	span, err := strconv.ParseInt(f[3], 10, 32)
	if err != nil || span < 0 {
		return h, fmt.Errorf("sw8: parent span ID %q is not a non-negative 32-bit decimal", f[3])
	}
	h.ParentSpanID = int32(span)
	if h.ParentService, err = decodeField("parent service", f[4], false); err != nil {
		return h, err
	}
	if h.ParentServiceInstance, err = decodeField("parent service instance", f[5], false); err != nil {
		return h, err
	}
	if h.ParentEndpoint, err = decodeField("parent endpoint", f[6], false); err != nil {
		return h, err
	}
	if h.AddressUsedAtClient, err = decodeField("target address", f[7], false); err != nil {
		return h, err
	}
	return h, nil
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
